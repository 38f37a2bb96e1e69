"""``Deadlines``: the time limit of each request attempt, enforced by one shared timer.

A timer per request is costly on asyncio's own loop: each is a heap entry ordered by Python-level
comparisons, scheduled, cancelled and swept again, and aiohttp's total timeout sets up several
per request. Here an attempt in flight only records its deadline; one timer, due at the earliest
deadline plus some slack, cancels the attempts that are overdue and is set again for the next.
A limit therefore fires between its deadline and ``slack(seconds)`` later: a twentieth of the
limit, at least 10 ms and at most 1 s, so a 60 s limit costs one timer a second however many
requests are in flight.

An expired limit cancels its task and turns the ``CancelledError`` into the builtin
``TimeoutError`` at the end of the ``with`` block, unless something else asked to cancel the
task meanwhile: then the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from types import TracebackType
from typing import final

from ._event_loop import running_loop

__all__ = ["Deadlines", "slack"]


def slack(seconds: float) -> float:
    """How late after its deadline a limit of ``seconds`` may fire."""
    return min(max(seconds / 20, 0.01), 1.0)


@final
class Deadlines:
    """The deadlines of the attempts in flight on one event loop."""

    __slots__ = ("_due", "_live", "_loop", "_timer")

    def __init__(self) -> None:
        self._live: dict[Limit, None] = {}  # an ordered set
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = math.inf  # when the timer fires

    def limit(self, seconds: float) -> Limit:
        """A ``with`` block, in a task, bounded to ``seconds`` (a positive number)."""
        return Limit(self, seconds)

    def __len__(self) -> int:
        """How many limits are being watched."""
        return len(self._live)

    def _watch(self, limit: Limit, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # first use, or another loop: the old one's limits are gone
            self._live.clear()
            self._loop, self._timer, self._due = loop, None, math.inf
        self._live[limit] = None
        due = limit.when + limit.slack
        if due < self._due:
            self._schedule(loop, due)

    def _unwatch(self, limit: Limit) -> None:
        self._live.pop(limit, None)

    def close(self) -> None:
        """Cancel the timer (the client is closed): nothing of it stays scheduled on the loop."""
        timer, loop = self._timer, self._loop
        self._live.clear()
        self._timer, self._due = None, math.inf
        if timer is None or loop is None or loop.is_closed():
            return
        if running_loop() is loop:
            timer.cancel()
        else:  # closed from another thread: the timer is cancelled on its own loop
            with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                loop.call_soon_threadsafe(timer.cancel)

    def _schedule(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        # In a context of its own: the timer outlives the request that set it, and must not keep
        # that request's context (its caller's context variables, a lume_sync call) alive.
        self._timer = loop.call_at(due, self._expire, context=contextvars.Context())

    def _expire(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer, self._due = None, math.inf
        now = loop.time()
        overdue = [limit for limit in self._live if limit.when <= now]
        for limit in overdue:
            del self._live[limit]
            limit.expire()
        if self._live:
            self._schedule(loop, min(limit.when + limit.slack for limit in self._live))


@final
class Limit:
    """One attempt's limit: a context manager, entered once by a running task (synchronous, as
    it never waits: cheaper than an async one on the hot path)."""

    __slots__ = ("_cancelling", "_owner", "_task", "expired", "seconds", "slack", "when")

    def __init__(self, owner: Deadlines, seconds: float) -> None:
        self._owner = owner
        self.seconds = seconds
        self.slack = min(max(seconds / 20, 0.01), 1.0)  # slack(seconds), without a call
        self.when = math.inf
        self.expired = False
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    def __enter__(self) -> Limit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a request time limit needs a running task")
        loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self.when = loop.time() + self.seconds
        self._owner._watch(self, loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._unwatch(self)
        if not self.expired:
            return
        assert self._task is not None
        # Ours was not the only request to cancel the task: let the cancellation go on.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def expire(self) -> None:
        """Called by the shared timer once the deadline has passed."""
        assert self._task is not None
        self.expired = True
        self._task.cancel()
