"""The ``lume`` command: the demo, the emulator, and runs on a Lume service.

It needs the ``cli`` extra (click and rich); nothing else in the SDK imports this module or those
libraries. Every command exits 0, or 1 with one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

try:
    import click
    from rich.box import SIMPLE_HEAD
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text
except ModuleNotFoundError as exc:  # the package was installed without the ``cli`` extra
    sys.stderr.write(f"error: the lume command needs {exc.name}: pip install 'lume-sdk[cli]'\n")
    raise SystemExit(1) from None

import attrs
import orjson

from . import _converter
from ._client import AsyncLume
from ._config import ENV_API_KEY, ENV_BASE_URL
from ._demo import DemoProgress, DemoSummary, run_demo
from ._exceptions import LumeError
from ._run import AsyncRun
from ._version import __version__
from .models import RunStatus

__all__ = ["main"]

T = TypeVar("T")

# Piped output is not cut to 80 columns: run ids and paths stay whole for grep and eyes alike.
_out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True, highlight=False)
_STYLE = {"SUCCEEDED": "green", "PARTIAL_FAILED": "yellow", "FAILED": "red", "CRASHED": "red"}
_ORDER = ("SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED", "CANCELED")
_ROUTES = {
    "POST /v1/runs": "creates",
    "POST /v1/runs/batch-get": "status polls (up to 100 runs each)",
    "GET /v1/runs/{run_id}/results": "result pages",
    "GET /v1/runs/{run_id}/rejects": "reject pages",
}


@attrs.define
class Settings:
    """The global options, shared by every subcommand through the click context."""

    base_url: str | None
    api_key: str | None
    json: bool
    timeout: float

    def run(self, call: Callable[[AsyncLume], Awaitable[T]]) -> T:
        """Run ``call`` with a client made from these options, on a fresh event loop."""
        if not self.api_key:
            _fail(f"no API key: pass --api-key or set {ENV_API_KEY}")
        lume = AsyncLume(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout)

        async def go() -> T:
            async with lume:
                return await call(lume)

        return asyncio.run(go())


class _Main(click.Group):
    """Turns every error the SDK raises into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LumeError, ValueError, TypeError) as exc:
            _fail(str(exc) or type(exc).__name__)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    raise SystemExit(1)


