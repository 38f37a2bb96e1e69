"""``lume webhooks ...``: where the service sends run completion events."""

from __future__ import annotations

import click
from rich.table import Table

from .._client import AsyncLume
from .._exceptions import APIError, InvalidRequestError, NotFoundError, PermissionDeniedError
from .._validation import EVENT_TYPES, check_endpoint_id
from ..models import WebhookEndpoint
from ._command import LumeGroup
from ._escape import plain
from ._output import out, print_json, table
from ._settings import Settings, fail, json_flag

__all__ = ["webhooks"]


@click.group(cls=LumeGroup)
def webhooks() -> None:
    """Create, list and delete webhook endpoints."""


@webhooks.command()
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENT_TYPES),
    help="Send only these events (repeat) [default: every run.* event].",
)
@click.option("--secret", help="Signing secret, whsec_<base64> [default: one is made].")
@json_flag
@click.pass_obj
def create(settings: Settings, url: str, events: tuple[str, ...], secret: str | None) -> None:
    """Send run completion events to URL; prints the endpoint and its signing secret."""
    endpoint: WebhookEndpoint = settings.run(
        lambda lume: lume.webhook_endpoints.create(url, events=events or None, secret=secret)
    )
    if settings.json:
        # The secret is the caller's own and needed to verify deliveries: show it once, here.
        print_json({**_json(endpoint), "secret": endpoint.secret})
        return
    grid = Table(show_header=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", plain(endpoint.id))
    grid.add_row("url", plain(endpoint.url))
    grid.add_row("events", plain(", ".join(endpoint.events) or "every run.* event"))
    grid.add_row("secret", plain(endpoint.secret or "-"))
    out.print(grid)


def _json(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events)}


@webhooks.command("list")
@json_flag
@click.pass_obj
def list_(settings: Settings) -> None:
    """The webhook endpoints of this API key (secrets are not shown)."""
    found = settings.run(lambda lume: lume.webhook_endpoints.list().collect())
    if settings.json:
        print_json([_json(endpoint) for endpoint in found])
        return
    grid = table("ID", "URL", "EVENTS")
    for endpoint in found:
        grid.add_row(
            plain(endpoint.id), plain(endpoint.url), plain(", ".join(endpoint.events) or "all")
        )
    out.print(grid)
    if not found:
        out.print("(no webhook endpoints)")


@webhooks.command(sdk_names={"endpoint_id": "endpoint_ids"})
@click.argument("endpoint_ids", nargs=-1, required=True)
@json_flag
@click.pass_obj
def delete(settings: Settings, endpoint_ids: tuple[str, ...]) -> None:
    """Stop sending events to these endpoints.

    Each is deleted even when another cannot be; those deleted are listed whatever happens.
    """
    for endpoint_id in endpoint_ids:  # all or nothing: a typo deletes none of them
        check_endpoint_id(endpoint_id)
    ids = tuple(dict.fromkeys(endpoint_ids))  # one given twice is deleted once
    deleted: list[str] = []

    async def call(lume: AsyncLume) -> list[tuple[str, APIError]]:
        refused: list[tuple[str, APIError]] = []
        for endpoint_id in ids:
            try:
                await lume.webhook_endpoints.delete(endpoint_id)
            except _REFUSED_ALONE as exc:  # this endpoint only: the others are still deleted
                refused.append((endpoint_id, exc))
            else:
                deleted.append(endpoint_id)
        return refused

    try:
        refused = settings.run(call)
    finally:  # an error that ends the command early is reported after what was done
        if deleted:
            _show_deleted(settings, deleted)
    if len(ids) == 1 and refused:
        raise refused[0][1]  # reported as a single delete always was
    if refused:
        fail("not deleted: " + "; ".join(f"{endpoint_id}: {exc}" for endpoint_id, exc in refused))


# What refuses one endpoint alone: the next one may still be deleted. Any other error (the key,
# the network, the service) would refuse the rest too, and ends the command.
_REFUSED_ALONE = (NotFoundError, PermissionDeniedError, InvalidRequestError)


def _show_deleted(settings: Settings, deleted: list[str]) -> None:
    if settings.json:
        print_json({"deleted": deleted})
    else:
        for endpoint_id in deleted:
            out.print(plain(f"deleted {endpoint_id}"))
