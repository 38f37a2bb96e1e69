"""``lume runs wait``, and the waiting that ``runs create --wait`` shares with it.

Waiting goes through the client's shared poller (``runs.as_completed``): a live bar on a
terminal, one line per finished run otherwise. How the runs ended decides the exit status (see
``_exit``): a script can trust ``lume runs wait ... && next_step``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._client import AsyncLume
from .._exceptions import RunTimeoutError
from .._run import AsyncRun
from .._wait_by_id import restated
from ._command import LumeCommand, Number
from ._escape import plain, visible
from ._exit import runs_outcome
from ._output import err, show_runs, status_text
from ._settings import Settings, json_flag
from ._streams import note

__all__ = ["wait", "wait_for", "wait_options"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT = 3600.0
DEFAULT_POLL_INTERVAL = 5.0


def wait_options(command: F) -> F:
    """``--timeout``, ``--poll-interval`` and ``--fail-on-partial``: the SDK's defaults."""
    options = (
        click.option(
            "--fail-on-partial",
            is_flag=True,
            help="Exit 4 when a run ends PARTIAL_FAILED (some rows rejected).",
        ),
        click.option(
            "--poll-interval",
            default=DEFAULT_POLL_INTERVAL,
            type=Number(min=0.01),
            help="Seconds between status polls (backs off while nothing changes).",
        ),
        click.option(
            "--timeout",
            "wait_timeout",
            default=DEFAULT_TIMEOUT,
            type=Number(min=0, min_open=True, infinite=True),
            help="Give up waiting after this many seconds (exit 1); the runs go on.",
        ),
    )
    for option in options:
        command = option(command)
    return command


@click.command(cls=LumeCommand, sdk_names={"timeout": "wait_timeout"})
@click.argument("run_ids", nargs=-1, required=True)
@wait_options
@json_flag
@click.pass_obj
def wait(
    settings: Settings,
    run_ids: tuple[str, ...],
    wait_timeout: float,
    poll_interval: float,
    fail_on_partial: bool,
) -> None:
    """Wait until every RUN_ID is finished, showing progress.

    Exits 0 when they all succeeded, 3 when one ended FAILED, CRASHED or CANCELED, 4 when one
    ended PARTIAL_FAILED and --fail-on-partial is given.
    """

    async def call(lume: AsyncLume) -> list[AsyncRun]:
        # Reading the runs is part of the wait: --timeout bounds both.
        deadline = time.monotonic() + wait_timeout
        with anyio.move_on_after(wait_timeout) as reading:
            handles = [outcome.unwrap() for outcome in await lume.runs.get_many(run_ids)]
        if reading.cancelled_caught:
            raise RunTimeoutError(f"the runs could not be read within {wait_timeout:g} s")
        settings.watch(handles)
        left = max(deadline - time.monotonic(), 0.0)
        try:
            await wait_for(lume, handles, settings, timeout=left, poll_interval=poll_interval)
        except RunTimeoutError as exc:  # named with the whole --timeout, as given
            raise restated(exc, left, wait_timeout) from None
        return handles

    handles = settings.run(call)
    settings.outcome = ended = runs_outcome(handles, fail_on_partial=fail_on_partial)
    show_runs(settings, handles)
    if ended is not None:
        raise ended


async def wait_for(
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
            note(visible(f"{run.id} {run.status.value} ({done}/{total})"))

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

    with progress if live else contextlib.nullcontext():  # disabled, rich 13 still ends a line
        # Every run, finished ones too (they come first): a wait that times out counts them all.
        finished = lume.runs.as_completed(handles, timeout=timeout, poll_interval=poll_interval)
        ticker = asyncio.create_task(describe()) if live else None
        try:
            async for run in finished:
                report(run)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.wait([ticker])
