"""Cancellation and deadlines imposed from outside the SDK, by the code of the service using it.

A service bounds its own work: ``asyncio.timeout()``, ``task.cancel()``, anyio cancel scopes (a
framework's request scope), a task group whose sibling failed. Whatever the SDK was doing at that
moment, the cancellation goes on as the caller's own (an anyio scope catches it, a timeout says
TimeoutError), and what the client holds is left in order: closed when it was being closed, its
other callers unaffected.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from lume_async import AsyncLume, LumeError
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
LONG = "synthetic://outside-{}?rows=1&duration=1000000"


async def _sweeping(lume: AsyncLume) -> asyncio.Task[object]:
    """A wait on a long run in a task of its own, once the client's poller sweeps for it."""
    run = await lume.run(FLOW, LONG.format("waited"))
    waiter: asyncio.Task[object] = asyncio.ensure_future(run.wait(timeout=None, poll_interval=1))
    for _ in range(2):  # the wait starts the poller, which starts its first sweep
        await asyncio.sleep(0)
    assert lume._core.waiting._task is not None
    return waiter


async def _closed_everywhere(lume: AsyncLume, waiter: asyncio.Task[object]) -> None:
    """The client is closed: no connection left, and the other wait was told, not left hanging."""
    assert lume.is_closed
    assert lume._core.transport.session is None
    with anyio.fail_after(5), pytest.raises(LumeError, match="closed"):
        await waiter


# -- closing the client --------------------------------------------------------------------------


async def test_a_close_in_a_cancelled_scope_closes_and_the_scope_catches_its_cancellation(
    vemu: Emulator, clock: VirtualClock
) -> None:
    lume = AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock)
    waiter = await _sweeping(lume)
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:  # a framework's request scope, already cancelled
            scope.cancel()
            await lume.aclose()
        assert scope.cancelled_caught
        await _closed_everywhere(lume, waiter)


async def test_a_close_cancelled_while_it_waits_for_the_poller_still_closes(
    vemu: Emulator, clock: VirtualClock
) -> None:
    lume = AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock)
    waiter = await _sweeping(lume)
    with anyio.fail_after(10):
        closing = asyncio.ensure_future(lume.aclose())
        await asyncio.sleep(0)  # it waits for the poller's task to end
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await _closed_everywhere(lume, waiter)


async def test_leaving_the_client_as_a_timeout_expires_closes_it(
    vemu: Emulator, clock: VirtualClock
) -> None:
    lume = AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock)
    waiter = await _sweeping(lume)

    async def leave_as_the_deadline_passes() -> None:
        async with asyncio.timeout(None) as deadline, lume:
            # The deadline passes as the block is left: it cancels the close midway.
            deadline.reschedule(asyncio.get_running_loop().time())

    with anyio.fail_after(10):
        with pytest.raises(TimeoutError):
            await leave_as_the_deadline_passes()
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        await _closed_everywhere(lume, waiter)
