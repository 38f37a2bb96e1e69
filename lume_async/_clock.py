"""``Clock``: where the client and the emulator read time and wait, so tests can replace it."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time: a monotonic reading for durations, wall-clock time, and a way to wait.

    The client waits (retry backoff, poll intervals, deadlines) and the emulator advances runs
    through one of these, so a test can hand both the same virtual clock and skip time.
    """

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back: for durations and deadlines."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch: for timestamps."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time: ``time.monotonic``, ``time.time`` and ``anyio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
