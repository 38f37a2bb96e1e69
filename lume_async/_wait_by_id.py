"""``runs.wait(run_id)``: reading a run by its id and waiting for it, within one time limit.

The first read counts against the timeout like the wait after it: a service that answers it
slowly, or asks again and again to come back later, does not stretch the call. As at the end of
any wait, that read may go on past the deadline for as long as a last look may (``LAST_LOOK``),
so that ``timeout=0`` still means one look at the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._clock import Clock
from ._exceptions import RunTimeoutError
from ._run import AsyncRun
from ._timers import run_within
from ._waiting import LAST_LOOK

__all__ = ["restated", "wait_by_id"]


async def wait_by_id(
    read: Callable[[], Awaitable[AsyncRun]],
    run_id: str,
    *,
    clock: Clock,
    timeout: float | None,
    poll_interval: float,
) -> AsyncRun:
    """``read()`` the run, then wait for it; RunTimeoutError once ``timeout`` has passed."""
    if timeout is None:
        run = await read()
        return await run.wait(timeout=None, poll_interval=poll_interval)
    deadline = clock.monotonic() + timeout
    finished, got = await run_within(clock, max(timeout, LAST_LOOK), read)
    if not finished or got is None:
        raise RunTimeoutError(f"run {run_id} could not be read within {timeout:g} s")
    run = got
    left = deadline - clock.monotonic()
    if run.is_terminal:
        return run
    if left <= 0:  # that read was the last look
        raise RunTimeoutError(
            f"run {run.id} is still {run.status.value} after {timeout:g} s", run=run
        )
    try:
        return await run.wait(timeout=left, poll_interval=poll_interval)
    except RunTimeoutError as exc:
        raise restated(exc, left, timeout) from None


def restated(exc: RunTimeoutError, waited: float, timeout: float) -> RunTimeoutError:
    """``exc``, from a wait given ``waited`` seconds of a caller's ``timeout`` (the rest went
    before it), as the caller's: naming ``timeout``, with its run and notes."""
    message = str(exc).replace(f"after {waited:g} s", f"after {timeout:g} s")
    error = RunTimeoutError(message, run=exc.run)
    for note in getattr(exc, "__notes__", ()):
        error.add_note(note)
    return error
