"""The private loop's thread: ``LoopThread`` runs one event loop and the resources living on it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import Executor
from typing import Any, Final, TypeVar, cast, final

from lume_async._event_loop import new_event_loop
from lume_async._exceptions import SyncFacadeError

from ._call import Call, discard
from ._doorbell import Doorbell, give_back, make_doorbell
from ._executor import DaemonExecutor

__all__ = [
    "CANCEL_GRACE",
    "POLL_INTERVAL",
    "SHUTDOWN_TIMEOUT",
    "THREAD_NAME",
    "LoopThread",
    "ResourceHandle",
    "callback_executor",
]

T = TypeVar("T")

THREAD_NAME: Final = "lume-sync-loop"
#: Seconds a Ctrl-C'd call waits for its cancelled coroutine's cleanup before re-raising.
CANCEL_GRACE: Final = 1.0
#: How often a blocked caller checks that the loop thread is still alive. A finished call wakes
#: the caller at once; this only bounds how late a dead loop thread is noticed (and, where waits
#: cannot be interrupted by signals, how late Ctrl-C is noticed).
POLL_INTERVAL: Final = 0.1
#: Default bound on shutdown(), and so on how long the interpreter's exit can be held up.
SHUTDOWN_TIMEOUT: Final = 5.0


@final
class ResourceHandle:
    """A resource registered with ``register_resource()``; it belongs to one loop.

    Its owner runs its calls through ``run()`` here rather than the module-level ``run()``, so
    that use after ``close()``, after ``shutdown()`` or in a forked child fails with a clear
    ``SyncFacadeError`` instead of touching a resource bound to another loop.
    """

    __slots__ = ("_close_lock", "_finalizer", "_runner", "_token")

    def __init__(self, runner: LoopThread, token: int, finalizer: weakref.finalize[Any, Any]):
        self._runner = runner
        self._token = token
        self._finalizer = finalizer
        # Held while closing: a second close() returns once the first one has closed it.
        self._close_lock = threading.RLock()

    @property
    def closed(self) -> bool:
        """Whether the resource has been closed or handed over to be closed."""
        return not self._runner.holds(self._token)

    def run(
        self, coro: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = None
    ) -> T:
        """Like the module-level ``run()``, on this resource's loop; it must still be open."""
        runner = self._runner
        if not runner.holds(self._token):
            discard(coro)
            raise SyncFacadeError(runner.closed_reason() or "this lume_sync client is closed")
        return runner.call(coro, timeout)

    def refuse_here(self) -> None:
        """Raise ``SyncFacadeError`` if ``close()`` would be refused on this thread."""
        if self._runner.on_own_thread:
            raise SyncFacadeError("a lume_sync client was closed on lume_sync's own loop thread")

    def close(self, *, timeout: float | None = None) -> None:
        """Await the resource's ``aclose`` on its loop; once it has succeeded, later calls do
        nothing. A close that was interrupted (Ctrl-C) or failed leaves the resource registered,
        for a later ``close()``, the owner's collection or the loop's teardown to close."""
        runner = self._runner
        self.refuse_here()  # refuse before giving up the registration
        if runner.inherited:
            # The parent's resource, never closed here; and its lock may have been held by
            # another thread of the parent at fork time.
            return
        with self._close_lock:
            aclose = None
            try:
                aclose = runner.release(self._token)
                if aclose is not None:
                    # A function that makes the coroutine: see LoopThread.call.
                    runner.call(functools.partial(_await_factory, aclose), timeout)
            except BaseException:
                if aclose is not None:
                    runner.restore(self._token, aclose)
                raise
            self._finalizer.detach()


