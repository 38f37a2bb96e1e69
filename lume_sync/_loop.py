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
- **Callbacks.** Code running for a call can hand a callback back to its caller
  (``_call.hand_to_caller``), which runs it on its own thread while it waits, in order, before the
  call returns; an exception from one cancels the coroutine as Ctrl-C does, and is raised
  (tests in ``tests/sync/test_callbacks.py``).
- **Iteration.** ``iterate()`` drives an async iterator from blocking code and closes it on the
  loop as soon as the blocking iterator is closed (``break`` included). Its steps are one chain
  (``_call.Chain``): the callbacks of tasks a step leaves running for a later one (pages read
  ahead) go to the iterating thread too, when it next waits.
- **Misuse and failure raise ``SyncFacadeError``, never hang:** a call from the loop thread itself
  (it would deadlock), a loop thread that died or stopped under a call, use of an object bound to a
  loop that has been shut down or that belongs to the parent of a forked process, any call once the
  exit handler has run (the facade's calls from a daemon thread then wait for the process to end
  instead: ``park_if_exiting``).
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
import enum
import functools
import os
import signal
import sys
import threading
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, TypeVar

from lume_async._exceptions import SyncFacadeError

from ._call import Chain, discard, join
from ._loop_thread import CANCEL_GRACE, SHUTDOWN_TIMEOUT, THREAD_NAME, LoopThread, ResourceHandle

__all__ = [
    "CANCEL_GRACE",
    "THREAD_NAME",
    "ResourceHandle",
    "get_loop",
    "iterate",
    "park_if_exiting",
    "register_resource",
    "run",
    "shutdown",
]

T = TypeVar("T")


def run(
    coro: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]], *, timeout: float | None = None
) -> T:
    """Run ``coro`` on the private loop and block until it finishes; return its result.

    ``coro`` may be given as a function that makes it (``lambda: client.get(id)``): then a
    Ctrl-C at any point leaves no coroutine never awaited behind.

    ``timeout`` (seconds) is enforced on the loop and raises the builtin ``TimeoutError``.
    Raises ``SyncFacadeError`` when called from the loop thread itself.
    """
    try:
        runner = _current()
    except BaseException:  # no loop (at exit), or a Ctrl-C while the first one started
        discard(coro)
        raise
    return runner.call(coro, timeout)


def iterate(aiterator: AsyncIterator[T]) -> Generator[T, None, None]:
    """Iterate over ``aiterator`` from blocking code, fetching each item on the private loop.

    Closing the returned generator (``break``, an exception in the loop body, ``close()``, or
    garbage collection) closes the async iterator on the loop (``aclose()``) and waits for it, so
    for example a paginator's connection is released before the statement after the ``for`` runs.
    An exception raised in the loop body is not thrown into the async iterator; it is closed.
    """
    runner = _current()
    closed = False
    chain = Chain()  # callbacks of the tasks a step leaves running reach this caller too
    next_item = functools.partial(_next_item, aiterator, chain)  # see LoopThread.call
    try:
        while True:
            item = runner.call(next_item, None)
            if item is _Exhausted.TOKEN:
                # A finished async generator is closed already: spare the trip to close it.
                closed = isinstance(aiterator, types.AsyncGeneratorType)
                return
            yield item
    finally:
        try:
            if not closed:
                _close_aiterator(runner, aiterator, chain)
        finally:
            chain.close()


def get_loop() -> asyncio.AbstractEventLoop:
    """The private event loop, started if it is not running yet.

    It runs in another thread: hand it work with ``call_soon_threadsafe`` or ``run()`` only.
    """
    return _current().loop


def shutdown(timeout: float = SHUTDOWN_TIMEOUT) -> None:
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


def park_if_exiting() -> None:
    """Return, unless the exit handler has run and this is a daemon thread: then block until the
    process ends, or for ``SHUTDOWN_TIMEOUT`` at most.

    Called by the facade where it would raise ``SyncFacadeError``, holding no lock. The exit's
    shutdown ends the calls in flight, and refuses later ones; a daemon thread left to raise that
    would have its error printed as the program ends, where one blocked in any other call just
    ends with the process. (Every other thread has been joined before the exit handler runs.)
    The loop's own thread, refusing a call made on it, is never held: its teardown goes on.
    Held for ``SHUTDOWN_TIMEOUT`` at most, then let go to raise: a later exit handler may wait
    for a lock the thread holds (a logging handler's, calling from its ``emit``).
    """
    thread = threading.current_thread()
    if _exiting and thread.daemon and thread.name != THREAD_NAME:
        threading.Event().wait(SHUTDOWN_TIMEOUT)


def register_resource(owner: object, aclose: Callable[[], Awaitable[object]]) -> ResourceHandle:
    """Tie a resource living on the private loop to ``owner``'s lifetime.

    ``aclose`` (for example an aiohttp session's ``close``) must not refer to ``owner``. It is
    awaited on the loop exactly once: by ``ResourceHandle.close()``, after ``owner`` has been
    garbage-collected, or when the loop shuts down (at the latest at interpreter exit).
    """
    return _current().register(owner, aclose)


