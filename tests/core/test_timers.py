"""Timers: callbacks at deadlines of any clock, the way the poller times out its waiters."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lume_async._timers import Timers, sleep_until_set
from lume_async.testing import VirtualClock

from .._profiles import examples

pytestmark = pytest.mark.anyio


@settings(max_examples=examples(40))
@given(
    st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=15),
)
@example([(12, False), (34, False)])  # 1.2 + (3.4 - 1.2) == 3.4000000000000004
async def test_live_timers_fire_in_deadline_order_at_their_deadline_and_cancelled_ones_never(
    plan: list[tuple[int, bool]],
) -> None:
    clock = VirtualClock()
    timers = Timers(clock)
    fired: list[tuple[float, int]] = []
    handles = []
    for index, (tenths, _) in enumerate(plan):
        at = tenths / 10
        handles.append(timers.call_at(at, lambda i=index: fired.append((clock.monotonic(), i))))
    for handle, (_, cancel) in zip(handles, plan, strict=True):
        if cancel:
            timers.cancel(handle)
    last = max((tenths / 10 for tenths, _ in plan), default=0)
    await clock.sleep(last + 1)

    expected = sorted((tenths / 10, i) for i, (tenths, cancel) in enumerate(plan) if not cancel)
    assert [i for _, i in fired] == [i for _, i in expected]
    # At the deadline, give or take the rounding of "now + (deadline - now)"; never before it.
    assert [at for at, _ in fired] == pytest.approx([at for at, _ in expected], rel=1e-12)
    assert all(at >= deadline for (at, _), (deadline, _) in zip(fired, expected, strict=True))
    await timers.aclose()


async def test_the_task_ends_as_soon_as_no_live_timer_is_left() -> None:
    clock = VirtualClock(autojump=False)
    timers = Timers(clock)
    timer = timers.call_at(3600, lambda: None)
    await asyncio.sleep(0)
    timers.cancel(timer)
    for _ in range(10):
        await asyncio.sleep(0)
    assert clock.monotonic() == 0
    assert clock.sleepers == 0  # nothing is left sleeping out the hour


async def test_a_sleep_until_set_ends_at_the_event_or_the_time_whichever_comes_first() -> None:
    clock = VirtualClock()
    event = asyncio.Event()
    await sleep_until_set(clock, event, 5)
    assert clock.monotonic() == 5
    asyncio.get_running_loop().call_soon(event.set)
    await sleep_until_set(clock, event, 5)
    assert clock.monotonic() == 5  # the event came first