def _json_flag(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` after the subcommand too, as scripts tend to write it."""

    def enable(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(Settings).json = True  # type: ignore[union-attr]

    flag = click.option("--json", "json_", is_flag=True, expose_value=False, callback=enable)
    return flag(command)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--base-url", envvar=ENV_BASE_URL, help=f"Service URL [env {ENV_BASE_URL}].")
@click.option("--api-key", envvar=ENV_API_KEY, help=f"API key [env {ENV_API_KEY}].")
@click.option("--json", "json_", is_flag=True, help="Print JSON instead of tables.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
@click.version_option(__version__, prog_name="lume")
@click.pass_context
def main(
    ctx: click.Context, base_url: str | None, api_key: str | None, json_: bool, timeout: float
) -> None:
    """Lume data-transformation runs from the command line.

    Start with `lume demo`; point the `runs` commands at a service with LUME_BASE_URL and
    LUME_API_KEY (or at `lume emulator`).
    """
    ctx.obj = Settings(base_url=base_url, api_key=api_key, json=json_, timeout=timeout)


# -- lume demo / lume emulator ---------------------------------------------------------------------


@main.command()
@click.option("--runs", "count", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--time-scale", default=10.0, show_default=True, help="Emulator clock speed-up.")
@click.option("--seed", default=0, show_default=True, help="Seed of the run mix and the data.")
@_json_flag
@click.pass_obj
def demo(settings: Settings, count: int, time_scale: float, seed: int) -> None:
    """Fan out runs on an in-process emulator.

    Starts the emulator, creates a few hundred runs of mixed outcomes, waits for them with the
    shared poller while showing progress, pages through some results, and summarises it all.
    """
    live = Live(console=_err, transient=True) if _err.is_terminal and not settings.json else None
    last_phase = ""

    def show(p: DemoProgress) -> None:
        nonlocal last_phase
        if live is not None:
            live.update(_demo_panel(p))
        elif p.phase != last_phase and not settings.json:
            click.echo(_demo_line(p), err=True)
        last_phase = p.phase

    coro = run_demo(runs=count, time_scale=time_scale, seed=seed, on_progress=show)
    if live is None:
        summary = asyncio.run(coro)
    else:
        with live:
            summary = asyncio.run(coro)
    if settings.json:
        _print_json(summary.to_json())
    else:
        _print_demo_summary(summary)


def _demo_panel(p: DemoProgress) -> Group:
    done = p.succeeded + p.partial + p.failed + p.refused
    counts = Text.assemble(
        f"created {p.created}/{p.total}   running {p.running}   ",
        (f"succeeded {p.succeeded}", "green"),
        "   ",
        (f"partial {p.partial}", "yellow"),
        "   ",
        (f"failed {p.failed + p.refused}", "red"),
    )
    bar = ProgressBar(total=p.total, completed=done if p.phase != "creating" else p.created)
    return Group(Text(f"lume demo: {p.phase}", style="bold"), bar, counts)


def _demo_line(p: DemoProgress) -> str:
    if p.phase == "creating":
        return f"creating {p.total} runs on an in-process emulator ..."
    if p.phase == "waiting":
        return f"created {p.created} runs; waiting for them with the shared poller ..."
    if p.phase == "paging":
        return (
            f"finished: {p.succeeded} succeeded, {p.partial} partial, {p.failed} failed; "
            "paging results and rejects ..."
        )
    return "done."


def _print_demo_summary(s: DemoSummary) -> None:
    table = Table(title=f"lume demo: {s.runs} runs", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for status in sorted(s.statuses, key=lambda v: _ORDER.index(v) if v in _ORDER else 99):
        table.add_row(_status(status), f"{s.statuses[status]:,}")
    if s.refused:
        table.add_row("refused at create", f"{s.refused:,}")
    table.add_section()
    table.add_row("rows read", f"{s.rows_input:,}")
    table.add_row("rows mapped", f"{s.rows_mapped:,}")
    table.add_row("rows rejected", f"{s.rows_rejected:,}")
    table.add_row("rows / rejects paged through", f"{s.rows_paged:,} / {s.rejects_paged:,}")
    for field, code, n in s.top_reject_reasons:
        table.add_row(f"  {code} on {field}", f"{n:,}")
    table.add_section()
    table.add_row("requests sent", f"{s.requests_total:,}")
    for route in sorted(s.requests, key=lambda r: list(_ROUTES).index(r) if r in _ROUTES else 99):
        table.add_row(f"  {_ROUTES.get(route, route)}", f"{s.requests[route]:,}")
    table.add_section()
    table.add_row("wall time", f"{s.wall_seconds:.1f} s")
    _out.print(table)
    _out.print(
        "\nNext, the same commands against a real service:\n"
        f"  export {ENV_BASE_URL}=https://api.lume.ai {ENV_API_KEY}=<your key>\n"
        "  lume runs create customer_cleaner:v1 s3://bucket/batch_001 --wait\n"
        "or against an emulator of your own: lume emulator --port 8080"
    )


@main.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """Serve the Lume API emulator (see lume emulator --help)."""
    from .testing._main import main as serve

    raise SystemExit(serve(list(args), prog="lume emulator"))


# -- lume runs ... ----------------------------------------------------------------------------


@main.group()
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
@_json_flag
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
) -> None:
    """Start a run of FLOW_VERSION on SOURCE_PATH (or on --data rows)."""
    rows = _load_rows(data) if data is not None else None

    async def call(lume: AsyncLume) -> AsyncRun:
        run = await lume.runs.create(
            flow_version,
            source_path,
            source_data=rows,
            label=label,
            tags=tags,
            force_rerun=force_rerun,
        )
        if wait_:
            await _wait(lume, [run], settings, timeout=None, poll_interval=poll_interval)
        return run

    _show_run(settings, settings.run(call))


def _load_rows(stream: Any) -> list[Any]:
    try:
        rows = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise ValueError("--data must hold a JSON array of objects")
    return rows


@runs.command()
@click.argument("run_id")
@_json_flag
@click.pass_obj
def get(settings: Settings, run_id: str) -> None:
    """Show one run."""
    _show_run(settings, settings.run(lambda lume: lume.runs.get(run_id)))


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
@_json_flag
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

    _show_runs(settings, settings.run(call))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--timeout", "wait_timeout", type=float, help="Give up after this many seconds.")
@click.option("--poll-interval", default=2.0, show_default=True, type=click.FloatRange(min=0.01))
@_json_flag
@click.pass_obj
def wait(
    settings: Settings, run_ids: tuple[str, ...], wait_timeout: float | None, poll_interval: float
) -> None:
    """Wait until every RUN_ID is finished, showing progress."""

    async def call(lume: AsyncLume) -> list[AsyncRun]:
        handles = [outcome.unwrap() for outcome in await lume.runs.get_many(run_ids)]
        await _wait(lume, handles, settings, timeout=wait_timeout, poll_interval=poll_interval)
        return handles

    _show_runs(settings, settings.run(call))


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
    live = show and _err.is_terminal

    def report(run: AsyncRun) -> None:
        nonlocal done
        done += 1
        if live:
            progress.advance(task)
            progress.console.print(f"{run.id} ", _status(run.status.value))
        elif show:
            click.echo(f"{run.id} {run.status.value} ({done}/{total})", err=True)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    progress = Progress(
        *columns, TimeElapsedColumn(), console=_err, transient=True, disable=not live
    )
    task = progress.add_task("waiting", total=total)
    pending = [run for run in handles if not run.is_terminal]

    async def describe() -> None:
        while True:
            counts = Counter(run.status.value.lower() for run in pending if not run.is_terminal)
            text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            progress.update(task, description=text or "waiting")
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
@_json_flag
@click.pass_obj
def cancel(settings: Settings, run_ids: tuple[str, ...]) -> None:
    """Cancel runs (finished ones are left as they are)."""
    outcomes = settings.run(lambda lume: lume.runs.cancel_many(run_ids))
    _show_runs(settings, [o.value for o in outcomes if o.ok and o.value is not None])
    failures = [(run_ids[o.index], o.error) for o in outcomes if not o.ok]
    if failures:
        _fail("; ".join(f"{run_id}: {error}" for run_id, error in failures))


@runs.command()
@click.argument("run_id")
@_json_flag
@click.pass_obj
def logs(settings: Settings, run_id: str) -> None:
    """Show a run's log, oldest first."""
    entries = settings.run(lambda lume: lume.runs.logs(run_id).collect())
    if settings.json:
        return _print_json(entries)
    table = _table("TIME", "LEVEL", "MESSAGE", "CODE")
    for e in entries:
        style = "red" if e.level in ("ERROR", "CRITICAL") else ""
        table.add_row(f"{e.time:%H:%M:%S.%f}"[:-3], Text(e.level, style=style), e.message, e.code)
    _out.print(table)
    return None


@runs.command()
@click.argument("run_id")
@click.option("--rejects", is_flag=True, help="Show the rejected rows instead.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@_json_flag
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
        return _print_json(rows)
    if rejects:
        table = _table("INDEX", "ERRORS", "SOURCE RECORD")
        for r in rows:
            why = ", ".join(f"{e.field}: {e.error_code}" for e in r.errors)
            table.add_row(str(r.index), why, orjson.dumps(r.source_record).decode())
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        table = _table(*columns)
        for row in rows:
            table.add_row(*(_cell(row.get(key)) for key in columns))
    _out.print(table)
    if not rows:
        _out.print("(no rows)")
    return None


# -- output --------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    data = _converter.unstructure(value)
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _table(*columns: str) -> Table:
    return Table(*columns, box=SIMPLE_HEAD, header_style="bold", show_edge=False)


def _status(value: str) -> Text:
    return Text(value, style=_STYLE.get(value, "cyan"))


def _cell(value: Any) -> str:
    return (
        "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
    )


def _rows(run: AsyncRun) -> str:
    results = run.metadata.results if run.metadata else None
    if results is None or results.input_rows is None:
        return ""
    return f"{results.mapped_rows or 0:,} / {results.rejected_rows or 0:,}"


def _show_runs(settings: Settings, handles: Iterable[AsyncRun]) -> None:
    handles = list(handles)
    if settings.json:
        return _print_json([run.data for run in handles])
    table = _table()
    # Ids and statuses are never cut; the other columns give way on a narrow terminal.
    table.add_column("ID", no_wrap=True, min_width=max((len(r.id) for r in handles), default=2))
    table.add_column("STATUS", no_wrap=True, min_width=14)
    for name in ("FLOW VERSION", "CREATED (UTC)", "MAPPED / REJECTED", "SOURCE"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for run in handles:
        created = f"{run.created_at:%Y-%m-%d %H:%M:%S}"
        source = run.source_path or "(inline rows)"
        status = _status(run.status.value)
        table.add_row(run.id, status, run.flow_version, created, _rows(run), source)
    _out.print(table)
    return None


def _show_run(settings: Settings, run: AsyncRun) -> None:
    if settings.json:
        return _print_json(run.data)
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("id", run.id)
    table.add_row("status", _status(run.status.value))
    table.add_row("flow version", run.flow_version)
    table.add_row("source", run.source_path or "(inline rows)")
    if run.label or run.tags:
        table.add_row("label / tags", f"{run.label or '-'} / {', '.join(run.tags) or '-'}")
    table.add_row("created", f"{run.created_at:%Y-%m-%d %H:%M:%S %Z}")
    meta = run.metadata
    if meta and meta.results and meta.results.input_rows is not None:
        r = meta.results
        table.add_row("rows in / mapped / rejected", f"{r.input_rows:,} / {_rows(run)}")
    if meta and meta.pipeline and meta.pipeline.duration_seconds is not None:
        table.add_row("duration", f"{meta.pipeline.duration_seconds:.1f} s")
    if run.error is not None:
        table.add_row("error", Text(f"{run.error.code}: {run.error.message}", style="red"))
    _out.print(table)
    return None
