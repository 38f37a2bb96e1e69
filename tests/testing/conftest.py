from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lume_async.testing import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator on the test's own loop, with a fast clock for quick webhook retries."""
    async with Emulator(time_scale=1.0, webhook_retry_base=0.01) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as session:
        yield session


async def call(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body


CUSTOMERS = "customer_cleaner:v1"


def pytest_configure(config: pytest.Config) -> None:
    # Also registered by the installed pytest plugin; repeated here so a source checkout works.
    config.addinivalue_line(
        "markers", "lume_emulator(**kwargs): options for the lume_emulator fixture"
    )
