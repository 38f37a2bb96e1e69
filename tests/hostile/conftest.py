from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lume_async.testing import Emulator, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for a client: its retry backoff and its waits take no real time."""
    return VirtualClock()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator
