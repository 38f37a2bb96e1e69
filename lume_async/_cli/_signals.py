"""SIGTERM ends the ``lume`` command as Ctrl-C does, with status 143.

A container being stopped, a CI job cancelled or ``kill`` sends SIGTERM, whose default action
ends the process on the spot: the connections are dropped mid-request and nothing says which
runs go on at the service. While a command runs, SIGTERM is handed to whatever handles Ctrl-C
(the event loop's runner cancels its task, and the client closes), and the command reports
``terminated`` where Ctrl-C reports ``interrupted``, naming the runs that go on.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ._exit import CommandError, ExitStatus

__all__ = ["as_terminated", "terminable"]

_terminated = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _terminated.set()
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # the loop's runner: it cancels its task
    else:  # Ctrl-C ignored (a job started in the background): stop here all the same
        raise KeyboardInterrupt


@contextlib.contextmanager
def terminable() -> Iterator[None]:
    """SIGTERM as Ctrl-C for the duration (on the main thread, where signals are handled)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    _terminated.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
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
