"""The private event loop thread that runs ``lume_sync``'s coroutines.

Every blocking call in ``lume_sync`` hands a ``lume_async`` coroutine to one event loop that lives
in a daemon thread named ``lume-sync-loop`` (one per process) and blocks until it finishes.
Loop-bound objects such as aiohttp sessions are created and used only on that loop, so they live
across calls.

Behaviour, in brief (each point has a test in ``tests/sync/test_loop.py``):

- **Start.** Lazily, on the first call, under a lock: many threads calling at once start one loop.
- **Context.** The coroutine runs in a copy of the caller's ``contextvars`` context, so values set
  by the caller are visible in it; values it sets are not copied back.
- **Errors.** Whatever the coroutine raises, ``BaseException`` included, is raised in the caller
  (the same object, with its traceback); the loop survives it.
- **Timeouts** are enforced on the loop (``asyncio.timeout``): the coroutine is cancelled there, its
  cleanup runs, and the caller gets the builtin ``TimeoutError``.
- **Ctrl-C.** A ``KeyboardInterrupt`` in a blocked caller cancels the coroutine's task, waits up to
  ``CANCEL_GRACE`` seconds for its cleanup (a second Ctrl-C cuts that short), then propagates.
  The caller waits on a lock in short slices, so signals are handled promptly on every platform.
- **Iteration.** ``iterate()`` drives an async iterator from blocking code and closes it on the
  loop as soon as the blocking iterator is closed (``break`` included).
- **Misuse and failure raise ``SyncFacadeError``, never hang:** a call from the loop thread itself
  (it would deadlock), a loop thread that died or stopped under a call, use of an object bound to a
  loop that has been shut down or that belongs to the parent of a forked process, any call once the
  exit handler has run.
- **Shutdown.** ``shutdown()`` (also run by ``atexit``) cancels what still runs, closes async
  generators, closes the registered resources, stops the default executor and closes the loop, all
  on the loop's own thread, bounded in time. A later call starts a fresh loop: module-level
  ``run()`` keeps working, while a ``ResourceHandle`` stays bound to its own (now closed) loop.
- **Fork.** The child drops every reference to the parent's loop and starts its own on first use.
  Objects inherited from the parent are never closed or finalized in the child: closing them there
  would unregister the parent's sockets from the epoll instance both processes share.
- **Dropped clients.** ``register_resource()`` ties a loop-bound resource to the lifetime of its
  owner: if the owner is garbage-collected without ``close()``, the resource is closed on the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import enum
import itertools
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Generic, TypeVar, cast, final

from lume_async._exceptions import SyncFacadeError

__all__ = [
    "CANCEL_GRACE",
    "THREAD_NAME",
    "ResourceHandle",
    "get_loop",
    "iterate",
    "register_resource",
    "run",
    "shutdown",
]

T = TypeVar("T")

THREAD_NAME: Final = "lume-sync-loop"
#: Seconds a Ctrl-C'd call waits for its cancelled coroutine's cleanup before re-raising.
CANCEL_GRACE: Final = 1.0
#: How often a blocked caller checks that the loop thread is still alive. A finished call wakes
#: the caller at once; this only bounds how late a dead loop thread is noticed (and, where lock
#: waits cannot be interrupted by signals, how late Ctrl-C is noticed).
_POLL_INTERVAL: Final = 0.1
#: Default bound on shutdown(), and so on how long the interpreter's exit can be held up.
_SHUTDOWN_TIMEOUT: Final = 5.0


def run(coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
    """Run ``coro`` on the private loop and block until it finishes; return its result.

    ``timeout`` (seconds) is enforced on the loop and raises the builtin ``TimeoutError``.
    Raises ``SyncFacadeError`` when called from the loop thread itself.
    """
    return _current().call(coro, timeout)


def iterate(aiterator: AsyncIterator[T]) -> Generator[T, None, None]:
    """Iterate over ``aiterator`` from blocking code, fetching each item on the private loop.

    Closing the returned generator (``break``, an exception in the loop body, ``close()``, or
    garbage collection) closes the async iterator on the loop (``aclose()``) and waits for it, so
    for example a paginator's connection is released before the statement after the ``for`` runs.
    An exception raised in the loop body is not thrown into the async iterator; it is closed.
    """
    runner = _current()
    try:
        while True:
            item = runner.call(_next_item(aiterator), None)
            if item is _Exhausted.TOKEN:
                return
            yield item
    finally:
        _close_aiterator(runner, aiterator)


def get_loop() -> asyncio.AbstractEventLoop:
    """The private event loop, started if it is not running yet.

    It runs in another thread: hand it work with ``call_soon_threadsafe`` or ``run()`` only.
    """
    return _current().loop


def shutdown(timeout: float = _SHUTDOWN_TIMEOUT) -> None:
    """Stop and close the private loop, waiting up to ``timeout`` seconds for its thread.

    Running calls are cancelled (their callers get ``SyncFacadeError``) and registered resources
    are closed first. A later call starts a fresh loop; objects bound to this one raise
    ``SyncFacadeError``. Raises ``SyncFacadeError`` if the thread has not finished in time.
    """
    global _runner
    with _start_lock:
        runner = _runner
        if runner is None:
            return
        if threading.get_ident() == runner.ident:
            raise SyncFacadeError("lume_sync's shutdown() was called from its own loop thread")
        _runner = None
    runner.stop(timeout)


def register_resource(owner: object, aclose: Callable[[], Awaitable[object]]) -> ResourceHandle:
    """Tie a resource living on the private loop to ``owner``'s lifetime.

    ``aclose`` (for example an aiohttp session's ``close``) must not refer to ``owner``. It is
    awaited on the loop exactly once: by ``ResourceHandle.close()``, after ``owner`` has been
    garbage-collected, or when the loop shuts down (at the latest at interpreter exit).
    """
    return _current().register(owner, aclose)


@final
class ResourceHandle:
    """A resource registered with ``register_resource()``; it belongs to one loop.

    Its owner runs its calls through ``run()`` here rather than the module-level ``run()``, so
    that use after ``close()``, after ``shutdown()`` or in a forked child fails with a clear
    ``SyncFacadeError`` instead of touching a resource bound to another loop.
    """

    __slots__ = ("_finalizer", "_runner", "_token")

    def __init__(self, runner: _LoopThread, token: int, finalizer: weakref.finalize[Any, Any]):
        self._runner = runner
        self._token = token
        self._finalizer = finalizer

    @property
    def closed(self) -> bool:
        """Whether the resource has been closed or handed over to be closed."""
        return not self._runner.holds(self._token)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Like the module-level ``run()``, on this resource's loop; it must still be open."""
        runner = self._runner
        if not runner.holds(self._token):
            coro.close()
            raise SyncFacadeError(runner.closed_reason() or "this lume_sync client is closed")
        return runner.call(coro, timeout)

    def close(self, *, timeout: float | None = None) -> None:
        """Await the resource's ``aclose`` on its loop, once; later calls do nothing."""
        runner = self._runner
        if threading.get_ident() == runner.ident:  # refuse before giving up the registration
            raise SyncFacadeError("a lume_sync client was closed on lume_sync's own loop thread")
        self._finalizer.detach()
        aclose = runner.release(self._token)
        if aclose is not None:
            runner.call(_await_factory(aclose), timeout)


# ---------------------------------------------------------------------------------------------
# The loop thread


@final
class _LoopThread:
    """One event loop, its daemon thread, and the resources that live on it."""

    def __init__(self) -> None:
        self.pid = _pid
        self.loop = asyncio.new_event_loop()
        # An executor of our own, so teardown can stop it on the loop thread: the loop's
        # shutdown_default_executor() starts a new thread, which interpreter exit may refuse.
        self._executor = ThreadPoolExecutor(thread_name_prefix=f"{THREAD_NAME}-executor")
        self.loop.set_default_executor(self._executor)
        # `closing` turns True, on the loop thread, when teardown begins; from then on the loop
        # accepts no new work. The lock is re-entrant because a finalizer may run on any thread at
        # any allocation, including inside one of this object's own critical sections.
        self.closing = False
        self._lock = threading.RLock()
        self._resources: dict[int, Callable[[], Awaitable[object]]] = {}
        self._tokens = itertools.count()
        self._closers: set[asyncio.Task[None]] = set()
        self._teardown_budget = _SHUTDOWN_TIMEOUT
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._executor.shutdown(wait=False)
            self.loop.close()
            raise
        self.ident = self._thread.ident
        _unclosed.add(self)

    # -- calls ----------------------------------------------------------------------------

    def call(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        """Run ``awaitable`` on this loop and wait for its outcome (see ``run()``)."""
        call: _Call[T] | None = None
        try:
            if threading.get_ident() == self.ident:
                raise SyncFacadeError(
                    "a blocking lume_sync call was made on lume_sync's own event loop thread (from"
                    " a coroutine or callback running there), which would deadlock; use lume_async"
                )
            if timeout is not None and not timeout >= 0:
                raise ValueError(
                    f"timeout must be a non-negative number of seconds, not {timeout!r}"
                )
            call = _Call(awaitable, timeout)
            try:
                self.loop.call_soon_threadsafe(call.start, self, context=call.context)
            except RuntimeError:  # the loop is closed
                raise SyncFacadeError(self.closed_reason() or "the loop is closed") from None
            done = call.done
            while not done.acquire(timeout=_POLL_INTERVAL):
                if not self._thread.is_alive() and not done.acquire(blocking=False):
                    raise SyncFacadeError("lume_sync's event loop thread has died")
        except BaseException:
            # A refusal, or KeyboardInterrupt (or whatever a signal handler raised) while waiting:
            # the awaitable must neither run on unobserved nor be left never awaited.
            if call is None:
                _discard(awaitable)
            else:
                self._abandon(call)
            raise
        if call.error is None:
            return cast(T, call.result)
        error, call.error = call.error, None
        if isinstance(error, asyncio.CancelledError) and self.closing:
            raise SyncFacadeError("lume_sync's event loop shut down during this call") from error
        try:
            raise error
        finally:
            del error  # no frame <-> traceback cycle

    def _abandon(self, call: _Call[Any]) -> None:
        """Cancel an abandoned call's task and give its cleanup ``CANCEL_GRACE`` seconds."""
        if call.finished:
            return
        if self._thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(call.cancel)
            except RuntimeError:  # closed: the loop will not touch the call again
                pass
            else:
                call.done.acquire(timeout=CANCEL_GRACE)
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

    def _owner_collected(self, token: int) -> None:
        # Runs wherever the owner was collected, possibly on the loop thread itself.
        if self.pid != _pid:
            return  # the parent's resource, inherited over fork: never touch it here
        with self._lock:
            aclose = self._resources.pop(token, None)
            if aclose is not None:  # None: closed explicitly, or teardown has taken it
                # While not closing, the loop is not closed, so this cannot fail.
                self.loop.call_soon_threadsafe(self._spawn_closer, aclose)

    def _spawn_closer(self, aclose: Callable[[], Awaitable[object]]) -> None:
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
                try:
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
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me and t not in self._closers]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=min(CANCEL_GRACE, (deadline - loop.time()) / 2))
        await loop.shutdown_asyncgens()
        for aclose in resources.values():
            self._spawn_closer(aclose)
        await asyncio.sleep(0)  # closers handed over by finalizers just before teardown start now
        if self._closers:
            await asyncio.wait(set(self._closers), timeout=max(deadline - loop.time(), 0))
        # Closed transports release their sockets in callbacks scheduled by close(); let them run.
        await asyncio.sleep(0)


