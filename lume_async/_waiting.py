"""One poller per client: every run anybody waits on is asked about together.

Each sweep folds all watched run ids into ``batch-get`` requests of up to 100 ids. The sweep
interval
starts at the smallest ``poll_interval`` of the current waiters, grows by half while nothing
changes
(up to ``max_interval``), and drops back as soon as a run moves. A completion wakes exactly the
waiters of that run. With a webhook receiver, a completion event triggers an immediate fetch of its
run, and polling slows to a safety-net rate for deliveries that never arrive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

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
from .models import RunData, RunStatus

if TYPE_CHECKING:
    from ._run import AsyncRun
    from .models import WebhookEvent

__all__ = ["Waiting"]

logger = logging.getLogger("lume_async.waiting")

BatchFetch = Callable[[list[str]], Awaitable[dict[str, RunData]]]

BATCH_SIZE = 100
_CONCURRENT_BATCHES = 8
_GROWTH = 1.5
_FAILED = frozenset({RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELED})


class _Watch:
    """One caller's interest in some runs, with what to do as each one ends."""

    __slots__ = ("handles", "interval", "on_done", "on_error", "remaining")

    def __init__(
        self,
        handles: dict[str, list[AsyncRun]],
        interval: float,
        on_done: Callable[[AsyncRun], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.handles = handles
        self.interval = interval
        self.on_done = on_done
        self.on_error = on_error
        self.remaining = len(handles)


class Waiting:
    """The shared poller of one client."""

    def __init__(
        self,
        fetch: BatchFetch,
        *,
        max_interval: float = 60.0,
        safety_net_interval: float = 30.0,
    ) -> None:
        self._fetch = fetch
        self._max_interval = max_interval
        self._safety_net = safety_net_interval
        self._watches: dict[str, set[_Watch]] = {}
        self._all: set[_Watch] = set()
        self._hot: set[str] = set()
        self._push = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._interval = 1.0
        self._restart_at: float | None = None
        self.sweeps = 0
        self.requests = 0

    # -- the webhook fast path ---------------------------------------------------------------
    def enable_push(self) -> None:
        """Completion events will arrive through ``on_event``; poll only as a safety net."""
        self._push = True

    def on_event(self, event: WebhookEvent) -> None:
        """A verified completion event: fetch that run now if anybody waits on it."""
        run_id = event.data.run_id
        if run_id in self._watches:
            self._hot.add(run_id)
            if self._wake is not None:
                self._wake.set()

    # -- waiting -------------------------------------------------------------------------------
    async def wait(self, run: AsyncRun, *, timeout: float | None, poll_interval: float) -> AsyncRun:
        check_timeout(timeout)
        check_interval(poll_interval)
        if run.is_terminal:
            return run
        done = asyncio.get_running_loop().create_future()

        def finished(_: AsyncRun) -> None:
            if not done.done():
                done.set_result(None)

        def failed(exc: BaseException) -> None:
            if not done.done():
                done.set_exception(exc)

        watch = self._add([run], poll_interval, finished, failed)
        try:
            with anyio.fail_after(math.inf if timeout is None else timeout):
                await done
        except TimeoutError:
            raise RunTimeoutError(
                f"run {run.id} is still {run.status.value} after {timeout:g} s", run=run
            ) from None
        finally:
            self._remove(watch)
        return run

    async def as_completed(
        self,
        runs: list[AsyncRun],
        *,
        timeout: float | None,
        poll_interval: float,
        on_progress: Callable[[int, int, int], None] | None = None,
    ) -> AsyncIterator[AsyncRun]:
        check_timeout(timeout)
        check_interval(poll_interval)
        total = len(runs)
        deadline = None if timeout is None else time.monotonic() + timeout
        ready: asyncio.Queue[AsyncRun | BaseException] = asyncio.Queue()
        pending = [run for run in runs if not run.is_terminal]
        for run in runs:
            if run.is_terminal:
                ready.put_nowait(run)
        watch = (
            self._add(pending, poll_interval, ready.put_nowait, ready.put_nowait)
            if pending
            else None
        )
        done = failed = 0
        try:
            while done < total:
                remaining = math.inf if deadline is None else deadline - time.monotonic()
                item: AsyncRun | BaseException | None = None
                with anyio.move_on_after(remaining):
                    item = await ready.get()
                if item is None:
                    unfinished = next((r for r in runs if not r.is_terminal), None)
                    raise RunTimeoutError(
                        f"{total - done} of {total} runs are not finished after {timeout:g} s",
                        run=unfinished,
                    )
                if isinstance(item, BaseException):
                    raise item
                done += 1
                failed += item.status in _FAILED
                if on_progress is not None:
                    on_progress(done, total, failed)
                yield item
        finally:
            if watch is not None:
                self._remove(watch)

    # -- registry ------------------------------------------------------------------------------
    def _add(
        self,
        runs: Iterable[AsyncRun],
        interval: float,
        on_done: Callable[[AsyncRun], None],
        on_error: Callable[[BaseException], None],
    ) -> _Watch:
        handles: dict[str, list[AsyncRun]] = {}
        for run in runs:
            handles.setdefault(run.id, []).append(run)
        watch = _Watch(handles, interval, on_done, on_error)
        self._all.add(watch)
        for run_id in handles:
            self._watches.setdefault(run_id, set()).add(watch)
        self._ensure_sweeper(interval)
        return watch

    def _remove(self, watch: _Watch) -> None:
        self._all.discard(watch)
        for run_id in watch.handles:
            watchers = self._watches.get(run_id)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[run_id]
                    self._hot.discard(run_id)

    def _ensure_sweeper(self, interval: float) -> None:
        # New runs to watch: poll at the newcomer's pace, however far the sweeper had backed off.
        self._restart_at = interval if self._restart_at is None else min(self._restart_at, interval)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._sweeper())
        else:
            assert self._wake is not None
            self._wake.set()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- sweeping ------------------------------------------------------------------------------
    async def _sweeper(self) -> None:
        assert self._wake is not None
        wake = self._wake
        next_full = time.monotonic()
        while self._all:
            with anyio.move_on_after(max(0.0, next_full - time.monotonic())):
                await wake.wait()
            wake.clear()
            if not self._all:
                return
            if self._restart_at is not None:
                self._interval, self._restart_at = self._restart_at, None
                next_full = min(next_full, time.monotonic() + self._interval)
            try:
                if self._hot:
                    hot, self._hot = list(self._hot), set()
                    await self._sweep(hot)
                if time.monotonic() < next_full:
                    continue
                changed = await self._sweep(list(self._watches))
            except (ServerError, RateLimitError, APIConnectionError) as exc:
                self._interval = min(self._interval * _GROWTH, self._max_interval)
                hint = exc.retry_after if isinstance(exc, ServerError | RateLimitError) else None
                pause = max(self._interval, hint or 0.0)
                logger.warning("status sweep failed, next in %.2f s: %s", pause, exc)
                next_full = time.monotonic() + pause
                continue
            except LumeError as exc:
                for watch in list(self._all):
                    watch.on_error(exc)
                return
            base = min((watch.interval for watch in self._all), default=self._interval)
            cap = max(base, self._max_interval)
            self._interval = base if changed else min(self._interval * _GROWTH, cap)
            pause = max(self._interval, self._safety_net) if self._push else self._interval
            next_full = time.monotonic() + pause

    async def _sweep(self, ids: list[str]) -> bool:
        """Ask about ``ids`` (100 per request, a few requests at once); True if any run moved."""
        self.sweeps += 1
        changed = False
        chunks = [ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
        for start in range(0, len(chunks), _CONCURRENT_BATCHES):
            group = chunks[start : start + _CONCURRENT_BATCHES]
            self.requests += len(group)
            answers = await asyncio.gather(*(self._fetch(chunk) for chunk in group))
            for chunk, found in zip(group, answers, strict=True):
                for run_id in chunk:
                    data = found.get(run_id)
                    if data is None:
                        self._fail_run(run_id)
                    elif self._apply(data):
                        changed = True
        return changed

    def _apply(self, data: RunData) -> bool:
        watchers = self._watches.get(data.id)
        if not watchers:
            return False
        moved = False
        for watch in list(watchers):
            for handle in watch.handles.get(data.id, ()):
                moved |= handle.status is not data.status
                handle._update(data)
        if data.status.is_terminal:
            for watch in list(watchers):
                self._finish(watch, data.id)
            return True
        return moved

    def _finish(self, watch: _Watch, run_id: str) -> None:
        handles = watch.handles.get(run_id, [])
        watchers = self._watches.get(run_id)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watches[run_id]
        watch.remaining -= 1
        if watch.remaining <= 0:
            self._all.discard(watch)
        for handle in handles:
            watch.on_done(handle)

    def _fail_run(self, run_id: str) -> None:
        error = RunNotFoundError(
            f"run {run_id} is no longer visible to this API key", status_code=404, code="not_found"
        )
        for watch in list(self._watches.pop(run_id, ())):
            watch.on_error(error)
