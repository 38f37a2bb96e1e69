"""``lume flows ...``: the transformation flows this API key can run, and their versions."""

from __future__ import annotations

import click
from rich.table import Table

from ..models import Flow
from ._command import LumeGroup
from ._escape import plain
from ._output import out, print_json, table
from ._settings import Settings, json_flag

__all__ = ["flows"]


@click.group(cls=LumeGroup)
def flows() -> None:
    """List the flows and their published versions."""


@flows.command("list")
@json_flag
@click.pass_obj
def list_(settings: Settings) -> None:
    """Every flow this API key can run, with its versions."""
    found = settings.run(lambda lume: lume.flows.list().collect())
    if settings.json:
        print_json(found)
        return
    grid = table("NAME", "VERSIONS", "DESCRIPTION")
    for flow in found:
        versions = ", ".join(v.id for v in flow.versions)
        grid.add_row(plain(flow.name), plain(versions), plain(flow.description or ""))
    out.print(grid)


@flows.command(sdk_names={"name": "name"})
@click.argument("name")
@json_flag
@click.pass_obj
def get(settings: Settings, name: str) -> None:
    """One flow by NAME (customer_cleaner, or a version such as customer_cleaner:v1)."""
    flow: Flow = settings.run(lambda lume: lume.flows.get(name))
    if settings.json:
        print_json(flow)
        return
    grid = Table(show_header=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("name", plain(flow.name))
    grid.add_row("description", plain(flow.description or "-"))
    for version in flow.versions:
        created = f"  created {version.created_at:%Y-%m-%d}" if version.created_at else ""
        grid.add_row("version", plain(f"{version.id}{created}"))
    out.print(grid)