@final
class LoopThread:
    """One event loop, its daemon thread, and the resources that live on it."""

    def __init__(self) -> None:
        self.pid = _pid
        self.loop = new_event_loop()
        # An executor of our own, so teardown can stop it on the loop thread: the loop's
        # shutdown_default_executor() starts a new thread, which interpreter exit may refuse.
        self._executor = DaemonExecutor(f"{THREAD_NAME}-executor")
        self.loop.set_default_executor(self._executor)
        # Users' callbacks that no blocked call waits for (see _callbacks) run on a worker of
        # their own, one at a time and in order, as they would on the loop: blocked there, they
        # must not hold up the loop's own work (asyncio's loop resolves host names on its default
        # executor), nor its teardown, which does not wait for them.
        self.callbacks = DaemonExecutor(f"{THREAD_NAME}-callbacks", max_workers=1)
        # `closing` turns True, on the loop thread, when teardown begins; from then on the loop
        # accepts no new work. The lock is re-entrant because a finalizer may run on any thread at
        # any allocation, including inside one of this object's own critical sections.
        self.closing = False
        self._lock = threading.RLock()
        self._resources: dict[int, Callable[[], Awaitable[object]]] = {}
        self._tokens = itertools.count()
        self._closers: set[asyncio.Task[None]] = set()
        self._teardown_budget = SHUTDOWN_TIMEOUT
        # Calls come in through a queue and a doorbell the loop answers (see _doorbell for why
        # not call_soon_threadsafe); a loop that cannot watch descriptors takes them the usual way.
        # ``_stopped``: the loop will take no more calls; whoever finds one queued then refuses it.
        self._incoming: deque[Call[Any]] = deque()
        self._stopped = False
        self._bell: Doorbell | None = make_doorbell()
        try:
            self.loop.add_reader(self._bell.fileno(), self._take_calls)
        except NotImplementedError:  # Windows' proactor loop
            self._bell.close()
            self._bell = None
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._executor.shutdown(wait=False)
            self.callbacks.shutdown(wait=False)
            self.loop.close()
            raise
        self.ident = self._thread.ident
        _unclosed.add(self)

    # -- calls ----------------------------------------------------------------------------

    def call(
        self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], timeout: float | None
    ) -> T:
        """Run ``awaitable`` on this loop and wait for its outcome (see ``run()``).

        Given as a function that makes it, the awaitable is made here, where an interrupt
        (Ctrl-C) finds it: one made by the caller is left never awaited if the interrupt lands
        as this is entered, before anything here runs.
        """
        call: Call[T] | None = None
        made: Awaitable[T] | None = None
        try:
            if self.on_own_thread:
                raise SyncFacadeError(
                    "a blocking lume_sync call was made on lume_sync's own event loop thread (from"
                    " a coroutine or callback running there), which would deadlock; use lume_async"
                )
            if self.pid != _pid:  # the parent's loop, inherited over fork: never touch it
                raise SyncFacadeError(self.closed_reason())
            if timeout is not None and not timeout >= 0:
                raise ValueError(
                    f"timeout must be a non-negative number of seconds, not {timeout!r}"
                )
            made = awaitable() if callable(awaitable) else awaitable
            call = Call(made, timeout)
            self._submit(call)
            while True:
                if self.pid != _pid:  # forked by a callback of this call: the loop is the parent's
                    raise SyncFacadeError(self.closed_reason())
                if not call.wait(POLL_INTERVAL):
                    if not self._thread.is_alive() and not call.finished:
                        raise SyncFacadeError("lume_sync's event loop thread has died")
                    continue
                if call.finished and call.inbox is None:  # the plain case, kept short
                    break
                if call.serve():  # woken: run the callbacks the call handed back; over?
                    break
        except BaseException:
            # A refusal, or KeyboardInterrupt (or whatever a signal handler raised) while waiting:
            # the awaitable must neither run on unobserved nor be left never awaited.
            if call is None:
                discard(made if made is not None else awaitable)
            else:
                self._abandon(call)
            raise
        finally:
            if call is not None and self.pid == _pid:  # a forked child leaves the parent's alone
                bell, call.bell = call.bell, None
                if bell is not None:
                    give_back(bell)
        if call.error is None:
            result, call.result = call.result, None  # a task it started may keep the call alive
            return cast(T, result)
        error, call.error = call.error, None
        if isinstance(error, asyncio.CancelledError) and self.closing:
            raise SyncFacadeError("lume_sync's event loop shut down during this call") from error
        try:
            raise error
        finally:
            del error  # no frame <-> traceback cycle

    def _submit(self, call: Call[Any]) -> None:
        """Hand ``call`` to the loop, which starts it (or refuses it, if the loop is over)."""
        if self._bell is None:
            try:
                self.loop.call_soon_threadsafe(call.start, self)
            except RuntimeError:  # the loop is closed
                raise SyncFacadeError(self.closed_reason() or "the loop is closed") from None
            return
        self._incoming.append(call)
        if self._stopped:  # the loop has taken its last calls: refuse what is left (this one)
            self._refuse_incoming()
        else:
            self._bell.ring()

    def _take_calls(self) -> None:
        """On the loop, when its doorbell rings: start the calls queued."""
        assert self._bell is not None
        self._bell.clear()  # before taking: a call queued from here on rings again
        incoming = self._incoming
        while incoming:
            incoming.popleft().start(self)

    def _refuse_incoming(self) -> None:
        incoming = self._incoming
        while True:
            try:
                call = incoming.popleft()
            except IndexError:
                return
            call.discard(SyncFacadeError(self.closed_reason() or "the loop is closed"))

    def _abandon(self, call: Call[Any]) -> None:
        """Cancel an abandoned call's task and give its cleanup ``CANCEL_GRACE`` seconds."""
        if call.finished or self.pid != _pid:
            return
        if self._thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(call.cancel)
            except RuntimeError:  # closed: the loop will not touch the call again
                pass
            else:
                deadline = time.monotonic() + CANCEL_GRACE
                while not call.finished and (left := deadline - time.monotonic()) > 0:
                    call.wait(left)  # woken by the end, or by a dropped callback
                return
        if not call.started:  # nothing runs on the loop any more: close it here
            call.discard()

    # -- resources ------------------------------------------------------------------------

    def register(self, owner: object, aclose: Callable[[], Awaitable[object]]) -> ResourceHandle:
        with self._lock:
            if self.closing:
                raise SyncFacadeError(self.closed_reason())
            token = next(self._tokens)
            self._resources[token] = aclose
        finalizer = weakref.finalize(owner, self._owner_collected, token)
        finalizer.atexit = False  # our own teardown closes what is left, on the loop
        return ResourceHandle(self, token, finalizer)

    def holds(self, token: int) -> bool:
        return token in self._resources and self.pid == _pid

    def release(self, token: int) -> Callable[[], Awaitable[object]] | None:
        """Take a resource back for closing; None if it is closed or being closed already."""
        if self.pid != _pid:
            return None
        with self._lock:
            return self._resources.pop(token, None)

    def restore(self, token: int, aclose: Callable[[], Awaitable[object]]) -> None:
        """Register again a resource whose close was interrupted or failed (``aclose`` must be
        safe to await again); unless the loop is going away, which closes what it holds."""
        with self._lock:
            if not self.closing and self.pid == _pid:
                self._resources.setdefault(token, aclose)

    def _owner_collected(self, token: int) -> None:
        # Runs wherever the owner was collected, possibly on the loop thread itself.
        if self.pid != _pid:
            return  # the parent's resource, inherited over fork: never touch it here
        with self._lock:
            aclose = self._resources.pop(token, None)
            if aclose is not None:  # None: closed explicitly, or teardown has taken it
                # While not closing, the loop is not closed, so this cannot fail.
                self.loop.call_soon_threadsafe(self.spawn_closer, aclose)

    def spawn_closer(self, aclose: Callable[[], Awaitable[object]]) -> None:
        task = self.loop.create_task(self._close_resource(aclose))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_resource(self, aclose: Callable[[], Awaitable[object]]) -> None:
        try:
            await aclose()
        except Exception as exc:  # nobody is waiting for this close: report, don't lose it
            self.loop.call_exception_handler(
                {"message": "lume_sync: closing an abandoned resource failed", "exception": exc}
            )

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def on_own_thread(self) -> bool:
        """Whether this is called on the loop's thread. A forked child's thread may have the
        ident that the parent's loop thread had (thread stacks are reused): it is not that one."""
        return threading.get_ident() == self.ident and self.pid == _pid

    @property
    def inherited(self) -> bool:
        """Whether this is the loop of the process this one was forked from."""
        return self.pid != _pid

    def closed_reason(self) -> str:
        if self.pid != _pid:
            return "this lume_sync object was created before os.fork(); create a new one"
        if self.closing:
            return "lume_sync's event loop was shut down; create a new client"
        return ""

    def stop(self, timeout: float) -> None:
        self._teardown_budget = timeout
        with contextlib.suppress(RuntimeError):  # RuntimeError: closed already
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise SyncFacadeError(f"lume_sync's event loop did not shut down within {timeout} s")

    def _main(self) -> None:
        loop = self.loop
        try:
            loop.run_forever()
        finally:
            # Reached on stop() and on any unexpected exit alike: the loop is stopped but not
            # closed, so it can still run the teardown here, on its own thread.
            with self._lock:
                self.closing = True
                resources, self._resources = self._resources, {}
            try:
                loop.run_until_complete(self._teardown(resources))
            finally:
                self._stopped = True  # then refuse the calls queued that the loop never took
                if self._bell is not None:
                    loop.remove_reader(self._bell.fileno())
                    self._refuse_incoming()
                try:
                    self.callbacks.shutdown(wait=False)  # what is queued still runs, then they end
                    self._executor.shutdown(wait=True, cancel_futures=True)
                finally:
                    loop.close()
                    _unclosed.discard(self)

    async def _teardown(self, resources: dict[int, Callable[[], Awaitable[object]]]) -> None:
        """Cancel tasks, close async generators, then resources: users before what they use."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self._teardown_budget - 0.5, 0.1)
        # Let tasks created just before the stop take their first step: a task cancelled before
        # it ever ran skips its body, and a call's hand-back to its caller lives in that body.
        await asyncio.sleep(0)
        await _cancel_tasks(
            self._closers, loop.time() + min(CANCEL_GRACE, (deadline - loop.time()) / 2)
        )
        await loop.shutdown_asyncgens()
        for aclose in resources.values():
            self.spawn_closer(aclose)
        await asyncio.sleep(0)  # closers handed over by finalizers just before teardown start now
        if self._closers:
            await asyncio.wait(set(self._closers), timeout=max(deadline - loop.time(), 0))
        # What is still pending past the budget is cancelled, and given a step with the callbacks
        # in which closed transports release their sockets: a coroutine the loop never started
        # would warn that it was never awaited when the loop closes.
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0)


async def _cancel_tasks(spared: Collection[asyncio.Task[Any]], until: float) -> None:
    """Cancel the loop's tasks but this one and ``spared``, and wait for them until ``until``
    (loop time). Cancelled in turns: a task's cleanup may start another (a wait leaving restarts
    its poller), and one may absorb its cancellation; left pending as the loop closes, a task
    that never ran warns that its coroutine was never awaited."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    while True:
        tasks = {t for t in asyncio.all_tasks() if t is not me and t not in spared}
        if not tasks or loop.time() >= until:
            return
        for task in tasks:
            if not task.cancelling():  # not yet cancelled, or its cancellation was absorbed
                task.cancel()
        await asyncio.wait(tasks, timeout=until - loop.time(), return_when=asyncio.FIRST_COMPLETED)


async def _await_factory(factory: Callable[[], Awaitable[object]]) -> None:
    await factory()


# ---------------------------------------------------------------------------------------------
# Process identity: loops belong to the process that started them

_pid = os.getpid()
#: Loops whose teardown has not finished; in a forked child, the parent's.
_unclosed: set[LoopThread] = set()
#: A forked child keeps the parent's loops here, so they are never finalized in the child.
_inherited: list[LoopThread] = []


def callback_executor(loop: asyncio.AbstractEventLoop) -> Executor | None:
    """The executor for callbacks no call waits for, of lume_sync's loop ``loop``; None for a
    loop that is not one of lume_sync's (its default executor is used then)."""
    for runner in list(_unclosed):
        if runner.loop is loop:
            return runner.callbacks
    return None


def _after_fork_in_child() -> None:
    # The parent's loop thread does not exist here, and the parent's loop objects share kernel
    # state (epoll instance, sockets) with it: keep them, never touch them.
    global _pid
    _pid = os.getpid()
    _inherited.extend(_unclosed)
    _unclosed.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