@final
class _Call(Generic[T]):
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

    def start(self, runner: _LoopThread) -> None:
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
            _discard(self.awaitable)
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


# ---------------------------------------------------------------------------------------------
# Helpers


class _Exhausted(enum.Enum):
    TOKEN = enum.auto()


async def _next_item(aiterator: AsyncIterator[T]) -> T | _Exhausted:
    # __anext__ is called here, on the loop: an async generator binds to the asyncgen hooks of
    # the thread that first calls it, and those must be the private loop's.
    try:
        return await anext(aiterator)
    except StopAsyncIteration:
        return _Exhausted.TOKEN


async def _aclose(aiterator: AsyncIterator[Any]) -> None:
    await aiterator.aclose()  # type: ignore[attr-defined]


async def _await_factory(factory: Callable[[], Awaitable[object]]) -> None:
    await factory()


def _close_aiterator(runner: _LoopThread, aiterator: AsyncIterator[Any]) -> None:
    if getattr(aiterator, "aclose", None) is None or runner.closing or sys.is_finalizing():
        return  # nothing to close, or the loop's teardown closes async generators itself
    if threading.get_ident() == runner.ident:
        # Collected on the loop thread (its last reference dropped there): cannot block.
        runner._spawn_closer(aiterator.aclose)  # type: ignore[attr-defined]
        return
    runner.call(_aclose(aiterator), None)


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close an awaitable that will never run, so it warns about never being awaited."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


