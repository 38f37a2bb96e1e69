"""Clients for the seeds' snippets: a blocking ``lume`` and an async ``alume``, each on an emulator.

The async client shares a virtual clock with an emulator on the test's own loop, so a snippet's
``poll_interval=10`` or ``timeout=600`` takes no real time. The blocking client runs on lume_sync's
own loop thread and its emulator on another, where a virtual clock cannot tell a request in flight
from an idle loop; both run ``SCALE`` times faster than real time instead, so ten seconds of
polling pass in a tenth of a second.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock
from lume_sync import Lume

SCALE = 100.0


class ScaledClock:
    """Time that passes ``scale`` times as fast as real time (waits are that much shorter)."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._start = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._start) * self._scale

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self._scale)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """The blocking client's emulator, on its own thread, ``SCALE`` times faster than real time."""
    with Emulator(time_scale=SCALE) as emulator:
        yield emulator


@pytest.fixture
def lume(emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=emu.api_key, base_url=emu.url, clock=ScaledClock(SCALE)) as client:
        yield client


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def aemu(clock: VirtualClock) -> AsyncIterator[Emulator]:
    """The async client's emulator, on the test's loop and the shared virtual clock."""
    async with Emulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def alume(aemu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=aemu.api_key, base_url=aemu.url, clock=clock) as client:
        yield client
