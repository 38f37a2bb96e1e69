from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from ._scripted import ScriptedServer


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for a client: its retry backoff and its waits take no real time."""
    return VirtualClock()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.fixture
async def lume(emu: Emulator) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as server:
        yield server
