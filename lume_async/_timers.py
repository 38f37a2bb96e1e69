"""Waiting on a ``Clock``: a sleep an event cuts short, and ``Timers`` (``call_at`` for any clock).

Every wait of the client goes through its clock (so tests can run them in virtual time); these
are the two shapes the poller needs besides a plain ``clock.sleep``.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio

from ._clock import Clock

__all__ = [
    "Timer",
    "Timers",
    "run_within",
    "shared_task",
    "sleep_until_set",
    "stopped",
    "wait_ended",
]

T = TypeVar("T")

logger = logging.getLogger("lume_async.waiting")


async def sleep_until_set(clock: Clock, event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set, or ``seconds`` of ``clock`` time have passed."""
    if event.is_set():
        return
    if seconds == math.inf:
        await event.wait()
        return
    async with anyio.create_task_group() as tg:

        async def ring() -> None:
            await clock.sleep(max(seconds, 0.0))
            tg.cancel_scope.cancel()

        tg.start_soon(ring)
        await event.wait()
        tg.cancel_scope.cancel()


async def run_within(
    clock: Clock, seconds: float | None, work: Callable[[], Awaitable[T]]
) -> tuple[bool, T | None]:
    """Run ``work()``, cancelled once ``seconds`` of ``clock`` time pass (None: no limit).

    Returns ``(True, its result)``, or ``(False, None)`` when it ran out of time; whatever
    ``work()`` raises propagates as it is.
    """
    if seconds is None:
        return True, await work()
    with anyio.CancelScope() as scope:

        async def ring() -> None:
            await clock.sleep(seconds)
            scope.cancel()

        watchdog = asyncio.get_running_loop().create_task(ring(), name="lume-deadline")
        try:
            return True, await work()
        finally:
            watchdog.cancel()
    return False, None


def shared_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A task that serves every caller of a client (its poller, its timers), on the running loop.

    It runs in a context of its own: not in a copy of the context of whichever call happened to
    start it, whose values (a request id bound for logging, a tracing span) would go on being
    those of every request it makes, long after that call is over.
    """
    return asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())


def stopped(task: asyncio.Task[None] | None) -> asyncio.Task[None] | None:
    """Cancel ``task`` if it still runs on the running loop; return it then, to wait for."""
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        return None
    task.cancel()
    return task


async def wait_ended(tasks: list[asyncio.Task[None] | None]) -> None:
    """Until ``tasks`` (but None) have ended. Their cancellation stays theirs: only the caller's
    own (a timeout, an anyio scope) stops this wait, and reaches the caller as itself."""
    ending = [task for task in tasks if task is not None]
    if ending:
        await asyncio.wait(ending)


class Timer:
    """One callback due at a deadline; ``Timers.cancel`` it once it is no longer wanted."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False


class Timers:
    """Callbacks at deadlines of a clock, run by one task on the loop that set them.

    The task sleeps on the clock until the earliest deadline (waking early when an earlier one
    is set) and ends as soon as no live timer is left. Cancelled timers are dropped as they come
    up, and all at once when they outnumber the live ones.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cancelled = 0
        self._live = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` once ``clock.monotonic()`` reaches ``deadline`` (``inf``: never)."""
        timer = Timer(deadline, callback)
        if deadline == math.inf:
            return timer
        earliest = self._heap[0][0] if self._heap else math.inf
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        self._live += 1
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = shared_task(self._run(self._wake), "lume-timers")
        elif deadline < earliest:
            self._wake.set()
        return timer

    def cancel(self, timer: Timer) -> None:
        """Cancel ``timer``; cheap, whatever the number of timers."""
        if timer.cancelled:
            return
        timer.cancelled = True
        if timer.deadline == math.inf:
            return  # never scheduled
        self._cancelled += 1
        self._live = max(0, self._live - 1)
        if not self._live:
            self._heap.clear()
            self._cancelled = 0
            self._wake.set()  # nothing left to wait for: let the task end now
        elif self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def clear(self) -> None:
        """Forget every timer (their loop is gone); the next ``call_at`` starts afresh."""
        self._heap.clear()
        self._cancelled = self._live = 0
        self._task = None

    async def aclose(self) -> None:
        """Stop the task; pending timers never fire."""
        await wait_ended([self.stop()])

    def stop(self) -> asyncio.Task[None] | None:
        """Cancel the task at once (pending timers never fire); return it if it has to end."""
        task, self._task = self._task, None
        self._heap.clear()
        self._cancelled = self._live = 0
        return stopped(task)

    async def _run(self, wake: asyncio.Event) -> None:
        clock = self._clock
        while self._heap:
            deadline, _, timer = self._heap[0]
            if timer.cancelled:
                heapq.heappop(self._heap)
                self._cancelled = max(0, self._cancelled - 1)
                continue
            now = clock.monotonic()
            if deadline <= now:
                heapq.heappop(self._heap)
                timer.cancelled = True  # fired: a later cancel() is a no-op
                self._live -= 1
                try:
                    timer.callback()
                except Exception:
                    logger.exception("a timer callback failed")
                continue
            wake.clear()
            await sleep_until_set(clock, wake, deadline - now)
