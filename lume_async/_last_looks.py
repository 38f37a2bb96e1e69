"""``LastLooks``: the looks waits take at their deadlines, shared by the waits ending together.

A wait that reaches its deadline asks about its runs once more before it says they are not
finished (the last sweep may be long ago). The waits whose deadlines pass together (a thousand
``wait(timeout=60)`` started in one go) ask in one look, 100 runs per request, not in a request
each: each joins the look that is gathering runs, if any, else starts one, which gathers while
the waits woken with it run (their deadlines passed in the same turn of the clock's timers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from ._clock import Clock
from ._event_loop import current_task
from ._timers import run_within, shared_task, stopped

__all__ = ["LAST_LOOK", "LastLooks"]

# The longest a wait goes on past its deadline for its last look (seconds of the client's clock).
LAST_LOOK: Final = 5.0


class _Look:
    __slots__ = ("ended", "failure", "run_ids")

    def __init__(self) -> None:
        self.run_ids: dict[str, None] = {}
        self.ended = asyncio.Event()
        self.failure: BaseException | None = None


class LastLooks:
    """The looks at deadlines of one poller: ``sweep(run_ids)`` asks about runs once (those
    still ``watched``)."""

    def __init__(
        self,
        clock: Clock,
        sweep: Callable[[list[str]], Awaitable[object]],
        watched: Callable[[str], bool],
    ) -> None:
        self._clock = clock
        self._sweep = sweep
        self._watched = watched
        self._gathering: _Look | None = None  # the look about to start, which runs may join
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, run_ids: Iterable[str]) -> BaseException | None:
        """Once a look that asked about ``run_ids`` has ended: why it failed or gave up (None
        if it was answered). A caller cancelled meanwhile leaves the look to the others."""
        look = self._gathering
        if look is None:
            look = self._gathering = _Look()
            task = shared_task(self._run(look), "lume-waiting-last-look")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        look.run_ids.update(dict.fromkeys(run_ids))
        await look.ended.wait()
        return look.failure

    async def _run(self, look: _Look) -> None:
        try:
            await asyncio.sleep(0)  # the waits woken with the first one, which run before this
            if self._gathering is look:
                self._gathering = None
            watched = [run_id for run_id in look.run_ids if self._watched(run_id)]
            answered, _ = await run_within(self._clock, LAST_LOOK, lambda: self._sweep(watched))
            if not answered:
                look.failure = TimeoutError(f"no answer in {LAST_LOOK:g} s")
        except Exception as exc:  # the waits time out all the same; the error says why
            look.failure = exc
        finally:
            look.ended.set()

    def stop(self) -> list[asyncio.Task[None] | None]:
        """Cancel the looks in flight (nobody waits for them); return them, to wait for."""
        self._gathering = None
        return [stopped(task) for task in list(self._tasks) if task is not current_task()]

    def clear(self) -> None:
        """Forget the looks (the loop they ran on is gone)."""
        self._gathering = None
        self._tasks.clear()
