"""Who a run is shared with: the options of ``lume runs create`` and ``update``, and ``update``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .._client import AsyncLume
from .._run import AsyncRun
from ._command import LumeCommand
from ._output import show_run
from ._settings import Settings, json_flag

__all__ = ["SDK_NAMES", "permission_options", "permissions_of", "update"]

_CLEARABLE = {
    "tags": "tags",
    "monitors": "monitoring_by",
    "monitor-groups": "monitoring_groups",
    "managers": "managing_by",
    "manager-groups": "managing_groups",
}


def permission_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--owner``, and the repeatable ``--monitor``, ``--monitor-group``, ``--manager`` and
    ``--manager-group``."""
    options = (
        click.option("--owner", help="Principal who owns the run (default: your key's)."),
        click.option(
            "--monitor", "monitors", multiple=True, help="Principal who may read the run (repeat)."
        ),
        click.option(
            "--monitor-group",
            "monitor_groups",
            multiple=True,
            help="Group whose principals may read the run (repeat).",
        ),
        click.option(
            "--manager",
            "managers",
            multiple=True,
            help="Principal who may also update and cancel the run (repeat).",
        ),
        click.option(
            "--manager-group",
            "manager_groups",
            multiple=True,
            help="Group whose principals may also update and cancel the run (repeat).",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def permissions_of(
    owner: str | None,
    monitors: tuple[str, ...],
    monitor_groups: tuple[str, ...],
    managers: tuple[str, ...],
    manager_groups: tuple[str, ...],
    *,
    keep_unset: bool,
) -> dict[str, Any]:
    """The keywords of runs.create / runs.update for the permission options given.

    With ``keep_unset`` (an update) a list not given is left out, so the run keeps it.
    """
    out: dict[str, Any] = {}
    if owner is not None:
        out["run_owner"] = owner
    lists = {
        "monitoring_by": monitors,
        "monitoring_groups": monitor_groups,
        "managing_by": managers,
        "managing_groups": manager_groups,
    }
    for keyword, names in lists.items():
        if names or not keep_unset:
            out[keyword] = list(names)
    return out


# The SDK's names for what the options set, so its argument errors name the options.
SDK_NAMES = {
    "run_owner": "owner",
    "monitoring_by": "monitors",
    "monitoring_groups": "monitor_groups",
    "managing_by": "managers",
    "managing_groups": "manager_groups",
}


@click.command(cls=LumeCommand, sdk_names=SDK_NAMES)
@click.argument("run_id")
@click.option("--label", help="New label.")
@click.option("--tag", "tags", multiple=True, help="Replace the tags (repeat for several).")
@permission_options
@click.option(
    "--clear",
    "clear",
    multiple=True,
    type=click.Choice(sorted(_CLEARABLE)),
    help="Empty the tags or this permission list (repeat for several).",
)
@json_flag
@click.pass_obj
def update(
    settings: Settings,
    run_id: str,
    label: str | None,
    tags: tuple[str, ...],
    owner: str | None,
    monitors: tuple[str, ...],
    monitor_groups: tuple[str, ...],
    managers: tuple[str, ...],
    manager_groups: tuple[str, ...],
    clear: tuple[str, ...],
) -> None:
    """Change a run's label, tags, owner or who may read and manage it.

    A list given replaces the run's list; one not given is kept (--clear empties it). Only the
    run's owner, its managers and tenant admins may change a run.
    """
    changes = permissions_of(
        owner, monitors, monitor_groups, managers, manager_groups, keep_unset=True
    )
    if tags:
        changes["tags"] = list(tags)
    for name in clear:
        keyword = _CLEARABLE[name]
        if changes.get(keyword):
            raise click.UsageError(f"--clear {name} contradicts the names given for it")
        changes[keyword] = []
    if label is not None:
        changes["label"] = label
    if not changes:
        raise click.UsageError(
            "nothing to change: give --label, --tag, --owner, --monitor, --monitor-group, "
            "--manager, --manager-group or --clear"
        )

    async def call(lume: AsyncLume) -> AsyncRun:
        return await lume.runs.update(run_id, **changes)

    show_run(settings, settings.run(call))
