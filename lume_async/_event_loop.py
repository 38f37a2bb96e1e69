"""The event loop the SDK starts for itself: uvloop's when ``lume-sdk[speed]`` installed it.

Only loops the SDK owns take it: lume_sync's private loop thread and the ``lume`` command. An
application running ``lume_async`` keeps whatever loop it chose. ``LUME_LOOP=asyncio`` keeps
asyncio's own loop even where uvloop is installed (``LUME_LOOP=uvloop`` or unset: uvloop's when
it is there); it is read each time such a loop is made. ``running_loop`` and ``current_task`` ask
about whichever loop the calling code runs on (None outside any).
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = [
    "ENV_LOOP",
    "OTHER_LOOP",
    "current_task",
    "new_event_loop",
    "run",
    "running_loop",
    "uses_uvloop",
]

ENV_LOOP: Final = "LUME_LOOP"
OTHER_LOOP: Final = (
    "this client is bound to another event loop that is still open; "
    "create one client per event loop (or close the loop before moving on)"
)
"""Why a client refuses to be used from a second loop while its first is still open."""
_CHOICES: Final = ("asyncio", "uvloop")

T = TypeVar("T")


def _wanted() -> str:
    """``LUME_LOOP`` as a choice; ``"uvloop"`` when unset, and when unknown (with a warning)."""
    value = os.environ.get(ENV_LOOP, "").strip().lower()
    if not value:
        return "uvloop"
    if value not in _CHOICES:
        warnings.warn(
            f"{ENV_LOOP}={value!r} is not one of {', '.join(_CHOICES)}; ignored",
            RuntimeWarning,
            stacklevel=4,
        )
        return "uvloop"
    return value


def uses_uvloop() -> bool:
    """Whether ``new_event_loop()`` returns a uvloop loop (installed, and not opted out of)."""
    if _wanted() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed (unless ``LUME_LOOP=asyncio``), else
    asyncio's default."""
    if _wanted() == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if os.environ.get(ENV_LOOP, "").strip().lower() == "uvloop":
            warnings.warn(
                f"{ENV_LOOP}=uvloop but uvloop is not installed (pip install 'lume-sdk[speed]'); "
                "using asyncio's loop",
                RuntimeWarning,
                stacklevel=2,
            )
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on ``new_event_loop()``."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running the calling code; None outside any (another thread, no loop)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def current_task() -> asyncio.Task[object] | None:
    """The task running the calling code; None outside any."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
