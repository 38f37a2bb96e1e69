"""Specification of the shared request time limits (``lume_async._deadlines``)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async._deadlines import Deadlines, slack

pytestmark = pytest.mark.timeout(30)

FOREVER = 3600.0


async def finishes_in_time(deadlines: Deadlines) -> str:
    with deadlines.limit(FOREVER):
        await asyncio.sleep(0)
        return "done"


async def overstays(deadlines: Deadlines, seconds: float = 0.02) -> None:
    with deadlines.limit(seconds):
        await asyncio.sleep(FOREVER)


@pytest.mark.anyio
async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    deadlines = Deadlines()

    assert await finishes_in_time(deadlines) == "done"
    assert len(deadlines) == 0


@pytest.mark.anyio
async def test_an_overdue_block_raises_timeout_error_and_the_task_can_go_on() -> None:
    deadlines = Deadlines()

    with pytest.raises(TimeoutError):
        await overstays(deadlines)

    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation left pending
    assert len(deadlines) == 0


@pytest.mark.anyio
async def test_many_limits_each_end_only_their_own_block() -> None:
    deadlines = Deadlines()
    short = [asyncio.ensure_future(overstays(deadlines, 0.01 * (i + 1))) for i in range(20)]
    long = [asyncio.ensure_future(finishes_in_time(deadlines)) for _ in range(20)]

    results = await asyncio.gather(*short, *long, return_exceptions=True)

    assert all(isinstance(r, TimeoutError) for r in results[:20])
    assert results[20:] == ["done"] * 20
    assert len(deadlines) == 0


@pytest.mark.anyio
async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    entered = asyncio.Event()

    async def waits() -> None:
        with deadlines.limit(FOREVER):
            entered.set()
            await asyncio.sleep(FOREVER)

    task = asyncio.ensure_future(waits())
    await entered.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(deadlines) == 0


@pytest.mark.anyio
async def test_an_outside_cancellation_during_expiry_is_not_swallowed() -> None:
    deadlines = Deadlines()

    async def overstays_then_is_cancelled() -> None:
        with deadlines.limit(0.01):
            try:
                await asyncio.sleep(FOREVER)
            finally:
                asyncio.current_task().cancel()  # type: ignore[union-attr]
                await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(overstays_then_is_cancelled())


def test_the_limits_of_a_loop_that_is_gone_are_forgotten() -> None:
    deadlines = Deadlines()

    async def abandons_a_limit() -> None:
        deadlines.limit(FOREVER).__enter__()  # never exited: its loop ends first

    asyncio.run(abandons_a_limit())
    assert len(deadlines) == 1
    assert asyncio.run(finishes_in_time(deadlines)) == "done"
    assert len(deadlines) == 0


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_the_slack_is_a_twentieth_of_the_limit_between_10_ms_and_1_s(seconds: float) -> None:
    late = slack(seconds)

    assert 0.01 <= late <= 1.0
    assert late == pytest.approx(min(max(seconds / 20, 0.01), 1.0))
