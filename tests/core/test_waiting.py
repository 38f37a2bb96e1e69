"""Waiting on runs: one poller per client, batch-gets of 100, webhooks as the fast path.

The client runs on a virtual clock: every poll interval, backoff and timeout below is virtual
time, so the tests take no real time waiting and see the same sequence on every run. The runs
live on the emulator over real sockets and end when a test moves the emulator's clock (a task
that sleeps on the client's clock first, so runs end at a known virtual time). The few tests about
timing and scale drive the shared poller with an in-memory ``batch-get`` so they can count and
time every request it makes.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiohttp
import anyio
import pytest

from lume_async import (
    AsyncLume,
    AsyncRun,
    LumeError,
    RateLimitError,
    RunNotFoundError,
    RunStatus,
    RunTimeoutError,
)
from lume_async._batch_get import RunsAnswer
from lume_async._clock import Clock
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._waiting import Waiting
from lume_async.models import RunData
from lume_async.testing import Emulator, VirtualClock
from lume_async.webhooks import WebhookReceiver

from ._scripted import run_json

pytestmark = pytest.mark.anyio

BATCH_GET = "POST /v1/runs/batch-get"
GET_ONE = "GET /v1/runs/{run_id}"
LONG = 1_000_000  # emulator seconds: a run that only ends when the test moves the emulator


@pytest.fixture
async def lume(emu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as client:
        yield client


def requests_to(emu: Emulator, route: str) -> int:
    return sum(emu.stats()["requests"].get(route, {}).values())


async def start(lume: AsyncLume, name: str, *, duration: float = LONG, **query: Any) -> AsyncRun:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return await lume.run(
        "customer_cleaner:v1", f"synthetic://{name}?rows=5&duration={duration}{extra}"
    )


async def finish_at(clock: Clock, emu: Emulator, at: float) -> None:
    """At virtual time ``at``, move the emulator far enough that every run has ended."""
    await clock.sleep(at - clock.monotonic())
    emu.advance(2 * LONG)


async def eventually(clock: Clock, condition: Callable[[], bool], *, within: float) -> None:
    """Let virtual time pass until ``condition()`` holds; fail after ``within`` virtual seconds."""
    deadline = clock.monotonic() + within
    while not condition():
        if clock.monotonic() >= deadline:
            pytest.fail(f"not true after {within} virtual seconds")
        await clock.sleep(0.005)


# -- an in-memory batch-get, for counting and timing the poller ---------------------------------


class FakeService:
    """Run statuses by id, answered the way ``batch-get`` answers; records every call."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.status: dict[str, str] = {}
        self.calls: list[list[str]] = []
        self.intervals: list[float] = []
        self.times: list[float] = []
        self.errors: deque[BaseException] = deque()
        self.decoded: list[str] = []  # the runs the poller decoded, in order
        self.waiting = Waiting(self.fetch, clock=clock, max_interval=0.2)

    async def fetch(self, ids: list[str], known: object = None) -> RunsAnswer:
        """A service that predates ``known``: it sends every run it has."""
        self.calls.append(ids)
        self.times.append(self.clock.monotonic())
        self.intervals.append(self.waiting.interval)
        if self.errors:
            raise self.errors.popleft()
        items = {i: run_json(i, self.status[i]) for i in ids if i in self.status}
        return RecordedAnswer(items, self.decoded)

    def cell(self, n: int, status: str = "PENDING") -> RunCell:
        """A run the service reports as ``status``, known to the waiter as PENDING."""
        run_id = f"run_{n:026d}"
        self.status[run_id] = status
        return RunCell(run_from_obj(run_json(run_id, "PENDING")))

    async def wait(self, cell: RunCell, *, timeout: float | None, poll_interval: float) -> None:
        await self.waiting.wait(cell, cell, timeout=timeout, poll_interval=poll_interval)


class RecordedAnswer(RunsAnswer):
    """A ``batch-get`` answer that records which of its runs were decoded."""

    __slots__ = ("decoded",)

    def __init__(self, items: dict[str, dict[str, Any]], decoded: list[str]) -> None:
        super().__init__(items)
        self.decoded = decoded

    def decode(self, item: dict[str, Any]) -> RunData:
        self.decoded.append(item["id"])
        return super().decode(item)


@pytest.fixture
def fake(clock: VirtualClock) -> FakeService:
    return FakeService(clock)


# -- basics -------------------------------------------------------------------------------------


async def test_wait_returns_the_same_handle_once_terminal(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    run = await start(lume, "basic")
    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_at, clock, emu, 3)
        assert await run.wait(poll_interval=0.01, timeout=60) is run
    assert run.status is RunStatus.SUCCEEDED
    assert run.metadata is not None
    assert 3 <= clock.monotonic() < 5  # seen by the first sweep after it ended


