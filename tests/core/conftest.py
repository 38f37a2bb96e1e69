from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from ._scripted import ScriptedServer

NOWHERE = "http://127.0.0.1:9"


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


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    """One event loop for a module's synchronous tests that run coroutines, example after example
    (an async hypothesis test with no async fixture starts a loop per example)."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def offline(loop: asyncio.Runner) -> Iterator[AsyncLume]:
    """A client on ``loop`` of a port nobody listens on: a call that got past the client's checks
    would end in an APIConnectionError. Shared by a test's examples: a check that fails leaves
    it as it was."""

    async def start() -> AsyncLume:
        return AsyncLume(api_key="k", base_url=NOWHERE, max_retries=0)

    client = loop.run(start())
    yield client
    loop.run(client.aclose())
