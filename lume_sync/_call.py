"""A blocking call handed to the private loop, and the callbacks it hands back to its caller."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from lume_async._exceptions import SyncFacadeError

from ._doorbell import Doorbell, borrow

if TYPE_CHECKING:
    from ._loop_thread import LoopThread

__all__ = ["Call", "Chain", "discard", "hand_to_caller", "join"]

T = TypeVar("T")

#: The call the code running on the loop serves, or the chain of calls it belongs to (set in
#: each call's own context, which the tasks it starts copy).
_CURRENT: contextvars.ContextVar[Call[Any] | Chain] = contextvars.ContextVar("lume_sync_call")


def hand_to_caller(callback: Callable[[], object]) -> bool:
    """Have the thread blocked in the lume_sync call that the running code serves run ``callback``.

    The caller runs it while it waits, after the callbacks handed over before it, and before the
    call returns; this returns at once. False, and nothing is done, when no call waits: the code
    runs outside any call, or in a task that has outlived the call (or chain) that started it.
    """
    serves = _CURRENT.get(None)
    if isinstance(serves, Chain):
        return serves.post(callback)
    if serves is None or serves.finished:
        return False
    serves.post(callback)
    return True


def join(chain: Chain) -> None:
    """In the code a call runs, on the loop: make that call ``chain``'s step, for this code and
    the tasks it starts from here on."""
    serves = _CURRENT.get(None)
    if isinstance(serves, Call):
        chain.attach(serves)
    _CURRENT.set(chain)


@final
class Chain:
    """The calls one caller makes one after another to drive an iteration, seen as one.

    A step may leave tasks running that a later step awaits (the pages a paginator reads ahead):
    their callbacks go to the step that waits now or, while the caller is between steps, to the
    next one, which runs them first. Each step ``join()``s it. Used on the loop only, but
    ``close()``.
    """

    __slots__ = ("call", "held", "open")

    def __init__(self) -> None:
        self.call: Call[Any] | None = None
        self.held: deque[Callable[[], object]] = deque()
        self.open = True

    def post(self, callback: Callable[[], object]) -> bool:
        if not self.open:
            return False
        call = self.call
        if call is not None and not call.finished:
            call.post(callback)
        else:
            self.held.append(callback)
        return True

    def attach(self, call: Call[Any]) -> None:
        """A step has started: it runs what the caller missed between steps, then what comes."""
        self.call = call
        held = self.held
        while held:
            call.post(held.popleft())

    def close(self) -> None:
        """The iteration is over: what its tasks hand over from now on goes where no call waits;
        what is still held is dropped, as a call abandoned drops its own."""
        self.open = False
        self.held.clear()


@final
class Call(Generic[T]):
    """One hand-off: created by the caller, started and finished on the loop."""

    __slots__ = (
        "abandoned",
        "awaitable",
        "bell",
        "context",
        "error",
        "finished",
        "inbox",
        "result",
        "rung",
        "started",
        "task",
        "timeout",
    )

    def __init__(self, awaitable: Awaitable[T], timeout: float | None) -> None:
        self.awaitable: Awaitable[T] | None = awaitable
        self.timeout = timeout
        self.context = contextvars.copy_context()
        # Rung by the loop when the call is over or has a callback for the caller (see _doorbell
        # for why not a lock); ``rung`` is set from the ring until the caller wakes, so that a
        # burst of callbacks rings once. Given back (None) once the caller stops waiting: the call
        # may outlive it, kept by a context its task left behind (a pooled connection's timers).
        self.bell: Doorbell | None = borrow()
        self.rung = False
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
            # The caller is rung once the task is done, not from inside it: when the blocking
            # call returns, nothing of it is left pending on the loop.
            self.task.add_done_callback(self._task_done)

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

    def wait(self, timeout: float) -> bool:
        """On the caller: block until the loop has news or ``timeout`` passes; whether it woke.

        A wake-up may bring no news (a ring left over from an abandoned call): look, then wait
        again. A ring that never came (taken by a child forked by a callback of this call, which
        shares the bell's descriptor) is made up for at the timeout: the loop sets ``rung``
        before it rings.
        """
        assert self.bell is not None  # given back only once the caller has stopped waiting
        if not self.bell.wait(timeout) and not self.rung:
            return False
        self.rung = False  # before looking: news posted from here on rings again
        return True

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
        except GeneratorExit:  # the task is being destroyed unfinished: no done callback comes
            self.error = SyncFacadeError("lume_sync's event loop closed during this call")
            self._finish()
            raise
        except BaseException as exc:  # all of it belongs to the caller, KeyboardInterrupt too
            self.error = exc
        finally:
            self.awaitable = None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self.started or self.finished:
            self._finish()
        else:  # cancelled before its first step: the awaitable never ran
            self.discard(SyncFacadeError("lume_sync's event loop shut down during this call"))

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self._wake()

    def _wake(self) -> None:
        # Rung and not yet answered: the caller has yet to look, and will see this news too.
        if not self.rung:
            self.rung = True
            bell = self.bell  # None: the caller has given up waiting, nobody is left to wake
            if bell is not None:
                bell.ring()


def discard(awaitable: Awaitable[Any] | Callable[[], Awaitable[Any]]) -> None:
    """Close an awaitable that will never run, so that it does not warn about never being
    awaited (a function that would have made one has nothing to close)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