async def test_a_completion_wakes_exactly_the_waiters_of_that_run(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    a = await start(lume, "a", duration=1000)
    a_again = await lume.runs.get(a.id)
    b = await start(lume, "b")
    woken: list[str] = []

    async def waiter(name: str, run: AsyncRun) -> None:
        await run.wait(poll_interval=0.01, timeout=60)
        woken.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a1", a)
        tg.start_soon(waiter, "a2", a_again)
        tg.start_soon(waiter, "b", b)
        await clock.sleep(0.05)
        emu.advance(2000)
        await eventually(clock, lambda: len(woken) >= 2, within=2)
        await clock.sleep(1)  # many more sweeps: B is still not finished
        assert sorted(woken) == ["a1", "a2"]
        assert not b.is_terminal
        tg.cancel_scope.cancel()

    assert a.is_terminal and a_again.is_terminal


async def test_each_waiter_has_its_own_deadline(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    run = await start(lume, "deadlines")
    other_handle = await lume.runs.get(run.id)

    async with anyio.create_task_group() as tg:

        async def patient() -> None:
            await other_handle.wait(poll_interval=0.01, timeout=5)

        tg.start_soon(patient)
        with pytest.raises(RunTimeoutError) as caught:
            await run.wait(poll_interval=0.01, timeout=0.1)
        assert clock.monotonic() == pytest.approx(0.1)
        assert caught.value.run is run
        assert isinstance(caught.value, TimeoutError)
        emu.advance(2 * LONG)

    assert other_handle.status is RunStatus.SUCCEEDED


async def test_as_completed_yields_runs_in_completion_order(lume: AsyncLume, emu: Emulator) -> None:
    slow = await start(lume, "slow", duration=30_000)
    fast = await start(lume, "fast", duration=10_000)
    middle = await start(lume, "middle", duration=20_000)
    seen: list[AsyncRun] = []

    emu.advance(15_000)
    async for run in lume.runs.as_completed([slow, fast, middle], poll_interval=0.01, timeout=5):
        seen.append(run)
        emu.advance(10_000)

    assert seen == [fast, middle, slow]
    assert all(run.is_terminal for run in seen)


async def test_wait_all_returns_runs_in_input_order_and_reports_progress(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    runs = [
        await start(lume, "w1"),
        await start(lume, "w2", outcome="FAILED"),
        await start(lume, "w3"),
    ]
    progress: list[tuple[int, int, int]] = []

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_at, clock, emu, 2)
        done = await lume.runs.wait_all(
            runs, poll_interval=0.01, timeout=60, on_progress=lambda *args: progress.append(args)
        )

    assert done == runs
    assert [run.status for run in done] == [
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.SUCCEEDED,
    ]
    assert progress[-1] == (3, 3, 1)


async def test_wait_all_timeout_names_an_unfinished_run(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    short = await start(lume, "short", duration=10)
    stuck = await start(lume, "stuck")
    emu.advance(20)
    with pytest.raises(RunTimeoutError) as caught:
        await lume.runs.wait_all([short, stuck], poll_interval=0.01, timeout=0.2)
    assert caught.value.run is stuck
    assert short.is_terminal
    assert clock.monotonic() == pytest.approx(0.2)


async def test_a_run_that_disappears_fails_its_waiter(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    run = await start(lume, "vanishing")
    async with anyio.create_task_group() as tg:

        async def vanish() -> None:
            await clock.sleep(0.05)
            emu.reset()

        tg.start_soon(vanish)
        with pytest.raises(RunNotFoundError):
            await run.wait(poll_interval=0.01, timeout=2)


async def test_closing_the_client_ends_its_waits_with_an_error(
    emu: Emulator, clock: VirtualClock
) -> None:
    client = AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock)
    run = await start(client, "closing")
    async with anyio.create_task_group() as tg:

        async def close_soon() -> None:
            await clock.sleep(0.05)
            await client.aclose()

        tg.start_soon(close_soon)
        with pytest.raises(LumeError, match="closed"):
            await run.wait(poll_interval=0.01, timeout=2)


# -- folding and cost ---------------------------------------------------------------------------


async def test_three_hundred_concurrent_waiters_share_batch_gets_of_a_hundred(
    lume: AsyncLume, emu: Emulator, clock: VirtualClock
) -> None:
    # Sharing holds per hundred waiters (each in one batch get per sweep): three full batches a
    # sweep show it over the wire; the in-memory test below counts two thousand.
    paths = [f"synthetic://fold-{i}?duration={LONG}" for i in range(300)]
    outcomes = await lume.runs.create_many(
        [{"flow_version": "customer_cleaner:v1", "source_path": path} for path in paths],
        concurrency=64,
    )
    runs = [outcome.unwrap() for outcome in outcomes]
    waiting = lume._core.waiting
    batch_gets, sweeps = requests_to(emu, BATCH_GET), waiting.sweeps

    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(partial(run.wait, poll_interval=0.02, timeout=60))
        await eventually(clock, lambda: waiting.sweeps - sweeps >= 3, within=3)
        emu.advance(2 * LONG)

    assert all(run.is_terminal for run in runs)
    made = requests_to(emu, BATCH_GET) - batch_gets
    swept = waiting.sweeps - sweeps
    assert swept >= 4  # three sweeps of running runs, and the one that saw them end
    assert made == swept * 300 // 100
    assert requests_to(emu, GET_ONE) == 0


async def test_two_thousand_waiters_cost_one_request_per_hundred_runs_per_sweep(
    fake: FakeService, clock: VirtualClock
) -> None:
    # What is counted holds per hundred waiters (one batch get each per sweep), so two thousand
    # show it as well as ten thousand: twenty calls a sweep, every waiter in exactly one.
    cells = [fake.cell(i) for i in range(2_000)]
    async with anyio.create_task_group() as tg:
        for cell in cells:
            tg.start_soon(partial(fake.wait, cell, timeout=5, poll_interval=0.05))
        await eventually(clock, lambda: len(fake.calls) >= 20, within=3)
        for run_id in fake.status:
            fake.status[run_id] = "SUCCEEDED"

    assert all(cell.data.is_terminal for cell in cells)
    assert fake.waiting.sweeps == 2
    assert len(fake.calls) == 40
    assert all(len(call) == 100 for call in fake.calls)
    assert len({run_id for call in fake.calls[:20] for run_id in call}) == 2_000


async def test_the_interval_grows_by_half_while_nothing_changes_and_drops_back(
    fake: FakeService, clock: VirtualClock
) -> None:
    cell = fake.cell(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: fake.wait(cell, timeout=5, poll_interval=0.02))
        await eventually(clock, lambda: len(fake.calls) >= 8, within=3)
        fake.status[cell.data.id] = "RUNNING"
        calls = len(fake.calls)
        await eventually(clock, lambda: len(fake.calls) >= calls + 2, within=3)
        fake.status[cell.data.id] = "SUCCEEDED"

    expected = [min(0.02 * 1.5**k, 0.2) for k in range(8)]
    assert fake.intervals[:8] == pytest.approx(expected)
    assert fake.intervals[calls + 1] == pytest.approx(0.02)  # after the sweep that saw it move
    gaps = [later - earlier for earlier, later in zip(fake.times, fake.times[1:8], strict=False)]
    # Each pause is the interval of the sweep before it, shortened by at most the 10 % jitter.
    assert all(0.9 * i <= gap <= i for gap, i in zip(gaps, expected[1:], strict=False))


async def test_a_newcomer_is_looked_at_within_its_own_poll_interval(
    fake: FakeService, clock: VirtualClock
) -> None:
    stuck = fake.cell(1)
    done_already = fake.cell(2, status="SUCCEEDED")
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: fake.wait(stuck, timeout=None, poll_interval=5))
        await clock.sleep(0.05)  # the first sweep happened; the next is 5 s away
        assert len(fake.calls) == 1
        began = clock.monotonic()
        await fake.wait(done_already, timeout=2, poll_interval=0.02)
        assert clock.monotonic() - began == pytest.approx(0.02)  # not the 5 s it had planned
        tg.cancel_scope.cancel()
    assert fake.calls[1] == [stuck.data.id, done_already.data.id]  # one request for both


async def test_retry_after_holds_the_next_sweep_back(fake: FakeService) -> None:
    cell = fake.cell(1)
    fake.errors.append(
        RateLimitError("slow down", status_code=429, code="rate_limited", retry_after=0.15)
    )
    fake.status[cell.data.id] = "SUCCEEDED"
    await fake.wait(cell, timeout=3, poll_interval=0.01)
    assert len(fake.times) == 2
    assert 0.15 <= fake.times[1] - fake.times[0] < 0.16  # not sooner than asked, nor much later


async def test_a_retry_after_over_the_longest_pause_holds_the_next_sweep_back_that_long(
    fake: FakeService,
) -> None:
    cell = fake.cell(1)
    fake.errors.append(
        RateLimitError("slow down", status_code=429, code="rate_limited", retry_after=86400)
    )
    fake.status[cell.data.id] = "SUCCEEDED"
    await fake.wait(cell, timeout=3, poll_interval=0.01)
    assert len(fake.times) == 2
    assert 0.2 <= fake.times[1] - fake.times[0] < 0.21  # max_interval, not a day


@pytest.mark.parametrize("failing", [True, False], ids=["sweeps failing", "sweeps answered"])
async def test_a_wait_that_times_out_says_when_its_last_status_request_failed(
    fake: FakeService, failing: bool
) -> None:
    cell = fake.cell(1)
    if failing:  # an outage: every sweep is refused until the deadline
        fake.errors.extend(
            RateLimitError("slow down", status_code=429, code="rate_limited") for _ in range(50)
        )
    with pytest.raises(RunTimeoutError) as caught:
        await fake.wait(cell, timeout=1, poll_interval=0.01)
    notes = getattr(caught.value, "__notes__", [])
    assert bool(notes) is failing
    assert all("the last status request failed: RateLimitError" in note for note in notes)


async def test_waiting_ends_its_sweeper_when_nobody_waits(
    fake: FakeService, clock: VirtualClock
) -> None:
    cell = fake.cell(1, status="SUCCEEDED")
    await fake.wait(cell, timeout=2, poll_interval=0.01)
    task = fake.waiting._task
    assert task is not None
    await eventually(clock, task.done, within=1)


async def test_the_poller_sleeps_on_the_clock_it_was_given() -> None:
    """A frozen clock freezes the poller: the next sweep comes only when the clock is moved."""
    frozen = VirtualClock(autojump=False)
    fake = FakeService(frozen)
    cell = fake.cell(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: fake.wait(cell, timeout=None, poll_interval=1))
        await turns(50)
        assert fake.times == [0.0]
        frozen.advance(0.5)
        await turns(50)
        assert fake.times == [0.0]
        frozen.advance(0.5)
        await turns(50)
        assert fake.times == [0.0, 1.0]
        tg.cancel_scope.cancel()


async def turns(n: int) -> None:
    """Let the event loop run ``n`` times round (no time passes on any clock)."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- webhooks -----------------------------------------------------------------------------------


@asynccontextmanager
async def pushed(
    emu: Emulator, *, deliver: bool = True, safety_net: float = 30, clock: Clock | None = None
) -> AsyncIterator[AsyncLume]:
    """A client whose waits hear completion events from a receiver served on loopback.

    With ``deliver=False`` the webhook is registered at an address nobody listens on, so every
    delivery is lost and only the safety-net polling can end a wait.
    """
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    receiver = WebhookReceiver(secret)
    async with receiver.serve() as url, aiohttp.ClientSession() as http:
        target = url if deliver else "http://127.0.0.1:9/lost"
        async with http.post(
            f"{emu.url}/v1/webhooks",
            json={"url": target, "secret": secret},
            headers={"lume-api-key": emu.api_key},
        ) as response:
            assert response.status == 201, await response.text()
        async with AsyncLume(
            api_key=emu.api_key, base_url=emu.url, webhooks=receiver, clock=clock
        ) as lume:
            lume._core.waiting.safety_net_interval = safety_net
            yield lume


# The emulator delivers webhooks in real time, so these two tests keep the client on real time
# too; a poll interval of 30 s means a wait can only end that fast by its completion event.


async def test_with_a_receiver_each_wait_ends_on_its_completion_event() -> None:
    async with Emulator(time_scale=100) as emu, pushed(emu) as lume:
        runs = [await start(lume, f"push-{i}", duration=20 + i * 5) for i in range(8)]
        finished = [run async for run in lume.runs.as_completed(runs, poll_interval=30)]

        assert sorted(run.id for run in finished) == sorted(run.id for run in runs)
        assert all(run.metadata is not None for run in finished)
        assert lume._core.waiting.sweeps == 1  # the sweep every new sweeper starts with
        assert requests_to(emu, GET_ONE) == 0


async def test_an_event_that_arrives_before_the_wait_still_ends_it_at_once() -> None:
    async with Emulator(time_scale=100) as emu, pushed(emu) as lume:
        stuck = await start(lume, "stuck")
        quick = await start(lume, "quick", duration=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: stuck.wait(poll_interval=30, timeout=None))
            delivered = emu.stats
            while delivered()["webhook_deliveries"]["succeeded"] < 1:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            await quick.wait(poll_interval=30)
            assert lume._core.waiting.sweeps == 1  # fetched on its own, not by a full sweep
            tg.cancel_scope.cancel()
        assert quick.status is RunStatus.SUCCEEDED


async def test_lost_deliveries_are_caught_by_slow_safety_net_polling(clock: VirtualClock) -> None:
    async with Emulator(time_scale=100) as emu:
        async with pushed(emu, deliver=False, safety_net=0.3, clock=clock) as lume:
            run = await start(lume, "lost")
            began = clock.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(finish_at, clock, emu, began + 0.5)
                await run.wait(poll_interval=0.01, timeout=3)

        assert run.status is RunStatus.SUCCEEDED
        # Sweeps at 0, ~0.3 and ~0.6 virtual seconds: the third sees the run ended at 0.5.
        assert 0.5 <= clock.monotonic() - began <= 0.6
        # Polling every 0.01 s would have made ~50 requests; the safety net made three.
        assert requests_to(emu, BATCH_GET) == 3
