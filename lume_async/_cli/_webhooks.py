"""``lume webhooks ...``: where the service sends run completion events."""

from __future__ import annotations

import click
from rich.table import Table

from .._client import AsyncLume
from .._validation import EVENT_TYPES, check_endpoint_id
from ..models import WebhookEndpoint
from ._command import LumeGroup
from ._escape import plain
from ._output import out, print_json, table
from ._settings import Settings, json_flag

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
    """Stop sending events to these endpoints."""

    for endpoint_id in endpoint_ids:  # all or nothing: a typo deletes none of them
        check_endpoint_id(endpoint_id)

    async def call(lume: AsyncLume) -> None:
        for endpoint_id in endpoint_ids:
            await lume.webhook_endpoints.delete(endpoint_id)

    settings.run(call)
    if settings.json:
        print_json({"deleted": list(endpoint_ids)})
    else:
        for endpoint_id in endpoint_ids:
            out.print(plain(f"deleted {endpoint_id}"))
