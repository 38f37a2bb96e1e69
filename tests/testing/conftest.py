from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lume_async.testing import Emulator


class ManualClock:
    """A clock whose time moves only when the test moves it; sleepers wake as it passes them.

    For async tests whose emulator runs on the test's own loop.
    """

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self._mono = 1000.0
        self._wall = wall
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._new_sleeper: asyncio.Event | None = None

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), done))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        await done

    async def wait_for_sleepers(self, count: int) -> None:
        """Yield to the loop until ``count`` tasks wait on this clock."""
        self._new_sleeper = asyncio.Event()
        while sum(not done.done() for _, _, done in self._sleepers) < count:
            await self._new_sleeper.wait()
            self._new_sleeper.clear()

    def move(self, seconds: float) -> None:
        """Let ``seconds`` pass, waking every sleeper whose time has come."""
        self._mono += seconds
        self._wall += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, done = heapq.heappop(self._sleepers)
            if not done.done():
                done.set_result(None)

    async def pass_time(self, seconds: float) -> None:
        """``move`` and let the woken tasks run."""
        self.move(seconds)
        for _ in range(5):
            await asyncio.sleep(0)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator on the test's own loop, with a fast clock for quick webhook retries."""
    async with Emulator(time_scale=1.0, webhook_retry_base=0.01) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def manual(clock: ManualClock) -> AsyncIterator[Emulator]:
    """An emulator whose every reading of time comes from ``clock``."""
    async with Emulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def manual_api(manual: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        manual.url, headers={"lume-api-key": manual.api_key}
    ) as session:
        yield session


async def call(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body


CUSTOMERS = "customer_cleaner:v1"
