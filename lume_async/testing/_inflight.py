"""The requests the emulator is still answering, so that none outlives a reset or a stop.

aiohttp forgets a request whose client has gone (its connection is closed) but lets the handler
run on: one held by a ``delay`` fault would wake after the emulator stopped, or after a test's
``reset()``, and do its work in the next test's state. Each answer runs in a task of its own;
the middleware registers it here, and a reset or a stop cancels what is left.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

__all__ = ["InFlight"]


class InFlight:
    """The tasks answering requests, with their requests."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], web.BaseRequest] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[Any] | None, request: web.BaseRequest) -> None:
        if task is not None:
            self._tasks[task] = request

    def discard(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._tasks.pop(task, None)

    def cancel(self, *, orphans_only: bool = False) -> list[asyncio.Task[Any]]:
        """Cancel the answers in progress (but the caller's own); with ``orphans_only``, only
        those whose client has gone. Returns the tasks cancelled."""
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no loop runs here: the emulator is not serving
            current = None
        doomed = [
            task
            for task, request in self._tasks.items()
            if task is not current
            and not task.done()
            and (not orphans_only or request.transport is None)
        ]
        for task in doomed:
            task.cancel()
        return doomed

    async def drop(self, *, orphans_only: bool = False) -> None:
        """Cancel the answers in progress (see ``cancel``) and wait until they have ended."""
        doomed = self.cancel(orphans_only=orphans_only)
        if doomed:
            await asyncio.gather(*doomed, return_exceptions=True)
