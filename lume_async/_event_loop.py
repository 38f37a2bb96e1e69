"""The event loop the SDK starts for itself: uvloop's when ``lume-sdk[speed]`` installed it.

Only loops the SDK owns take it: lume_sync's private loop thread and the ``lume`` command. An
application running ``lume_async`` keeps whatever loop it chose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["new_event_loop", "run", "uses_uvloop"]

T = TypeVar("T")


def uses_uvloop() -> bool:
    """Whether ``new_event_loop()`` returns a uvloop loop (uvloop is importable)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on ``new_event_loop()``."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