# ---------------------------------------------------------------------------------------------
# Process-wide state

_runner: _LoopThread | None = None
_pid = os.getpid()
_start_lock = threading.Lock()
_exiting = False
#: Loops whose teardown has not finished; in a forked child, the parent's.
_unclosed: set[_LoopThread] = set()
#: A forked child keeps the parent's loops here, so they are never finalized in the child.
_inherited: list[_LoopThread] = []


def _current() -> _LoopThread:
    runner = _runner
    if runner is not None and not runner.closing:
        return runner
    return _start()


def _start() -> _LoopThread:
    global _runner
    with _start_lock:
        if _exiting:
            raise SyncFacadeError("lume_sync cannot be used while the interpreter is exiting")
        runner = _runner
        if runner is None or runner.closing:  # first use, or the last loop died
            runner = _runner = _LoopThread()
        return runner


def _at_exit() -> None:
    global _exiting
    with _start_lock:
        _exiting = True
    # A stuck loop must not clutter the exit; its daemon thread ends with the process.
    with contextlib.suppress(SyncFacadeError):
        shutdown()


def _after_fork_in_child() -> None:
    # The parent's loop thread does not exist here, and the parent's loop objects share kernel
    # state (epoll instance, sockets) with it: keep them, never touch them, start afresh.
    global _runner, _start_lock, _pid
    _pid = os.getpid()
    _start_lock = threading.Lock()  # may have been held by another thread at fork time
    _runner = None
    _inherited.extend(_unclosed)
    _unclosed.clear()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
