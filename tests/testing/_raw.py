"""Helpers for tests that hold requests open on a socket of their own: the bytes of a request,
and a wait for a condition the emulator's loop brings about."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lume_async.testing import Emulator


def raw_request(
    emu: Emulator,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """An HTTP/1.1 request to ``emu`` with its API key, as the bytes sent."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nlume-api-key: {emu.api_key}\r\n{extra}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
