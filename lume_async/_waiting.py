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

Every pause and deadline is on the client's clock (virtual time in tests). Cost: registering and
finishing a waiter is O(its runs); a sweep is O(watched runs) plus one request per 100 of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._clock import SYSTEM_CLOCK, Clock
from ._event_loop import OTHER_LOOP, current_task, running_loop
from ._exceptions import (
    APIConnectionError,
    LumeError,
    RateLimitError,
    RunTimeoutError,
    ServerError,
)
from ._last_looks import LAST_LOOK, LastLooks
from ._log_text import Printable
from ._timers import Timers, shared_task, sleep_until_set, stopped, wait_ended
from ._validation import check_interval, check_timeout
from ._watches import CellOf, Failed, FetchOne, Watch, Watches
from .models import RunData

if TYPE_CHECKING:
    from ._batch_get import BatchFetch
    from ._runs_core import RunCell
    from .models import WebhookEvent

__all__ = ["BATCH_SIZE", "LAST_LOOK", "Waiting"]

logger = logging.getLogger("lume_async.waiting")

T = TypeVar("T")
_A = TypeVar("_A")

BATCH_SIZE: Final = 100
_CONCURRENT_BATCHES: Final = 8
_GROWTH: Final = 1.5
# Pauses are shortened by up to this fraction at random, so that clients started together do not
# poll together; never lengthened, so a waiter is looked at within its poll_interval.
_JITTER: Final = 0.1
# Events that arrive within this window are fetched in one request.
_PUSH_WINDOW: Final = 0.005


