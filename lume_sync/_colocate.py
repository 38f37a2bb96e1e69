"""``CpuFollower``: keeps the loop thread on the CPU of the one thread that calls it (Linux).

A blocking call wakes the loop thread, then the loop thread wakes its caller. Waking a thread on
an idle CPU costs tens of microseconds on machines whose idle CPUs sleep deeply (virtual machines
above all: the wake-up is an interrupt to another virtual CPU), while waking one on the CPU that
is running anyway is a plain switch of threads. Measured on a 2-vCPU VM, a sequential GET through
``lume_sync`` cost about 130 µs more than the same ``await``; with the loop thread kept on its
caller's CPU, about the same as the ``await`` (benchmarks/README.md, "The sync hand-off").

So while a single thread makes the calls, the loop thread is kept on the CPU that thread last ran
on: ``sched_getcpu`` is asked on each call, and ``sched_setaffinity`` moves the loop thread only
when the caller has moved. The caller is blocked while the loop works for it, and the GIL lets
only one of them run Python at a time, so sharing a CPU costs them nothing. Once a second thread
calls, the loop thread gets back the CPUs it started with, for good, and the scheduler places it
as it likes. If the kept CPU turns out busy with other work (the loop thread keeps waking late),
the loop thread is left free for a while, so it can run on another CPU. The loop's executor
threads start with the CPUs it started with (``reset``). Off Linux, or where the system refuses,
nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Final, final

__all__ = ["CONTENDED_NS", "LATE_IN_A_ROW", "PAUSE", "CpuFollower", "available"]

CONTENDED_NS: Final = 200_000
"""A wake-up on the kept CPU later than this (ns) means that CPU is busy with other work."""
LATE_IN_A_ROW: Final = 4
"""Late wake-ups (each net of those on time since) that leave the thread free."""
PAUSE: Final = 2.0
"""Seconds the thread is then left free before it is kept on its caller's CPU again."""


def _load_getcpu() -> Callable[[], int] | None:
    if not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):  # a C library without it
        return None
    getcpu.restype = ctypes.c_int
    getcpu.argtypes = []
    return getcpu


_GETCPU: Final = _load_getcpu()


def available() -> bool:
    """Whether this platform can keep a thread on another's CPU."""
    return _GETCPU is not None


@final
class CpuFollower:
    """Moves one thread (by native id) to the CPU of its only caller."""

    __slots__ = (
        "_active",
        "_caller",
        "_cpu",
        "_cpus",
        "_late",
        "_lock",
        "_paused_until",
        "_rung_at",
        "_tid",
    )

    def __init__(self) -> None:
        """Made on the thread that starts the followed one (whose CPUs it inherits)."""
        self._tid: int | None = None
        self._active = _GETCPU is not None
        self._cpus: set[int] = set()
        if self._active:
            try:
                self._cpus = os.sched_getaffinity(0)  # what the loop thread starts with
            except OSError:
                self._active = False
        self._caller: int | None = None
        self._cpu = -1  # the CPU the thread is kept on, -1 when free
        self._rung_at = 0  # when the caller last woke it, kept there (perf_counter_ns)
        self._paused_until = 0.0  # until then (monotonic), the thread is left free
        self._late = 0  # late wake-ups, less those on time since (never below 0)
        self._lock = threading.Lock()

    def attach(self, native_id: int | None) -> None:
        """Follow the thread of ``native_id``, once it has started."""
        self._tid = native_id
        if native_id is None:
            self._active = False

    @property
    def cpus(self) -> set[int]:
        """The CPUs the followed thread started with (and gets back)."""
        return set(self._cpus)

    @property
    def following(self) -> bool:
        """Whether the thread is still kept on its caller's CPU (one caller so far)."""
        return self._active

    def follow(self) -> None:
        """Called by a caller before it wakes the thread: bring the thread to this CPU."""
        if not self._active or self._tid is None:
            return
        caller = threading.get_ident()
        if caller != self._caller:
            with self._lock:
                if self._caller is None:
                    self._caller = caller
                elif caller != self._caller:
                    self._give_back()
                    return
        if self._paused_until:
            if time.monotonic() < self._paused_until:
                return
            self._paused_until = 0.0
        assert _GETCPU is not None
        cpu = _GETCPU()
        if cpu == self._cpu or cpu < 0:
            self._rung_at = time.perf_counter_ns()
            return
        with self._lock:
            if not self._active or self._paused_until:
                return
            try:
                os.sched_setaffinity(self._tid, {cpu})
            except OSError:  # not allowed here (a container's policy): leave it be
                self._give_back()
                return
            self._cpu = cpu
        self._rung_at = time.perf_counter_ns()

    def woken(self) -> None:
        """Called by the followed thread when it wakes for a call: if the CPU it is kept on
        keeps being busy with other work (wake-ups later than ``CONTENDED_NS``, ``LATE_IN_A_ROW``
        more late than on time), it is left free for a while (``PAUSE``), where the scheduler can
        place it on an idle CPU. A late wake-up now and then (an interrupt, a page fault) is
        not enough."""
        rung, self._rung_at = self._rung_at, 0
        if not rung:
            return
        if time.perf_counter_ns() - rung <= CONTENDED_NS:
            if self._late:
                self._late -= 1
            return
        self._late += 1
        if self._late >= LATE_IN_A_ROW:
            self._late = 0
            with self._lock:
                if self._active and self._cpu >= 0:
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(self._tid, self._cpus)  # type: ignore[arg-type]
                    self._cpu = -1
                    self._paused_until = time.monotonic() + PAUSE

    def _give_back(self) -> None:
        """The thread gets its CPUs back, for good (under the lock)."""
        if not self._active:
            return
        self._active = False
        if self._cpu >= 0:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self._tid, self._cpus)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Give the current thread the CPUs the followed one started with (for threads it
        starts, which would otherwise inherit its single CPU)."""
        if self._cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, self._cpus)
