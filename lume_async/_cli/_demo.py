"""``lume demo`` and ``lume emulator``: the in-process demo and the emulator server."""

from __future__ import annotations

import click
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._config import ENV_API_KEY, ENV_BASE_URL
from .._event_loop import run
from ._command import Number
from ._demo_run import DemoProgress, DemoSummary, run_demo
from ._escape import plain
from ._exit import CommandError, ExitStatus
from ._output import ORDER, err, out, print_json, status_text
from ._settings import Settings, json_flag

__all__ = ["demo", "emulator"]

_ROUTES = {
    "POST /v1/runs": "creates",
    "POST /v1/runs/batch-create": "batch creates (up to 100 runs each)",
    "POST /v1/runs/batch-get": "status polls (up to 100 runs each)",
    "GET /v1/runs/{run_id}/results": "result pages",
    "GET /v1/runs/{run_id}/rejects": "reject pages",
}


@click.command()
@click.option("--runs", "count", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option(
    "--time-scale",
    default=10.0,
    show_default=True,
    type=Number(min=0, min_open=True),
    help="Emulator clock speed-up.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the run mix and the data.")
@json_flag
@click.pass_obj
def demo(settings: Settings, count: int, time_scale: float, seed: int) -> None:
    """Fan out runs on an in-process emulator.

    Starts the emulator, creates a few hundred runs of mixed outcomes, waits for them with the
    shared poller while showing progress, pages through some results, and summarises it all.
    """
    live = Live(console=err, transient=True) if err.is_terminal and not settings.json else None
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
        summary = run(coro)
    else:
        with live:
            summary = run(coro)
    if settings.json:
        print_json(summary.to_json())
    else:
        _print_demo_summary(summary)


def _demo_panel(p: DemoProgress) -> Group:
    """The live display: what the demo does, a bar, and every count (wrapped, never cropped)."""
    finished = p.succeeded + p.partial + p.failed
    if p.phase == "creating":
        title, done, total, unit = "creating runs", p.created + p.refused, p.total, "sent"
    else:
        title, done, total, unit = _PHASES.get(p.phase, p.phase), finished, p.created, "finished"
    bar = Table.grid(expand=True, padding=(0, 1))
    bar.add_column(ratio=1)
    bar.add_column(no_wrap=True, justify="right")
    bar.add_row(ProgressBar(total=max(total, 1), completed=done), f"{done:,}/{total:,} {unit}")
    counts = Text.assemble(
        ("created ", "bold"),
        f"{p.created:,}/{p.total:,}   ",
        ("in flight ", "bold"),
        f"{p.running:,}   ",
        (f"succeeded {p.succeeded:,}", "green"),
        "   ",
        (f"partial {p.partial:,}", "yellow"),
        "   ",
        (f"failed {p.failed + p.refused:,}", "red"),
    )
    return Group(Text(f"lume demo: {title}", style="bold"), bar, counts)


_PHASES = {
    "waiting": "waiting for the runs (one shared poller)",
    "paging": "paging through results and rejects",
    "done": "done",
}


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
    for status in sorted(s.statuses, key=lambda v: ORDER.index(v) if v in ORDER else 99):
        table.add_row(status_text(status), f"{s.statuses[status]:,}")
    if s.refused:
        table.add_row("refused at create", f"{s.refused:,}")
    table.add_section()
    table.add_row("rows read", f"{s.rows_input:,}")
    table.add_row("rows mapped", f"{s.rows_mapped:,}")
    table.add_row("rows rejected", f"{s.rows_rejected:,}")
    table.add_row("rows / rejects paged through", f"{s.rows_paged:,} / {s.rejects_paged:,}")
    for field, code, n in s.top_reject_reasons:
        table.add_row(plain(f"  {code} on {field}"), f"{n:,}")
    table.add_section()
    table.add_row("requests sent", f"{s.requests_total:,}")
    for route in sorted(s.requests, key=lambda r: list(_ROUTES).index(r) if r in _ROUTES else 99):
        table.add_row(plain(f"  {_ROUTES.get(route, route)}"), f"{s.requests[route]:,}")
    table.add_section()
    table.add_row("wall time", f"{s.wall_seconds:.1f} s")
    out.print(table)
    out.print(
        "\nNext, the same commands against a real service:\n"
        f"  export {ENV_BASE_URL}=https://api.lume.ai {ENV_API_KEY}=<your key>\n"
        "  lume runs create customer_cleaner:v1 s3://bucket/batch_001 --wait\n"
        "or against an emulator of your own: lume emulator --port 8080"
    )


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """Serve the Lume API emulator (see lume emulator --help)."""
    # Loaded here: the other commands never start an emulator (nor load aiohttp's server).
    from ..testing._main import BadArguments, emulator_for, listening_failure, serve_until_stopped

    try:
        server = emulator_for(list(args), "lume emulator")
    except BadArguments as exc:
        raise CommandError(str(exc), status=ExitStatus.USAGE, kind="usage") from None
    try:
        serve_until_stopped(server)
    except OSError as exc:
        raise CommandError(listening_failure(server, exc)) from None
