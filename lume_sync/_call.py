"""One blocking call's hand-off to the private loop: ``Call``, created by the caller, run there."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from lume_async._exceptions import SyncFacadeError

if TYPE_CHECKING:
    from ._loop_thread import LoopThread

__all__ = ["Call", "discard"]

T = TypeVar("T")


@final
class Call(Generic[T]):
    """One hand-off: created by the caller, started and finished on the loop."""

    __slots__ = (
        "abandoned",
        "awaitable",
        "context",
        "done",
        "error",
        "finished",
        "result",
        "started",
        "task",
        "timeout",
    )

    def __init__(self, awaitable: Awaitable[T], timeout: float | None) -> None:
        self.awaitable: Awaitable[T] | None = awaitable
        self.timeout = timeout
        self.context = contextvars.copy_context()
        # Released by the loop when the call is over. A bare lock is the cheapest cross-thread
        # signal there is, and waiting on it can be interrupted by Ctrl-C.
        self.done = threading.Lock()
        self.done.acquire()
        self.started = False  # the awaitable has begun to run (set on the loop)
        self.finished = False
        self.abandoned = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, runner: LoopThread) -> None:
        if self.abandoned or runner.closing:
            self.discard(SyncFacadeError(runner.closed_reason()))
        else:
            self.task = runner.loop.create_task(self._drive(), context=self.context)

    def cancel(self) -> None:
        self.abandoned = True
        if self.started:
            assert self.task is not None
            self.task.cancel()
        elif self.task is None and not self.finished:  # start() was never even queued
            self.discard()
        # Otherwise the task has not taken its first step: _drive() sees `abandoned` then.
        # (Cancelling it now would skip _drive's body, and with it the hand-back.)

    def discard(self, error: BaseException | None = None) -> None:
        """Finish a call whose awaitable never started."""
        if self.awaitable is not None:
            discard(self.awaitable)
            self.awaitable = None
        self.error = error
        self._finish()

    async def _drive(self) -> None:
        if self.abandoned:
            self.discard()
            return
        self.started = True
        assert self.awaitable is not None
        try:
            if self.timeout is None:
                self.result = await self.awaitable
            else:
                async with asyncio.timeout(self.timeout):
                    self.result = await self.awaitable
        except GeneratorExit:  # the task is being destroyed unfinished
            self.error = SyncFacadeError("lume_sync's event loop closed during this call")
            raise
        except BaseException as exc:  # all of it belongs to the caller, KeyboardInterrupt too
            self.error = exc
        finally:
            self.awaitable = None
            self._finish()

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.done.release()


def discard(awaitable: Awaitable[Any]) -> None:
    """Close an awaitable that will never run, so it warns about never being awaited."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
