"""SIGTERM ends the ``lume`` command as Ctrl-C does, with status 143.

A container being stopped, a CI job cancelled or ``kill`` sends SIGTERM, whose default action
ends the process on the spot: the connections are dropped mid-request and nothing says which
runs go on at the service. While a command runs, SIGTERM stops it as Ctrl-C would: while the
event loop runs, it cancels the command's task (the client closes as the task unwinds), and
elsewhere it raises ``KeyboardInterrupt``. The command then reports ``terminated`` where Ctrl-C
reports ``interrupted``, naming the runs that go on. A SIGTERM the parent process ignores stays
ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ._exit import CommandError, ExitStatus

__all__ = ["as_terminated", "on_the_loop", "terminable"]

_terminated = threading.Event()


def _handled() -> bool:
    """Whether SIGTERM is this command's to handle: on the main thread, and not ignored."""
    return (
        hasattr(signal, "SIGTERM")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _terminated.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminable() -> Iterator[None]:
    """SIGTERM as Ctrl-C for the duration of the command."""
    if not _handled():
        yield
        return
    _terminated.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def on_the_loop() -> Iterator[None]:
    """In the command's task: SIGTERM cancels the task, as the loop's runner does on Ctrl-C,
    and ``KeyboardInterrupt`` is raised once what the task was doing has unwound.

    A plain handler that hands the cancellation to the loop, as the runner's for Ctrl-C does:
    swapping it in and out is one step each way, with no moment where SIGTERM's default action
    (the process's end, unreported) is in place.
    """
    if not _handled():
        yield
        return
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        _terminated.set()
        loop.call_soon_threadsafe(task.cancel)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except asyncio.CancelledError:
        if not _terminated.is_set():
            raise
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def as_terminated(failure: BaseException) -> BaseException:
    """An interruption that SIGTERM caused, reported as ``terminated`` with status 143."""
    if not _terminated.is_set() or not isinstance(failure, CommandError):
        return failure
    if failure.kind != "interrupted":
        return failure
    message = "terminated" + failure.format_message().removeprefix("interrupted")
    return CommandError(
        message, status=ExitStatus.TERMINATED, kind="terminated", details=failure.details
    )
