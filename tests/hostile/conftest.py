from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from ..core._scripted import ScriptedServer


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for a client: its retry backoff and its waits take no real time."""
    return VirtualClock()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.fixture
async def vemu(clock: VirtualClock) -> AsyncIterator[Emulator]:
    """An emulator on the test's loop, on the same virtual clock as ``vlume``."""
    async with Emulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def vlume(vemu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    """A client of ``vemu`` in virtual time: runs progress while it waits, and nothing sleeps."""
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock) as client:
        yield client


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    """A real-socket service answering from a script (``then``)."""
    async with ScriptedServer() as server:
        yield server
