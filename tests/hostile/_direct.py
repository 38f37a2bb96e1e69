"""Requests to the emulator as one principal, past the SDK: what the service itself answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from lume_async.testing import Emulator

__all__ = ["call", "raw"]


@asynccontextmanager
async def raw(emu: Emulator, key: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": key}) as session:
        yield session


async def call(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)
