"""The client's connection pool, as the network tests look into it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lume_async import AsyncLume
from lume_async._connections import Connections


def connections(lume: AsyncLume) -> Connections:
    """The client's own HTTP/1.1 connections."""
    session = lume._core.transport.session
    assert isinstance(session, Connections)
    return session


async def until(condition: Callable[[], object], pause: float = 0.0) -> None:
    """Let the loop run until ``condition()`` holds (each turn one pass, or ``pause`` apart)."""
    while not condition():  # noqa: ASYNC110 - the client's state, which no event announces
        await asyncio.sleep(pause)
