"""Users' callbacks passed through lume_sync, run on the thread blocked in the call they report on.

lume_async calls ``on_progress`` and ``RetryPolicy.on_retry`` on the loop running the coroutine,
which for lume_sync is its private loop thread. The generated twins wrap them in ``OnCaller``, which
hands each call to the thread blocked in the lume_sync call (see ``_call.hand_to_caller``): that
thread runs them while it waits, in order, before the call returns, so thread-local state, progress
bars and lume_sync calls work in them. A callback no call waits for (``on_retry`` for the status
polls a client shares between all its waits, which belong to none of them) runs on a worker
thread: never on the loop's own, where it would stall every call. The loop does not wait for
them meanwhile, except where the code reporting progress must hear how the call went before it
goes on: an export, which renames its file into place after its last page only if its
``on_progress`` returned (``awaited``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast, final

import attrs

from lume_async import RetryPolicy
from lume_async._validation import is_async_callable

from ._call import hand_to_caller
from ._loop_thread import callback_executor

__all__ = ["OnCaller", "on_caller", "retry_on_caller", "user_retry"]

F = TypeVar("F", bound=Callable[..., None])

_retry_logger = logging.getLogger("lume_async.retry")
_logger = logging.getLogger("lume_sync")


def _log_retry_hook_error() -> None:
    # What lume_async does when on_retry raises on its loop, done on the caller's thread.
    _retry_logger.exception("the on_retry hook raised; the retry goes on")


@final
class OnCaller:
    """A callback run on the caller's thread; with no blocking call waiting, on lume_sync's
    callback worker (see ``_elsewhere``).

    An exception it raises on the caller's thread ends the call and is raised by it, unless
    ``on_error`` is given: then ``on_error`` is called while it is handled, and the call goes on.
    """

    __slots__ = ("__wrapped__", "_awaited", "_on_error")

    def __init__(
        self,
        callback: Callable[..., None],
        *,
        on_error: Callable[[], None] | None = None,
        awaited: bool = False,
    ) -> None:
        self.__wrapped__ = callback
        self._on_error = on_error
        self._awaited = awaited

    def __call__(self, *args: Any) -> Any:  # None, or the future of an awaited call
        """Hand the call to the caller; ``awaited``: a future that is done once it returned.

        If it raises instead, the caller abandons the call, which cancels the code awaiting it.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside any loop: nothing to hand it over from
            self._run(*args)
            return None
        if not self._awaited:
            if not hand_to_caller(functools.partial(self._run, *args)):
                self._elsewhere(loop, args)
            return None
        returned: asyncio.Future[None] = loop.create_future()

        def run() -> None:
            self._run(*args)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, returned)

        if not hand_to_caller(run):
            return self._elsewhere(loop, args, awaited=True)
        return returned

    def _elsewhere(
        self, loop: asyncio.AbstractEventLoop, args: tuple[Any, ...], *, awaited: bool = False
    ) -> Any:
        """No call waits for this one (the shared poller's requests belong to none, a task may
        outlive its call): run it on lume_sync's callback worker, in order, never on the loop's
        own thread, where a blocking callback would stall every call and a lume_sync call would
        be refused. ``awaited``: the future returned carries what it raised, to the code
        awaiting it."""
        run = self._run if awaited else self._run_alone
        try:
            return loop.run_in_executor(callback_executor(loop), functools.partial(run, *args))
        except RuntimeError:  # the loop is being torn down: its worker takes no more
            run(*args)
            return None

    def _run_alone(self, *args: Any) -> None:
        try:
            self._run(*args)
        except Exception:  # nobody is left to raise it to
            _logger.exception("a callback handed to lume_sync raised after its call was over")

    def _run(self, *args: Any) -> None:
        try:
            self.__wrapped__(*args)
        except Exception:
            if self._on_error is None:
                raise
            self._on_error()

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # not cancelled meanwhile with the code awaiting it
        future.set_result(None)


def on_caller(callback: F | None, *, awaited: bool = False) -> F | None:
    """``callback`` (an ``on_progress``) run on the caller's thread; its exception ends the call.

    ``awaited``: each call returns a future the code reporting progress awaits (an export).
    """
    if callback is None or isinstance(callback, OnCaller) or not callable(callback):
        return callback  # lume_async refuses a callback that cannot be called
    if is_async_callable(callback):
        # Its coroutine is lume_async's to await on the loop (an export does), or to refuse;
        # run on the caller's thread, it would be made and dropped unawaited.
        return callback
    return cast(F, OnCaller(callback, awaited=awaited))


def retry_on_caller(policy: RetryPolicy | None) -> RetryPolicy | None:
    """``policy`` with its ``on_retry`` run on the caller's thread; its exceptions are logged."""
    if not isinstance(policy, RetryPolicy) or policy.on_retry is None:
        return policy  # lume_async refuses what is not a RetryPolicy
    if isinstance(policy.on_retry, OnCaller):
        return policy
    hook = OnCaller(policy.on_retry, on_error=_log_retry_hook_error)
    return attrs.evolve(policy, on_retry=hook)


def user_retry(policy: RetryPolicy) -> RetryPolicy:
    """``policy`` as its user wrote it: the inverse of ``retry_on_caller``."""
    hook = policy.on_retry
    return attrs.evolve(policy, on_retry=hook.__wrapped__) if isinstance(hook, OnCaller) else policy
