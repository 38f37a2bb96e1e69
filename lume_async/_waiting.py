"""One poller per client: every run anybody waits on is asked about together.

Each sweep folds all watched run ids into ``batch-get`` requests of up to 100 ids (a few in flight
at once). The sweep interval starts at the smallest ``poll_interval`` of the current waiters, grows
by half while nothing changes (up to ``max_interval``), drops back as soon as a run moves, and is
never shorter than a server's Retry-After after a refused sweep. A newcomer never waits longer than
its own ``poll_interval`` for its first look, however far the sweeper had backed off. A completion
wakes exactly the waiters of that run, and each waiter keeps its own deadline.

With a webhook receiver (``enable_push``), a completion event makes the sweeper fetch that run at
once (events arriving together share a request), and full sweeps slow to ``safety_net_interval``:
they only catch deliveries that never arrive.

Cost: registering and finishing a waiter is O(its runs); a sweep is O(watched runs) plus one
request per 100 of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._exceptions import (
    APIConnectionError,
    LumeError,
    RateLimitError,
    RunNotFoundError,
    RunTimeoutError,
    ServerError,
)
from ._validation import check_interval, check_timeout
from .models import RunData

if TYPE_CHECKING:
    from ._runs_core import RunCell
    from .models import WebhookEvent

__all__ = ["Waiting"]

logger = logging.getLogger("lume_async.waiting")

BatchFetch = Callable[[list[str]], Awaitable[dict[str, RunData]]]
T = TypeVar("T")

BATCH_SIZE = 100
_CONCURRENT_BATCHES = 8
_GROWTH = 1.5
# Pauses are shortened by up to this fraction at random, so that clients started together do not
# poll together; never lengthened, so a waiter is looked at within its poll_interval.
_JITTER = 0.1
# Events that arrive within this window are fetched in one request.
_PUSH_WINDOW = 0.005
# Completion events remembered for runs nobody waits on yet (the event can beat the wait() call).
_RECENT_EVENTS = 10_000


class _Watch:
    """One caller's interest in some runs: their cells, and what to do as each one ends."""

    __slots__ = ("interval", "on_done", "on_error", "remaining", "targets")

    def __init__(
        self,
        targets: dict[str, list[tuple[RunCell, Any]]],
        interval: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.targets = targets
        self.interval = interval
        self.on_done = on_done
        self.on_error = on_error
        self.remaining = len(targets)


class Waiting:
    """The shared poller of one client (and of every ``with_options`` view of it)."""

    def __init__(
        self,
        fetch: BatchFetch,
        *,
        max_interval: float = 60.0,
        safety_net_interval: float = 30.0,
    ) -> None:
        check_interval(max_interval, "max_interval")
        check_interval(safety_net_interval, "safety_net_interval")
        self._fetch = fetch
        self._max_interval = max_interval
        self._safety_net = safety_net_interval
        self._watches: dict[str, set[_Watch]] = {}  # run id -> the watches waiting on it
        self._all: set[_Watch] = set()
        self._intervals: dict[float, int] = {}  # poll_interval -> how many live watches ask it
        self._hot: set[str] = set()  # runs to fetch now (a completion event named them)
        self._recent: dict[str, None] = {}  # completion events for runs not watched (yet)
        self._push = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._interval = math.inf
        self._restart_at: float | None = None
        self._rng = random.Random()
        self.sweeps = 0
        self.requests = 0

    # -- settings ------------------------------------------------------------------------------
    @property
    def safety_net_interval(self) -> float:
        """Seconds between full sweeps while completion events arrive by webhook."""
        return self._safety_net

    @safety_net_interval.setter
    def safety_net_interval(self, seconds: float) -> None:
        check_interval(seconds, "safety_net_interval")
        self._safety_net = seconds
        self._poke()

    @property
    def interval(self) -> float:
        """The current pause between full sweeps (``inf`` while nobody waits)."""
        return self._interval

    # -- the webhook fast path ---------------------------------------------------------------
    def enable_push(self) -> None:
        """Completion events will arrive through ``on_event``; poll only as a safety net."""
        self._push = True

    def on_event(self, event: WebhookEvent) -> None:
        """A verified completion event: fetch that run now if anybody waits on it.

        Safe to call from any thread; the work is done on the loop the waiters run on.
        """
        data = event.data
        if not data.status.is_terminal:
            return
        loop = self._loop
        if loop is not None and _running_loop() is not loop:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._pushed, data.run_id)
            return
        self._pushed(data.run_id)

    def _pushed(self, run_id: str) -> None:
        if run_id in self._watches:
            self._hot.add(run_id)
            self._poke()
            return
        # Nobody waits on it yet: remember, so a wait() that comes late fetches it at once.
        self._recent[run_id] = None
        if len(self._recent) > _RECENT_EVENTS:
            del self._recent[next(iter(self._recent))]

    # -- waiting -------------------------------------------------------------------------------
    async def wait(
        self, cell: RunCell, run: T, *, timeout: float | None, poll_interval: float
    ) -> None:
        """Until ``cell`` is terminal; RunTimeoutError (naming ``run``) when ``timeout`` passes."""
        check_timeout(timeout)
        check_interval(poll_interval)
        if cell.data.is_terminal:
            return
        done = asyncio.get_running_loop().create_future()

        def finished(_: object) -> None:
            if not done.done():
                done.set_result(None)

        def failed(exc: BaseException) -> None:
            if not done.done():
                done.set_exception(exc)

        watch = self._add([(cell, run)], poll_interval, finished, failed)
        try:
            with anyio.fail_after(math.inf if timeout is None else timeout):
                await done
        except TimeoutError:
            data = cell.data
            raise RunTimeoutError(
                f"run {data.id} is still {data.status.value} after {timeout:g} s", run=run
            ) from None
        finally:
            self._remove(watch)

    async def as_completed(
        self,
        targets: Sequence[tuple[RunCell, T]],
        *,
        timeout: float | None,
        poll_interval: float,
        on_progress: Callable[[int, int, int], None] | None = None,
    ) -> AsyncIterator[T]:
        """Each target's ``T`` as its cell turns terminal, in completion order."""
        check_timeout(timeout)
        check_interval(poll_interval)
        total = len(targets)
        deadline = None if timeout is None else time.monotonic() + timeout
        ready: asyncio.Queue[tuple[RunCell, T] | BaseException] = asyncio.Queue()
        pending = []
        for target in targets:
            if target[0].data.is_terminal:
                ready.put_nowait(target)
            else:
                pending.append(target)
        watch = (
            self._add(pending, poll_interval, ready.put_nowait, ready.put_nowait)
            if pending
            else None
        )
        done = failed = 0
        try:
            while done < total:
                remaining = math.inf if deadline is None else deadline - time.monotonic()
                item: tuple[RunCell, T] | BaseException | None = None
                with anyio.move_on_after(remaining):
                    item = await ready.get()
                if item is None:
                    unfinished = next((r for c, r in targets if not c.data.is_terminal), None)
                    raise RunTimeoutError(
                        f"{total - done} of {total} runs are not finished after {timeout:g} s",
                        run=unfinished,
                    )
                if isinstance(item, BaseException):
                    raise item
                cell, run = item
                done += 1
                failed += cell.data.status.is_failure
                if on_progress is not None:
                    on_progress(done, total, failed)
                yield run
        finally:
            if watch is not None:
                self._remove(watch)

    # -- registry ------------------------------------------------------------------------------
    def _add(
        self,
        targets: Sequence[tuple[RunCell, Any]],
        interval: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> _Watch:
        self._bind_loop()
        by_id: dict[str, list[tuple[RunCell, Any]]] = {}
        for target in targets:
            by_id.setdefault(target[0].data.id, []).append(target)
        watch = _Watch(by_id, interval, on_done, on_error)
        self._all.add(watch)
        self._intervals[interval] = self._intervals.get(interval, 0) + 1
        recent = self._recent
        for run_id in by_id:
            self._watches.setdefault(run_id, set()).add(watch)
            if recent and run_id in recent:
                del recent[run_id]
                self._hot.add(run_id)
        # The newcomer is looked at within its own poll_interval, however far the sweeper had
        # backed off; it does not sweep at once, so that waiters arriving together share sweeps.
        self._restart_at = interval if self._restart_at is None else min(self._restart_at, interval)
        self._ensure_sweeper()
        return watch

    def _remove(self, watch: _Watch) -> None:
        """Forget a watch (finished, failed, timed out or cancelled); idempotent."""
        self._detach(watch)
        for run_id in watch.targets:
            watchers = self._watches.get(run_id)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[run_id]
                    self._hot.discard(run_id)

    def _detach(self, watch: _Watch) -> None:
        """Stop counting a watch among the live ones (its runs may still be registered)."""
        if watch not in self._all:
            return
        self._all.discard(watch)
        left = self._intervals[watch.interval] - 1
        if left:
            self._intervals[watch.interval] = left
        else:
            del self._intervals[watch.interval]
        if not self._all:
            self._interval = math.inf
            self._poke()  # let an idle sweeper end now rather than at its next sweep

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # First use, or the client moved to another loop: what the old loop waited on died with
        # it (its waiters can never run again), and its sweeper cannot be reached from here.
        self._loop = loop
        self._task = self._wake = None
        self._watches.clear()
        self._all.clear()
        self._intervals.clear()
        self._hot.clear()
        self._restart_at = None
        self._interval = math.inf

    def _ensure_sweeper(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._sweeper(self._wake), name="lume-waiting-sweeper"
            )
        else:
            self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def aclose(self) -> None:
        """Stop sweeping; callers still waiting get a LumeError instead of waiting forever."""
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is _running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._loop is _running_loop():
            self._fail_all(LumeError("the client was closed while waiting for runs"))

    # -- sweeping ------------------------------------------------------------------------------
    def _fastest(self) -> float:
        return min(self._intervals, default=self._max_interval)

    def _pause(self) -> float:
        pause = max(self._interval, self._safety_net) if self._push else self._interval
        return pause * (1.0 - _JITTER * self._rng.random())

    async def _sweeper(self, wake: asyncio.Event) -> None:
        next_full = time.monotonic()  # a sweeper starts with a sweep
        hold = 0.0  # after a refused sweep: no request at all before this
        while self._all:
            now = time.monotonic()
            until = now if self._hot and now >= hold else max(next_full, hold)
            if until > now:
                with anyio.move_on_after(until - now):
                    await wake.wait()
            wake.clear()
            if not self._all:
                break
            now = time.monotonic()
            if self._restart_at is not None:
                fastest, self._restart_at = self._restart_at, None
                self._interval = min(self._interval, fastest)
                next_full = min(next_full, now + fastest)
            if now < hold:
                continue
            try:
                if self._hot:
                    await anyio.sleep(_PUSH_WINDOW)
                    await self._sweep([])
                if time.monotonic() < next_full:
                    continue
                start = time.monotonic()
                changed = await self._sweep(list(self._watches))
            except (ServerError, RateLimitError, APIConnectionError) as exc:
                # The transport already retried: back off, never sooner than the server asked.
                cap = max(self._fastest(), self._max_interval)
                self._interval = min(self._interval * _GROWTH, cap)
                hint = exc.retry_after if isinstance(exc, ServerError | RateLimitError) else None
                pause = max(self._interval, hint or 0.0)
                logger.warning("status sweep failed, next in %.2f s: %s", pause, exc)
                hold = next_full = time.monotonic() + pause
                continue
            except Exception as exc:
                # Not transient (a revoked key, a closed client, an answer that makes no sense):
                # every waiter hears it; the next waiter starts a fresh sweeper.
                self._fail_all(exc)
                break
            fastest = self._fastest()
            if changed:
                self._interval = fastest
            else:
                self._interval = min(self._interval * _GROWTH, max(fastest, self._max_interval))
            pause = self._pause()
            # Periodic from the start of the sweep, but a slow sweep still leaves a gap.
            next_full = max(start + pause, time.monotonic() + pause / 4)
        self._interval = math.inf

    async def _sweep(self, ids: list[str]) -> bool:
        """Ask about ``ids`` (100 per request, a few requests at once); True if any run moved.

        Runs named by completion events meanwhile go into the next group, so an event never
        waits for a whole sweep to finish.
        """
        if ids:
            self.sweeps += 1
        changed = False
        chunks = deque(ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE))
        while chunks or self._hot:
            group: list[list[str]] = []
            if self._hot:
                hot = [run_id for run_id in self._hot if run_id in self._watches]
                self._hot.clear()
                group.extend(hot[i : i + BATCH_SIZE] for i in range(0, len(hot), BATCH_SIZE))
            while chunks and len(group) < _CONCURRENT_BATCHES:
                group.append(chunks.popleft())
            if not group:
                continue
            self.requests += len(group)
            answers = await asyncio.gather(
                *(self._fetch(chunk) for chunk in group), return_exceptions=True
            )
            error: BaseException | None = None
            for chunk, answer in zip(group, answers, strict=True):
                if isinstance(answer, BaseException):
                    if error is None:
                        error = answer
                    # Runs pushed to us are fetched again first thing after the backoff.
                    self._hot.update(run_id for run_id in chunk if run_id in self._watches)
                    continue
                for run_id in chunk:
                    data = answer.get(run_id)
                    if data is None:
                        self._fail_run(run_id)
                    elif self._apply(data):
                        changed = True
            if error is not None:
                raise error
        return changed

    def _apply(self, data: RunData) -> bool:
        """Bring the cells waited on for this run up to date; True if its status moved."""
        watchers = self._watches.get(data.id)
        if not watchers:
            return False
        moved = False
        for watch in watchers:
            for cell, _ in watch.targets.get(data.id, ()):
                moved |= cell.apply(data)
        if data.status.is_terminal:
            del self._watches[data.id]
            self._hot.discard(data.id)
            for watch in watchers:
                self._finish(watch, data.id)
            return True
        return moved

    def _finish(self, watch: _Watch, run_id: str) -> None:
        watch.remaining -= 1
        if watch.remaining <= 0:
            self._detach(watch)
        for target in watch.targets.get(run_id, ()):
            watch.on_done(target)

    def _fail_run(self, run_id: str) -> None:
        watchers = self._watches.pop(run_id, None)
        if not watchers:
            return
        self._hot.discard(run_id)
        error = RunNotFoundError(
            f"run {run_id} is no longer visible to this API key", status_code=404, code="not_found"
        )
        for watch in watchers:
            self._remove(watch)
            watch.on_error(error)

    def _fail_all(self, exc: BaseException) -> None:
        for watch in list(self._all):
            self._remove(watch)
            watch.on_error(exc)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
