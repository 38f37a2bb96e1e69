"""How the ``lume`` command prints: tables on a terminal, JSON with ``--json``.

Every value that came from a server goes through ``plain`` (``_escape``): printed literally,
never read as Rich markup, with control characters spelled out.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable
from typing import Any

import click
from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import _converter
from .._run import AsyncRun
from ._escape import plain, visible_json
from ._export import json_text
from ._settings import Settings

__all__ = [
    "ORDER",
    "err",
    "out",
    "print_json",
    "show_run",
    "show_runs",
    "status_text",
    "table",
]


class _Console(Console):
    """A console whose reader stopping (``lume runs list | head``) is the command's to settle
    (``_streams.reader_left``): Rich's own way is a silent exit with status 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


# Piped output is not cut to 80 columns: run ids and paths stay whole for grep and eyes alike.
out = _Console(highlight=False, width=None if sys.stdout and sys.stdout.isatty() else 160)
err = _Console(stderr=True, highlight=False)
_STYLE = {"SUCCEEDED": "green", "PARTIAL_FAILED": "yellow", "FAILED": "red", "CRASHED": "red"}
ORDER = ("SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED", "CANCELED")


def print_json(value: Any) -> None:
    # Rows (plain JSON objects) as they are: the converter copies a value level by level, and a
    # row may be nested as deep as the service's answers go.
    rows = isinstance(value, list) and all(isinstance(item, dict) for item in value)
    data = value if rows else _converter.unstructure(value)
    click.echo(visible_json(json_text(data, indent=True)))


def table(*columns: str) -> Table:
    """A table whose column headers (server text too: the keys of result rows) print as is."""
    grid = Table(box=SIMPLE_HEAD, header_style="bold", show_edge=False)
    for column in columns:
        grid.add_column(plain(column))
    return grid


def status_text(value: str) -> Text:
    return plain(value, _STYLE.get(value, "cyan"))


def cell(value: Any) -> Text:
    """A free-form value (a result row's field) as a table cell: JSON unless it is a string."""
    if value is None:
        return Text("")
    return plain(value if isinstance(value, str) else json_text(value))


def mapped_and_rejected(run: AsyncRun) -> str:
    results = run.metadata.results if run.metadata else None
    if results is None or results.input_rows is None:
        return ""
    return f"{results.mapped_rows or 0:,} / {results.rejected_rows or 0:,}"


def show_runs(settings: Settings, handles: Iterable[AsyncRun]) -> None:
    handles = list(handles)
    if settings.json:
        return print_json([run.data for run in handles])
    grid = table()
    # Ids and statuses are never cut; the other columns give way on a narrow terminal.
    ids = [plain(run.id) for run in handles]
    grid.add_column("ID", no_wrap=True, min_width=max((len(i) for i in ids), default=2))
    grid.add_column("STATUS", no_wrap=True, min_width=14)
    # Rich shrinks the columns that may wrap first; only when those are gone does it cut every
    # column alike, so the others must be allowed to wrap (a long source path folds whole).
    for name in ("FLOW VERSION", "CREATED (UTC)", "MAPPED / REJECTED"):
        grid.add_column(name, overflow="ellipsis")
    grid.add_column("SOURCE", overflow="fold")
    for run, run_id in zip(handles, ids, strict=True):
        created = f"{run.created_at:%Y-%m-%d %H:%M:%S}"
        source = plain(run.source_path or "(inline rows)")
        status = status_text(run.status.value)
        flow = plain(run.flow_version)
        grid.add_row(run_id, status, flow, created, mapped_and_rejected(run), source)
    out.print(grid)
    return None


def _names(principals: tuple[str, ...], groups: tuple[str, ...]) -> str:
    """``ana@example.com, group analysts``, or ``-`` when a run names nobody."""
    shown = [*principals, *(f"group {group}" for group in groups)]
    return ", ".join(shown) or "-"


def show_run(settings: Settings, run: AsyncRun) -> None:
    if settings.json:
        return print_json(run.data)
    grid = Table(show_header=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", plain(run.id))
    grid.add_row("status", status_text(run.status.value))
    grid.add_row("flow version", plain(run.flow_version))
    grid.add_row("source", plain(run.source_path or "(inline rows)"))
    if run.label or run.tags:
        grid.add_row("label / tags", plain(f"{run.label or '-'} / {', '.join(run.tags) or '-'}"))
    grid.add_row("created", f"{run.created_at:%Y-%m-%d %H:%M:%S %Z}")
    if run.run_owner is not None:
        by = (
            f" (created by {run.created_by})" if run.created_by not in (None, run.run_owner) else ""
        )
        grid.add_row("owner", plain(f"{run.run_owner}{by}"))
    grid.add_row("monitors", plain(_names(run.monitoring_by, run.monitoring_groups)))
    grid.add_row("managers", plain(_names(run.managing_by, run.managing_groups)))
    meta = run.metadata
    if meta and meta.results and meta.results.input_rows is not None:
        r = meta.results
        grid.add_row(
            "rows in / mapped / rejected", f"{r.input_rows:,} / {mapped_and_rejected(run)}"
        )
    if meta and meta.pipeline and meta.pipeline.duration_seconds is not None:
        grid.add_row("duration", f"{meta.pipeline.duration_seconds:.1f} s")
    if run.run_metadata:
        grid.add_row("run metadata", cell(run.run_metadata))
    if run.error is not None:
        grid.add_row("error", plain(f"{run.error.code}: {run.error.message}", "red"))
    out.print(grid)
    return None
