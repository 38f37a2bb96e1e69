"""``lume runs logs`` and ``lume runs results``: what a run wrote, on screen or to a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .. import _converter
from .._client import AsyncLume
from ..models import LogEntry
from ._command import LumeCommand, Number
from ._escape import plain, visible, visible_json
from ._exit import warn
from ._export import FORMATS, RowSink, format_for, json_text
from ._output import cell, out, print_json, table
from ._settings import Settings, json_flag
from ._streams import note

__all__ = ["logs", "results"]


@click.command(cls=LumeCommand)
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Print new entries until the run finishes.")
@click.option(
    "--poll-interval",
    default=2.0,
    type=Number(min=0.01),
    help="Seconds between looks for new entries (longer while the log is quiet), with --follow.",
)
@json_flag
@click.pass_obj
def logs(settings: Settings, run_id: str, follow: bool, poll_interval: float) -> None:
    """Show a run's log, oldest first (--json --follow: one JSON object per line)."""
    if follow:
        settings.run(lambda lume: _follow(lume, run_id, settings, poll_interval))
        return
    entries = settings.run(lambda lume: lume.runs.logs(run_id).collect())
    if settings.json:
        print_json(entries)
        return
    grid = table("TIME", "LEVEL", "MESSAGE", "CODE")
    for e in entries:
        style = "red" if e.level in ("ERROR", "CRITICAL") else ""
        time = f"{e.time:%H:%M:%S.%f}"[:-3]
        grid.add_row(time, plain(e.level, style), plain(e.message), cell(e.code))
    out.print(grid)


async def _follow(lume: AsyncLume, run_id: str, settings: Settings, poll_interval: float) -> None:
    """Print entries as they are written, each read once; stop once the run is finished and its
    log read whole (a log rewritten meanwhile is an error, never lines skipped or repeated)."""
    async for entry in lume.runs.logs(run_id, follow=True, poll_interval=poll_interval):
        click.echo(_log_line(entry, as_json=settings.json))


def _log_line(entry: LogEntry, *, as_json: bool) -> str:
    """One entry as a line of text or of JSON; server text spelled out (never control codes)."""
    if as_json:
        return visible_json(json_text(_converter.unstructure(entry)))
    time = f"{entry.time:%Y-%m-%d %H:%M:%S.%f}"[:-3]
    code = f" [{entry.code}]" if entry.code else ""
    return visible(f"{time} {entry.level:<7} {entry.message}{code}")


@click.command(cls=LumeCommand)
@click.argument("run_id")
@click.option("--rejects", is_flag=True, help="The rejected rows (with the reasons) instead.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write every row to this file (.jsonl or .csv; '-' for stdout), page by page.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="With --output [default: from its suffix]."
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    help="At most this many rows [default: 20 on screen, all with --output].",
)
@json_flag
@click.pass_obj
def results(
    settings: Settings,
    run_id: str,
    rejects: bool,
    output: str | None,
    fmt: str | None,
    limit: int | None,
) -> None:
    """Show a run's mapped rows (or --rejects), in order, or write them all to a file."""
    if fmt is not None and output is None:
        raise click.UsageError("--format goes with --output")
    if output is not None:
        if output == "":
            raise click.UsageError("--output must name a file ('-' for standard output)")
        # A symbolic link is written through: the directory it points into must be there too.
        folders = (Path(output).parent, Path(os.path.realpath(output)).parent)
        missing = next((folder for folder in folders if not folder.is_dir()), None)
        if output != "-" and missing is not None:
            raise click.UsageError(f"--output {output!r}: no directory {str(missing)!r}")
        _export(settings, run_id, rejects, output, format_for(output, fmt), limit)
        return
    shown = limit or 20

    async def call(lume: AsyncLume) -> list[Any]:
        rows: list[Any] = []
        async for row in _listing(lume, run_id, rejects, min(shown, 100)):
            rows.append(row)
            if len(rows) == shown:
                break
        return rows

    rows = settings.run(call)
    if settings.json:
        print_json(rows)
        return
    if rejects:
        grid = table("INDEX", "ERRORS", "SOURCE RECORD")
        for r in rows:
            why = ", ".join(f"{e.field}: {e.error_code}" for e in r.errors)
            grid.add_row(str(r.index), plain(why), cell(r.source_record))
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        grid = table()
        for column in columns:
            grid.add_column(plain(column))
        for row in rows:
            grid.add_row(*(cell(row.get(key)) for key in columns))
    out.print(grid)
    if not rows:
        out.print("(no rows)")


def _listing(lume: AsyncLume, run_id: str, rejects: bool, page_size: int) -> Any:
    if rejects:
        return lume.runs.rejects(run_id, page_size=page_size)
    return lume.runs.results(run_id, page_size=page_size)


def _export(
    settings: Settings, run_id: str, rejects: bool, output: str, fmt: str, limit: int | None
) -> None:
    async def call(lume: AsyncLume) -> RowSink:
        with RowSink(output, fmt) as sink:
            async for row in _listing(lume, run_id, rejects, 100):
                sink.write(row)
                if sink.rows == limit:
                    break
        return sink

    sink = settings.run(call)
    what = "rejected rows" if rejects else "rows"
    if sink.fields_left_out:
        fields = sorted(sink.fields_left_out)
        warn(
            f"some rows had fields that are not CSV columns ({', '.join(fields)}); "
            "write .jsonl to keep every field",
            as_json=settings.json,
            kind="fields_left_out",
            details={"fields": fields},
        )
    if output == "-":
        return
    path = _shown_path(output)
    if settings.json:
        print_json({"path": path, "format": fmt, "rows": sink.rows, "rejects": rejects})
    else:
        note(visible(f"wrote {sink.rows:,} {what} to {path}"))


def _shown_path(path: str) -> str:
    """``path`` as text: bytes of a file name that are not UTF-8 spelled out (``\\xff``), as
    JSON and terminals can take them."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