class Waiting:
    """The shared poller of one client (and of every ``with_options`` view of it)."""

    def __init__(
        self,
        fetch: BatchFetch,
        *,
        confirm: FetchOne | None = None,
        clock: Clock = SYSTEM_CLOCK,
        max_interval: float = 60.0,
        safety_net_interval: float = 30.0,
    ) -> None:
        check_interval(max_interval, "max_interval")
        check_interval(safety_net_interval, "safety_net_interval")
        self._fetch = fetch
        self._confirm = confirm
        self._clock = clock
        self._max_interval = max_interval
        self._safety_net = safety_net_interval
        self._watches = Watches(on_idle=self._idle)
        self._timers = Timers(clock)
        self._last_looks = LastLooks(clock, self._sweep, self._watches.watched)
        self._push = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._binding = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._interval = math.inf
        self._restart_at: float | None = None
        self._hold = 0.0  # after a refused sweep: no request at all before this
        self._begun = self._sweeping = 0  # full sweeps begun; the one in flight (its number), or 0
        self._failing: BaseException | None = None  # the last sweep's error, until one succeeds
        self._rng = random.Random()
        self.sweeps = 0
        self.requests = 0
        self.asked = 0  # run ids asked about, over all requests

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
        """A verified completion event: fetch its run now if anybody waits on it (any thread)."""
        if event.data.status.is_terminal:
            self._on_loop(self._pushed, event.data.run_id)

    def ended(self, data: RunData) -> None:
        """A handle's own call (``refresh``, ``cancel``, ``update``) brought its run's state:
        if the run ended, every wait on it ends now, with no request (any thread)."""
        if data.status.is_terminal:
            self._on_loop(self._watches.apply, data)

    def _on_loop(self, work: Callable[[_A], object], arg: _A) -> None:  # on the waiters' loop
        loop = self._loop
        if loop is not None and running_loop() is not loop:
            if not loop.is_closed():
                loop.call_soon_threadsafe(work, arg)
            return
        work(arg)

    def _pushed(self, run_id: str) -> None:
        if self._watches.push(run_id):
            self._poke()

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

        watch = self._add([run], lambda _: cell, poll_interval, finished, failed)
        since = self._begun  # the full sweeps begun before this wait: they do not ask for it
        timer = self._timers.call_at(self._deadline(timeout), lambda: finished(None))
        try:
            await done
            if not cell.data.is_terminal:  # the deadline: the run may have ended since the last
                await self._last_look([cell.data.id], since)  # sweep: one more look to say so
                if not cell.data.is_terminal:
                    data = cell.data
                    message = f"run {data.id} is still {data.status.value} after {timeout:g} s"
                    raise self._noted(RunTimeoutError(message, run=run))
        finally:
            self._timers.cancel(timer)
            self._watches.remove(watch)

    async def as_completed(
        self,
        targets: Sequence[T],
        *,
        cell_of: Callable[[T], RunCell],
        timeout: float | None,
        poll_interval: float,
        on_progress: Callable[[int, int, int], None] | None = None,
    ) -> AsyncIterator[T]:
        """Each target as its cell (``cell_of(target)``) turns terminal, in completion order."""
        check_timeout(timeout)
        check_interval(poll_interval)
        total = len(targets)
        ready: asyncio.Queue[T | Failed | None] = asyncio.Queue()
        pending = []
        for target in targets:
            if cell_of(target).data.is_terminal:
                ready.put_nowait(target)
            else:
                pending.append(target)

        watch = (
            self._add(pending, cell_of, poll_interval, ready.put_nowait, Failed.queued(ready))
            if pending
            else None
        )
        del pending
        since = self._begun
        # None in the queue: the deadline passed.
        timer = self._timers.call_at(self._deadline(timeout), lambda: ready.put_nowait(None))
        done = failures = 0
        looked = False
        try:
            while done < total:
                item = await ready.get()
                if item is None and not looked:
                    # Runs may have ended since the last sweep: one last look, whose completions
                    # queue up before the deadline's marker again.
                    looked = True
                    late = [cell_of(t).data for t in targets]
                    await self._last_look([d.id for d in late if not d.is_terminal], since)
                    ready.put_nowait(None)
                    continue
                if item is None:
                    unfinished = next((t for t in targets if not cell_of(t).data.is_terminal), None)
                    message = f"{total - done} of {total} runs are not finished after {timeout:g} s"
                    raise self._noted(RunTimeoutError(message, run=unfinished))
                if isinstance(item, Failed):
                    raise item.error.with_traceback(item.traceback)
                done += 1
                failures += cell_of(item).data.status.is_failure
                if on_progress is not None:
                    on_progress(done, total, failures)
                yield item
        finally:
            self._timers.cancel(timer)
            if watch is not None:
                self._watches.remove(watch)

    async def _last_look(self, run_ids: list[str], since: int) -> None:
        """At a deadline, ask about ``run_ids`` (watched since ``since`` full sweeps had begun)
        once more, with the other waits ending now (``LastLooks``): the last sweep may be
        ``max_interval`` old. A failed or slow look, or none while a sweep that asks about them
        is in flight or while the service asked to hold off, leaves the wait to end."""
        watched = [run_id for run_id in run_ids if self._watches.watched(run_id)]
        if watched and self._sweeping <= since and self._clock.monotonic() >= self._hold:
            self._failing = await self._last_looks(watched)

    def _noted(self, error: RunTimeoutError) -> RunTimeoutError:
        """``error``, saying why the runs were not heard of lately if the last sweep failed."""
        if self._failing is not None:
            error.add_note(f"the last status request failed: {self._failing!r}")
        return error

    def _deadline(self, timeout: float | None) -> float:
        return math.inf if timeout is None else self._clock.monotonic() + timeout

    # -- registry ------------------------------------------------------------------------------
    def _add(
        self,
        targets: Sequence[Any],
        cell_of: CellOf,
        interval: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> Watch:
        self._bind_loop()
        watch = self._watches.add(targets, cell_of, interval, on_done, on_error)
        # The newcomer is looked at within its own poll_interval, however far the sweeper had
        # backed off; it does not sweep at once, so that waiters arriving together share sweeps.
        self._restart_at = interval if self._restart_at is None else min(self._restart_at, interval)
        self._ensure_sweeper()
        return watch

    def _idle(self) -> None:
        """The last waiter is gone: the sweeper ends now, not at its next sweep. A waiter that
        left (cancelled, timed out) takes the request in flight with it: nobody reads it."""
        self._interval = math.inf
        task = self._task
        self._last_looks.stop()
        if task is not None and not task.done() and task is not current_task():
            task.cancel()
            self._task = self._wake = None
        else:
            self._poke()

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:  # no other thread rebinds a loop that is running: no lock
            return
        with self._binding:  # two threads, each running a loop, may get here at once
            if self._loop is loop:  # bound by the other, meanwhile
                return
            old = self._loop
            if old is not None and self._pid == os.getpid() and not old.is_closed():
                raise LumeError(OTHER_LOOP)  # its waiters may still be running there
            # First use, or the old loop closed (or belongs to the parent of this forked
            # process): what it waited on died with it, and its tasks cannot be reached from here.
            self._loop = loop
            self._pid = os.getpid()
            self._task = self._wake = None
            self._watches.clear()
            self._timers.clear()
            self._last_looks.clear()
            self._restart_at = None
            self._interval = math.inf

    def _ensure_sweeper(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = shared_task(self._sweeper(self._wake), "lume-waiting-sweeper")
        else:
            self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def aclose(self) -> None:
        """Stop sweeping; callers still waiting get a LumeError instead of waiting forever. All
        at once: a close cancelled while it waits for the tasks to end leaves none behind."""
        ending = [stopped(self._task), *self._last_looks.stop()]
        self._task = None
        if self._loop is running_loop():
            ending.append(self._timers.stop())
            self._watches.fail_all(LumeError("the client was closed while waiting for runs"))
        await wait_ended(ending)

    # -- sweeping ------------------------------------------------------------------------------
    def _pause(self) -> float:
        pause = max(self._interval, self._safety_net) if self._push else self._interval
        return pause * (1.0 - _JITTER * self._rng.random())

    async def _sweeper(self, wake: asyncio.Event) -> None:
        clock, watches = self._clock, self._watches
        next_full = clock.monotonic()  # a sweeper starts with a sweep
        while watches:
            now = clock.monotonic()
            hold = self._hold
            until = now if watches.has_hot and now >= hold else max(next_full, hold)
            if until > now:
                await sleep_until_set(clock, wake, until - now)
            wake.clear()
            if not watches:
                break
            now = clock.monotonic()
            if self._restart_at is not None:
                fastest, self._restart_at = self._restart_at, None
                self._interval = min(self._interval, fastest)
                next_full = min(next_full, now + fastest)
            if now < hold:
                continue
            try:
                if watches.has_hot:
                    await clock.sleep(_PUSH_WINDOW)
                    await self._sweep([])
                if clock.monotonic() < next_full:
                    continue
                start = clock.monotonic()
                self._begun += 1
                self._sweeping = self._begun
                try:
                    changed = await self._sweep(watches.run_ids())
                finally:
                    self._sweeping = 0
            except (ServerError, RateLimitError, APIConnectionError) as exc:
                # The transport already retried: back off as long as the server asks, up to
                # the longest pause between sweeps (a hint of a day must stall no one).
                cap = max(watches.fastest(self._max_interval), self._max_interval)
                self._interval = min(self._interval * _GROWTH, cap)
                hint = exc.retry_after if isinstance(exc, ServerError | RateLimitError) else None
                pause = max(self._interval, min(hint or 0.0, cap))
                logger.warning("status sweep failed, next in %.2f s: %s", pause, Printable(exc))
                self._hold = next_full = clock.monotonic() + pause
                self._failing = exc
                continue
            except Exception as exc:
                # Not transient (a revoked key, a closed client, an answer that makes no sense):
                # every waiter hears it; the next waiter starts a fresh sweeper.
                watches.fail_all(exc)
                break
            self._failing = None
            fastest = watches.fastest(self._max_interval)
            if changed:
                self._interval = fastest
            else:
                self._interval = min(self._interval * _GROWTH, max(fastest, self._max_interval))
            pause = self._pause()
            # Periodic from the start of the sweep, but a slow sweep still leaves a gap.
            next_full = max(start + pause, clock.monotonic() + pause / 4)
        self._interval = math.inf

    async def _sweep(self, ids: list[str]) -> bool:
        """Ask about ``ids`` (100 per request, a few requests at once); True if any run moved.

        Runs named by completion events go into the next group (a sweep keeps a request), so an
        event never waits for a sweep to finish; those named after the last are the next turn's.
        """
        if ids:
            self.sweeps += 1
        watches = self._watches
        changed = False
        chunks = deque(ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE))
        while True:
            group: list[list[str]] = []
            room = (_CONCURRENT_BATCHES - (1 if chunks else 0)) * BATCH_SIZE  # a sweep goes on
            hot = watches.take_hot()
            watches.make_hot(hot[room:])  # beyond the requests allowed in flight: the next group
            group.extend(hot[i : i + BATCH_SIZE] for i in range(0, min(len(hot), room), BATCH_SIZE))
            while chunks and len(group) < _CONCURRENT_BATCHES:
                group.append(chunks.popleft())
            if not group:
                return changed
            self.requests += len(group)
            self.asked += sum(map(len, group))
            # Each answer is parsed and applied as it arrives, then let go: its parsed runs die
            # young, before the cyclic collector promotes them to be walked with every waiting run.
            ask, known = self._fetch, watches.known  # naming the states held: see _batch_get
            tasks = {asyncio.ensure_future(ask(c, known(c))): n for n, c in enumerate(group)}
            errors: dict[int, BaseException] = {}
            missing: list[str] = []
            pending = set(tasks)
            try:
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=FIRST_COMPLETED)
                    for task in done:
                        n = tasks[task]
                        if (exc := task.exception()) is not None:
                            errors[n] = exc
                            watches.make_hot(group[n])  # fetched again first after the backoff
                        else:
                            changed |= watches.take(group[n], task.result(), missing)
            finally:
                for task in pending:
                    task.cancel()
            if errors:
                raise errors[min(errors)]  # the missing ones are asked about again next time
            if missing:
                confirmed = watches.confirmed
                try:
                    changed |= await watches.settle_missing(missing, self._confirm)
                finally:
                    self.requests += watches.confirmed - confirmed
            if not chunks:
                return changed
