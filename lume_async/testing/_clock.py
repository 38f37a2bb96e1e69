"""``VirtualClock``: a ``Clock`` whose time only moves when told to, or when everything waits on it.

::

    clock = VirtualClock()
    async with AsyncLume(api_key=..., base_url=..., clock=clock) as lume:
        await run.wait(timeout=3600)   # an hour of polling, without waiting an hour

Sleeps end in deadline order (equal deadlines in the order they began), each at exactly the time
it asked for, so a test sees the same sequence on every run. With ``autojump`` (the default) the
clock jumps to the earliest deadline whenever the event loop has nothing else to do: requests to
a server on the same loop (an ``async with Emulator()``) are answered while virtual time stands
still, and waits take no real time at all. Without it, only ``advance()`` moves time.

Autojump watches the loop it runs on. A server on another thread is invisible to it (a request
in flight there looks like an idle loop), so with one use ``autojump=False`` and ``advance()``.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import threading
import time
from typing import Final

from .._validation import bad_value, check_bool, check_seconds, wrong_type

__all__ = ["VirtualClock"]

# Loop turns in a row with nothing ready before the clock jumps: the first turn may still be
# followed by answers to what was written to a socket during it, which the next poll shows.
_IDLE_TURNS: Final = 2
# Where the loop cannot tell whether callbacks are ready (an event loop other than asyncio's
# own), the clock waits this many turns instead.
_BLIND_TURNS: Final = 16


class _Sleeper:
    __slots__ = ("deadline", "future", "loop")

    def __init__(
        self, deadline: float, future: asyncio.Future[None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.deadline = deadline
        self.future: asyncio.Future[None] | None = future
        self.loop: asyncio.AbstractEventLoop | None = loop

    @property
    def finished(self) -> bool:
        return self.future is None or self.future.done()

    def forget(self) -> None:
        """Let go of the loop of a sleep that ended unwoken (cancelled): its entry stays in the
        heap until it comes to the top, and a clock shared by many loops would keep them all."""
        self.future = self.loop = None


class VirtualClock:
    """A clock for tests: ``monotonic()`` starts at 0, ``time()`` at the real time of creation.

    ``advance(seconds)`` moves both forward and ends every sleep that falls due, in deadline
    order. Safe to share between threads and event loops (an emulator on its own thread and a
    client on another); ``advance()`` may be called from any thread.
    """

    def __init__(self, *, autojump: bool = True) -> None:
        self._lock = threading.Lock()
        self._now = 0.0
        self._epoch = time.time()
        self._heap: list[tuple[float, int, _Sleeper]] = []
        self._order = itertools.count()
        self._pending = 0
        self._autojump = check_bool(autojump, "autojump")
        self._jumpers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:g}, sleepers={self._pending})"

    # -- reading -----------------------------------------------------------------------------------
    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._now

    def time(self) -> float:
        """Wall-clock seconds: the real time when the clock was made, plus virtual time since."""
        return self._epoch + self._now

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting on this clock."""
        return self._pending

    @property
    def next_deadline(self) -> float | None:
        """When the earliest waiting sleep ends (``monotonic()`` time), or None if none waits."""
        with self._lock:
            self._drop_finished()
            return self._heap[0][0] if self._heap else None

    @property
    def autojump(self) -> bool:
        """Whether the clock jumps to the next deadline whenever the event loop is idle."""
        return self._autojump

    @autojump.setter
    def autojump(self, value: bool) -> None:
        self._autojump = check_bool(value, "autojump")
        if self._autojump:
            with self._lock:
                loops = {sleeper.loop for _, _, sleeper in self._heap}
            for loop in loops:
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self._ensure_jumper, loop)

    # -- waiting -----------------------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time (``inf``: until cancelled)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise wrong_type("seconds", "a number", seconds)
        if math.isnan(seconds):
            raise bad_value("seconds", "a number, not NaN", seconds)
        loop = asyncio.get_running_loop()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            sleeper = _Sleeper(self._now + seconds, future, loop)
            heapq.heappush(self._heap, (sleeper.deadline, next(self._order), sleeper))
            self._pending += 1
        try:
            self._ensure_jumper(loop)
            await future
        finally:
            if not future.done():
                future.cancel()
            with self._lock:
                self._pending -= 1
                if future.cancelled():
                    sleeper.forget()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and end every sleep that falls due, in order."""
        step = check_seconds(seconds, "seconds", allow_none=False) or 0.0
        with self._lock:
            target = self._now + step
            if not math.isfinite(self._epoch + target):
                raise bad_value("seconds", "a step that keeps the clock's time finite", seconds)
            self._move_to(target)

    # -- moving time -------------------------------------------------------------------------------
    def _drop_finished(self) -> None:
        while self._heap and self._heap[0][2].finished:
            heapq.heappop(self._heap)

    def _move_to(self, target: float) -> None:
        """Set the time to ``target``, ending sleeps due by then in deadline order (lock held)."""
        self._now = max(self._now, target)
        while self._heap and self._heap[0][0] <= self._now:
            _, _, sleeper = heapq.heappop(self._heap)
            _wake(sleeper)

    def _ensure_jumper(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._autojump or loop.is_closed():
            return
        task = self._jumpers.get(loop)
        if task is None or task.done():
            task = self._jumpers[loop] = loop.create_task(self._jump_when_idle(loop))
            task.add_done_callback(functools.partial(self._forget_jumper, loop))

    def _forget_jumper(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        """Hold no loop once its jumper is done: a clock shared by many tests, each on a loop of
        its own, would keep every one of them."""
        if self._jumpers.get(loop) is task:
            del self._jumpers[loop]

    def _earliest_on(self, loop: asyncio.AbstractEventLoop) -> float | None:
        """The earliest finite deadline of a sleep on ``loop`` (lock held)."""
        self._drop_finished()
        if not self._heap:
            return None
        deadline, _, sleeper = self._heap[0]
        if sleeper.loop is not loop:  # several loops share the clock: look further
            deadline = min(
                (d for d, _, s in self._heap if s.loop is loop and not s.finished),
                default=math.inf,
            )
        return deadline if deadline < math.inf else None

    async def _jump_when_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        idle = 0
        while self._autojump:
            await asyncio.sleep(0)
            busy = _ready_callbacks(loop)
            if busy is None:
                idle += 1
                needed = _BLIND_TURNS
            else:
                idle = 0 if busy else idle + 1
                needed = _IDLE_TURNS
            with self._lock:
                target = self._earliest_on(loop)
                if target is None:
                    return  # nothing to jump to; the next sleep starts a new jumper
                if idle >= needed:
                    idle = 0
                    self._move_to(target)


def _wake(sleeper: _Sleeper) -> None:
    future, loop = sleeper.future, sleeper.loop
    if future is None or loop is None or future.done() or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        future.set_result(None)
    else:
        loop.call_soon_threadsafe(_finish, future)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _ready_callbacks(loop: asyncio.AbstractEventLoop) -> int | None:
    """How many callbacks wait to run on ``loop`` besides the caller; None if it cannot tell.

    asyncio has no public way to ask whether its loop is idle (trio's clock asks its own
    scheduler); this reads the run queue of asyncio's loop, and only reads it.
    """
    ready = getattr(loop, "_ready", None)
    return len(ready) if ready is not None else None
