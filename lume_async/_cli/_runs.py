"""``lume runs ...``: create, inspect, wait for and cancel runs on a Lume service."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._client import AsyncLume
from .._run import AsyncRun
from ..models import RunStatus
from ._escape import plain, visible
from ._output import cell, err, out, print_json, show_run, show_runs, status_text, table
from ._settings import Settings, fail, json_flag
from ._sharing import permission_options, permissions_of, update

__all__ = ["runs"]


@click.group()
def runs() -> None:
    """Create, inspect, wait for and cancel runs."""


@runs.command()
@click.argument("flow_version")
@click.argument("source_path", required=False)
@click.option("--data", type=click.File("rb"), help="JSON file of source rows ('-' for stdin).")
@click.option("--label")
@click.option("--tag", "tags", multiple=True, help="Repeat for several tags.")
@click.option("--force-rerun", is_flag=True, help="Run again even if this source succeeded.")
@click.option("--wait", "wait_", is_flag=True, help="Wait until the run is finished.")
@click.option("--poll-interval", default=2.0, show_default=True, type=click.FloatRange(min=0.01))
@permission_options
@json_flag
@click.pass_obj
def create(
    settings: Settings,
    flow_version: str,
    source_path: str | None,
    data: Any,
    label: str | None,
    tags: tuple[str, ...],
    force_rerun: bool,
    wait_: bool,
    poll_interval: float,
    owner: str | None,
    monitors: tuple[str, ...],
    monitor_groups: tuple[str, ...],
    managers: tuple[str, ...],
    manager_groups: tuple[str, ...],
) -> None:
    """Start a run of FLOW_VERSION on SOURCE_PATH (or on --data rows)."""
    rows = _load_rows(data) if data is not None else None
    permissions = permissions_of(
        owner, monitors, monitor_groups, managers, manager_groups, keep_unset=False
    )

    async def call(lume: AsyncLume) -> AsyncRun:
        run = await lume.runs.create(
            flow_version,
            source_path,
            source_data=rows,
            label=label,
            tags=tags,
            force_rerun=force_rerun,
            **permissions,
        )
        if wait_:
            await _wait(lume, [run], settings, timeout=None, poll_interval=poll_interval)
        return run

    show_run(settings, settings.run(call))


def _load_rows(stream: Any) -> list[Any]:
    try:
        rows = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise ValueError("--data must hold a JSON array of objects")
    return rows


runs.add_command(update)


@runs.command()
@click.argument("run_id")
@json_flag
@click.pass_obj
def get(settings: Settings, run_id: str) -> None:
    """Show one run."""
    show_run(settings, settings.run(lambda lume: lume.runs.get(run_id)))


@runs.command("list")
@click.option("--flow-version")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
)
@click.option("--label")
@click.option("--tag", "tags", multiple=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@json_flag
@click.pass_obj
def list_(
    settings: Settings,
    flow_version: str | None,
    statuses: tuple[str, ...],
    label: str | None,
    tags: tuple[str, ...],
    limit: int,
) -> None:
    """List runs, newest first."""

    async def call(lume: AsyncLume) -> list[AsyncRun]:
        found: list[AsyncRun] = []
        listing = lume.runs.list(
            flow_version=flow_version,
            status=statuses or None,
            label=label,
            tags=tags or None,
            page_size=min(limit, 100),
        )
        async for run in listing:
            found.append(run)
            if len(found) == limit:
                break
        return found

    show_runs(settings, settings.run(call))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--timeout", "wait_timeout", type=float, help="Give up after this many seconds.")
@click.option("--poll-interval", default=2.0, show_default=True, type=click.FloatRange(min=0.01))
@json_flag
@click.pass_obj
def wait(
    settings: Settings, run_ids: tuple[str, ...], wait_timeout: float | None, poll_interval: float
) -> None:
    """Wait until every RUN_ID is finished, showing progress."""

    async def call(lume: AsyncLume) -> list[AsyncRun]:
        handles = [outcome.unwrap() for outcome in await lume.runs.get_many(run_ids)]
        await _wait(lume, handles, settings, timeout=wait_timeout, poll_interval=poll_interval)
        return handles

    show_runs(settings, settings.run(call))


async def _wait(
    lume: AsyncLume,
    handles: list[AsyncRun],
    settings: Settings,
    *,
    timeout: float | None,
    poll_interval: float,
) -> None:
    """Wait on the shared poller; a live bar on a terminal, a line per finished run otherwise."""
    total, done = len(handles), 0
    show = not settings.json
    live = show and err.is_terminal

    def report(run: AsyncRun) -> None:
        nonlocal done
        done += 1
        if live:
            progress.advance(task)
            progress.console.print(plain(f"{run.id} "), status_text(run.status.value))
        elif show:
            click.echo(visible(f"{run.id} {run.status.value} ({done}/{total})"), err=True)

    # The description holds server text (statuses): never read as markup.
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn())
    progress = Progress(
        *columns, TimeElapsedColumn(), console=err, transient=True, disable=not live
    )
    task = progress.add_task("waiting", total=total)
    pending = [run for run in handles if not run.is_terminal]

    async def describe() -> None:
        while True:
            counts = Counter(run.status.value.lower() for run in pending if not run.is_terminal)
            text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            progress.update(task, description=visible(text) or "waiting")
            await asyncio.sleep(0.2)

    with progress:
        for run in handles:
            if run.is_terminal:
                report(run)
        finished = lume.runs.as_completed(pending, timeout=timeout, poll_interval=poll_interval)
        ticker = asyncio.create_task(describe()) if live else None
        try:
            async for run in finished:
                report(run)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.wait([ticker])


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@json_flag
@click.pass_obj
def cancel(settings: Settings, run_ids: tuple[str, ...]) -> None:
    """Cancel runs (finished ones are left as they are)."""
    outcomes = settings.run(lambda lume: lume.runs.cancel_many(run_ids))
    show_runs(settings, [o.value for o in outcomes if o.ok and o.value is not None])
    failures = [(run_ids[o.index], o.error) for o in outcomes if not o.ok]
    if failures:
        fail("; ".join(f"{run_id}: {error}" for run_id, error in failures))


@runs.command()
@click.argument("run_id")
@json_flag
@click.pass_obj
def logs(settings: Settings, run_id: str) -> None:
    """Show a run's log, oldest first."""
    entries = settings.run(lambda lume: lume.runs.logs(run_id).collect())
    if settings.json:
        return print_json(entries)
    grid = table("TIME", "LEVEL", "MESSAGE", "CODE")
    for e in entries:
        style = "red" if e.level in ("ERROR", "CRITICAL") else ""
        time = f"{e.time:%H:%M:%S.%f}"[:-3]
        grid.add_row(time, plain(e.level, style), plain(e.message), cell(e.code))
    out.print(grid)
    return None


@runs.command()
@click.argument("run_id")
@click.option("--rejects", is_flag=True, help="Show the rejected rows instead.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@json_flag
@click.pass_obj
def results(settings: Settings, run_id: str, rejects: bool, limit: int) -> None:
    """Show a run's mapped rows (or --rejects), in order."""

    async def call(lume: AsyncLume) -> list[Any]:
        size = min(limit, 100)
        pages = (
            lume.runs.rejects(run_id, page_size=size)
            if rejects
            else lume.runs.results(run_id, page_size=size)
        )
        rows: list[Any] = []
        async for row in pages:
            rows.append(row)
            if len(rows) == limit:
                break
        return rows

    rows = settings.run(call)
    if settings.json:
        return print_json(rows)
    if rejects:
        grid = table("INDEX", "ERRORS", "SOURCE RECORD")
        for r in rows:
            why = ", ".join(f"{e.field}: {e.error_code}" for e in r.errors)
            grid.add_row(str(r.index), plain(why), cell(r.source_record))
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        grid = table(*columns)
        for row in rows:
            grid.add_row(*(cell(row.get(key)) for key in columns))
    out.print(grid)
    if not rows:
        out.print("(no rows)")
    return None
