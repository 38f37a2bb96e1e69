from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, instant_retries

from ._scripted import ScriptedServer


@pytest.fixture
def no_retry_sleep() -> Iterator[None]:
    with instant_retries():
        yield


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.fixture
async def lume(emu: Emulator, no_retry_sleep: None) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as server:
        yield server
