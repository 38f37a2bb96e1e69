from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from lume_async.testing import Emulator, VirtualClock

from ._forks import ForkServer


@pytest.fixture(scope="session")
def forks() -> Iterator[ForkServer]:
    """Starts the chaos tests' service and script processes, forked from a warm interpreter."""
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for a client: its retry backoff and its waits take no real time."""
    return VirtualClock()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # 100x: a 2 s synthetic run ends in 20 ms of real time.
    async with Emulator(time_scale=100, seed=7) as emulator:
        yield emulator


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, object]]]:
    """What reached the event loop's exception handler: unhandled errors in tasks and callbacks."""
    import asyncio

    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)
