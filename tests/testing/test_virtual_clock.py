"""VirtualClock: time that moves only when told to, or when everything waits on it."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import anyio
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async._clock import Clock
from lume_async.testing import VirtualClock

from .._profiles import examples

pytestmark = pytest.mark.anyio


async def turns(n: int) -> None:
    """Let the event loop go round ``n`` times."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_it_is_a_clock() -> None:
    assert isinstance(VirtualClock(), Clock)


def test_monotonic_starts_at_zero_and_time_at_the_real_time() -> None:
    before = time.time()
    clock = VirtualClock()
    after = time.time()
    assert clock.monotonic() == 0.0
    assert before <= clock.time() <= after


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=20))
def test_advance_moves_both_readings_by_exactly_the_sum(steps: list[float]) -> None:
    clock = VirtualClock()
    start = clock.time()
    for step in steps:
        clock.advance(step)
    assert clock.monotonic() == pytest.approx(math.fsum(steps))
    assert clock.time() - start == pytest.approx(math.fsum(steps), abs=1e-5)  # float epoch


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_advance_refuses_a_step_that_is_not_a_finite_number_of_seconds(bad: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        VirtualClock().advance(bad)


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50).map(lambda n: n / 10), max_size=12))
async def test_sleeps_end_in_deadline_order_each_at_its_deadline(durations: list[float]) -> None:
    clock = VirtualClock()
    woke: list[tuple[float, int]] = []

    async def sleeper(index: int, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((clock.monotonic(), index))

    async with anyio.create_task_group() as tg:
        for index, seconds in enumerate(durations):
            tg.start_soon(sleeper, index, seconds)

    # Sorted by deadline; equal deadlines in the order the sleeps began.
    expected = sorted(((seconds, index) for index, seconds in enumerate(durations)))
    assert [index for _, index in woke] == [index for _, index in expected]
    assert [at for at, _ in woke] == [max(seconds, 0.0) for seconds, _ in expected]


async def test_without_autojump_only_advance_ends_sleeps() -> None:
    clock = VirtualClock(autojump=False)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "short", 1)
        tg.start_soon(sleeper, "long", 5)
        await turns(20)
        assert woke == []
        assert clock.sleepers == 2
        assert clock.next_deadline == 1
        clock.advance(2)
        await turns(5)
        assert woke == ["short"]
        assert clock.next_deadline == 5
        clock.advance(3)
    assert woke == ["short", "long"]
    assert clock.sleepers == 0


async def test_a_cancelled_sleep_is_forgotten() -> None:
    clock = VirtualClock(autojump=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, 10)
        await turns(5)
        assert clock.sleepers == 1
        tg.cancel_scope.cancel()
    assert clock.sleepers == 0
    assert clock.next_deadline is None


async def test_advance_from_another_thread_wakes_a_sleeper_on_this_loop() -> None:
    clock = VirtualClock(autojump=False)
    ready = threading.Event()

    def mover() -> None:
        ready.wait()
        clock.advance(60)

    thread = threading.Thread(target=mover)
    thread.start()
    with anyio.fail_after(10):  # a hang guard, not a measurement
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.sleep, 60)
            await turns(5)
            ready.set()
    thread.join()
    assert clock.monotonic() == 60


async def test_virtual_time_stands_still_while_a_server_on_this_loop_answers() -> None:
    clock = VirtualClock()
    served = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        await turns(3)  # some work across several turns of the loop
        return web.json_response({"n": served})

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    import aiohttp

    seen: list[float] = []
    try:
        async with aiohttp.ClientSession() as http, anyio.create_task_group() as tg:
            tg.start_soon(clock.sleep, 10)  # a sleeper the clock could jump to

            for _ in range(30):
                async with http.get(f"http://127.0.0.1:{port}/") as response:
                    await response.read()
                seen.append(clock.monotonic())
    finally:
        await runner.cleanup()
    assert served == 30
    assert seen == [0.0] * 30  # no jump while requests were in flight
    assert clock.monotonic() == 10  # and the sleeper ended once the loop fell idle


async def test_a_sleep_of_zero_or_less_only_yields() -> None:
    clock = VirtualClock(autojump=False)
    with anyio.fail_after(10):  # a hang guard: these must not wait for advance()
        await clock.sleep(0)
        await clock.sleep(-3)
    assert clock.monotonic() == 0


@pytest.mark.parametrize("bad", ["1", None, True])
async def test_sleep_refuses_a_value_that_is_not_a_number(bad: object) -> None:
    with pytest.raises(TypeError, match="seconds"):
        await VirtualClock().sleep(bad)  # type: ignore[arg-type]
