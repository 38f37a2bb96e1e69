"""``Doorbell``: a wake-up one thread rings and another waits on, over a file descriptor.

The hand-off between a blocked caller and the private loop costs two thread wake-ups per call,
and how each one is made decides how long it takes. Releasing a ``threading.Lock`` wakes the
other thread while the ringing thread still holds the GIL: the woken thread runs only to block
again on the GIL, and is woken a second time when the ringer lets it go. A doorbell rings with a
system call made with the GIL released (``os.eventfd_write``, or ``send`` on a socket pair), so
the woken thread finds the GIL free and runs at once. The loop waits on its doorbell through
``add_reader``; a caller waits with ``poll``, in slices, so that Ctrl-C and a dead loop thread
are noticed.

Ringing is idempotent until the bell is waited on: many rings wake the waiter once, and a ring
nobody waits for wakes the next wait at once. Every waiter re-checks the state it waits for, so a
wake-up without news only costs a look.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Final, Protocol

__all__ = ["Doorbell", "EventFdDoorbell", "SocketDoorbell", "borrow", "give_back", "make_doorbell"]

_HAS_POLL: Final = hasattr(select, "poll")


class Doorbell(Protocol):
    def fileno(self) -> int: ...
    def ring(self) -> None: ...
    def clear(self) -> None: ...
    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class EventFdDoorbell:
    """A doorbell on a Linux ``eventfd``: one descriptor, one system call per ring or wait."""

    __slots__ = ("_fd", "_poll")

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def fileno(self) -> int:
        """The descriptor that turns readable when the bell has rung."""
        return self._fd

    def ring(self) -> None:
        """Wake the waiter; the GIL is released for the system call. Safe from any thread."""
        os.eventfd_write(self._fd, 1)

    def clear(self) -> None:
        """Take back the rings so far (the loop does this when it answers its bell)."""
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:  # not rung since it was last cleared
            return

    def wait(self, timeout: float) -> bool:
        """Block until the bell rings (True, the ring is taken) or ``timeout`` seconds pass."""
        if not self._poll.poll(max(0, int(timeout * 1000))):
            return False
        self.clear()
        return True

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class SocketDoorbell:
    """A doorbell on a connected socket pair, for platforms without ``eventfd``."""

    __slots__ = ("_reader", "_writer")

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        """The descriptor that turns readable when the bell has rung."""
        return self._reader.fileno()

    def ring(self) -> None:
        """Wake the waiter; the GIL is released for the system call. Safe from any thread."""
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the buffer is full of rings nobody has taken yet: the waiter will wake
        except OSError:
            if self._writer.fileno() != -1:  # closed: nobody is left to wake
                raise

    def clear(self) -> None:
        """Take back the rings so far (the loop does this when it answers its bell)."""
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def wait(self, timeout: float) -> bool:
        """Block until the bell rings (True, the ring is taken) or ``timeout`` seconds pass."""
        if _HAS_POLL:
            poll = select.poll()
            poll.register(self._reader, select.POLLIN)
            ready = bool(poll.poll(max(0, int(timeout * 1000))))
        else:  # Windows: select() works on sockets
            ready = bool(select.select([self._reader], [], [], max(0.0, timeout))[0])
        if ready:
            self.clear()
        return ready

    def close(self) -> None:
        self._reader.close()
        self._writer.close()

    def __del__(self) -> None:
        self.close()


def make_doorbell() -> Doorbell:
    """A new doorbell of the best kind this platform has."""
    return EventFdDoorbell() if hasattr(os, "eventfd") else SocketDoorbell()


# ---------------------------------------------------------------------------------------------
# Callers' doorbells: one per blocked call, reused by the thread that made it

_local = threading.local()


def borrow() -> Doorbell:
    """A doorbell for one blocking call of the current thread.

    A call made from a callback while its thread waits in another call gets a bell of its own,
    so neither takes the other's rings. A bell given back may still be rung by a call abandoned
    on Ctrl-C; its next user then wakes once for nothing and looks again.
    """
    pool: list[Doorbell] | None = getattr(_local, "pool", None)
    if pool:
        return pool.pop()
    return make_doorbell()


def give_back(bell: Doorbell) -> None:
    """Return a bell from ``borrow()`` to the current thread (it closes with the thread)."""
    pool: list[Doorbell] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = []
    pool.append(bell)


def _after_fork_in_child() -> None:
    # The parent's bells are shared with it: the child makes its own.
    global _local
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