# ---------------------------------------------------------------------------------------------
# Helpers


class _Exhausted(enum.Enum):
    TOKEN = enum.auto()


async def _next_item(aiterator: AsyncIterator[T], chain: Chain) -> T | _Exhausted:
    # __anext__ is called here, on the loop: an async generator binds to the asyncgen hooks of
    # the thread that first calls it, and those must be the private loop's.
    join(chain)
    try:
        return await anext(aiterator)
    except StopAsyncIteration:
        return _Exhausted.TOKEN


async def _aclose(aiterator: AsyncIterator[Any], chain: Chain) -> None:
    join(chain)
    await aiterator.aclose()  # type: ignore[attr-defined]


def _close_aiterator(runner: LoopThread, aiterator: AsyncIterator[Any], chain: Chain) -> None:
    if (
        getattr(aiterator, "aclose", None) is None
        or runner.closing
        or runner.inherited
        or sys.is_finalizing()
    ):
        # Nothing to close; or the loop's teardown closes async generators itself; or the loop
        # is the parent's, inherited over fork, and never touched here.
        return
    if threading.get_ident() == runner.ident:
        # Collected on the loop thread (its last reference dropped there): cannot block.
        runner.spawn_closer(aiterator.aclose)  # type: ignore[attr-defined]
        return
    runner.call(functools.partial(_aclose, aiterator, chain), None)  # made by the call: see run()


# ---------------------------------------------------------------------------------------------
# Process-wide state

_runner: LoopThread | None = None
_start_lock = threading.Lock()
_exiting = False


def _current() -> LoopThread:
    runner = _runner
    if runner is not None and not runner.closing:
        return runner
    return _start()


def _start() -> LoopThread:
    global _runner
    # Signals are held back before the lock is taken, not under it: a handler landing meanwhile
    # that calls lume_sync itself would wait forever for the lock its own thread holds.
    with _signals_deferred(), _start_lock:
        if _exiting:
            raise SyncFacadeError("lume_sync cannot be used while the interpreter is exiting")
        runner = _runner
        if runner is None or runner.closing:  # first use, or the last loop died
            runner = _runner = LoopThread()
        return runner


#: Signals raised by faults of the thread itself: their handlers are never deferred.
_SYNCHRONOUS: Final = frozenset(
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT")
    if hasattr(signal, name)
)


def _python_handlers() -> dict[int, Callable[[int, types.FrameType | None], Any]]:
    """The program's Python signal handlers (which may raise), by signal; reading changes none."""
    handlers: dict[int, Callable[[int, types.FrameType | None], Any]] = {}
    for signum in signal.valid_signals():
        handler = signal.getsignal(signum)
        if signum not in _SYNCHRONOUS and callable(handler):
            handlers[signum] = handler
    return handlers


@contextlib.contextmanager
def _signals_deferred() -> Generator[None, None, None]:
    """Hold back the program's signal handlers while a loop starts: a Ctrl-C, or a handler
    raising (a ``signal.alarm`` timeout), then lands after, on a whole runner.

    Landing inside, it would leave a half-made one: a loop with no thread, or a thread running a
    loop that nothing refers to. Python runs handlers on the main thread only, whichever thread
    the signal reached, so only there is anything held back: each handler is swapped for one that
    notes the signal, and the signals noted are handed to their handlers once all are back.
    Signal masks are left alone: the threads the loop starts, and the processes they start, get
    Ctrl-C as every other thread does.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = _python_handlers()
    caught: list[int] = []
    holding = True

    def note(signum: int, frame: types.FrameType | None) -> None:
        if holding:
            caught.append(signum)
            return
        # Left in place by a restore that a signal cut short: be the handler noted for it.
        signal.signal(signum, handlers[signum])
        handlers[signum](signum, frame)

    try:
        swapped = 0
        try:
            for signum in handlers:  # a handler raising meanwhile finds them restored below
                signal.signal(signum, note)
                swapped += 1
        except ValueError:  # a sub-interpreter: its handlers never run, nothing to hold back
            if swapped:
                raise
            handlers.clear()
        yield
    finally:
        if not hasattr(signal, "pthread_sigmask"):  # Windows
            holding = False
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            for signum in dict.fromkeys(caught):
                handlers[signum](signum, None)
        else:
            # Blocked while the handlers go back, then raised again: each noted signal reaches
            # its handler as a held one does, with the frame it lands in, and one handler
            # raising leaves the others pending (Python runs them at its next check).
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, handlers)
            holding = False
            try:
                for signum, handler in handlers.items():
                    signal.signal(signum, handler)
                for signum in dict.fromkeys(caught):
                    signal.raise_signal(signum)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _at_exit() -> None:
    global _exiting
    with _start_lock:
        _exiting = True
    # A stuck loop must not clutter the exit; its daemon thread ends with the process.
    with contextlib.suppress(SyncFacadeError):
        shutdown()


def _after_fork_in_child() -> None:
    # The parent's loop is not ours (see _loop_thread): start afresh on first use.
    global _runner, _start_lock
    _start_lock = threading.Lock()  # may have been held by another thread at fork time
    _runner = None


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
