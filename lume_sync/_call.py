"""A blocking call handed to the private loop, and the callbacks it hands back to its caller."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from lume_async._exceptions import SyncFacadeError

if TYPE_CHECKING:
    from ._loop_thread import LoopThread

__all__ = ["Call", "discard", "hand_to_caller"]

T = TypeVar("T")

#: The call the code running on the loop serves (set in each call's own context).
_CURRENT: contextvars.ContextVar[Call[Any]] = contextvars.ContextVar("lume_sync_call")


def hand_to_caller(callback: Callable[[], object]) -> bool:
    """Have the thread blocked in the lume_sync call that the running code serves run ``callback``.

    The caller runs it while it waits, after the callbacks handed over before it, and before the
    call returns; this returns at once. False, and nothing is done, when no call waits: the code
    runs outside any call, or in a task that has outlived the call that started it.
    """
    call = _CURRENT.get(None)
    if call is None or call.finished:
        return False
    call.post(callback)
    return True


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
        "inbox",
        "result",
        "started",
        "task",
        "timeout",
    )

    def __init__(self, awaitable: Awaitable[T], timeout: float | None) -> None:
        self.awaitable: Awaitable[T] | None = awaitable
        self.timeout = timeout
        self.context = contextvars.copy_context()
        # Released by the loop when the call is over or has a callback for the caller. A bare lock
        # is the cheapest cross-thread signal there is, and waiting on it can be interrupted by
        # Ctrl-C.
        self.done = threading.Lock()
        self.done.acquire()
        self.started = False  # the awaitable has begun to run (set on the loop)
        self.finished = False
        self.abandoned = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.inbox: deque[Callable[[], object]] | None = None  # callbacks for the caller to run

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

    def post(self, callback: Callable[[], object]) -> None:
        """On the loop: hand ``callback`` to the caller (dropped if the caller has given up)."""
        if self.inbox is None:
            self.inbox = deque()
        self.inbox.append(callback)
        self._wake()

    def serve(self) -> bool:
        """On the caller, once woken: run the callbacks handed over; whether the call is over.

        A callback's exception propagates: the caller abandons the call and raises it.
        """
        finished = self.finished  # read first: whatever was posted before the end is in the inbox
        inbox = self.inbox
        while inbox:
            inbox.popleft()()
        return finished

    async def _drive(self) -> None:
        if self.abandoned:
            self.discard()
            return
        _CURRENT.set(self)
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
            self._wake()

    def _wake(self) -> None:
        # Only the loop releases ``done``, and the caller takes it each time it wakes: if it is
        # free, the caller has yet to take it, and will see this news too when it does.
        if self.done.locked():
            self.done.release()


def discard(awaitable: Awaitable[Any]) -> None:
    """Close an awaitable that will never run, so it warns about never being awaited."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
