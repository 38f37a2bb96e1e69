"""Waiting on runs: one poller per client, batch-gets of 100, webhooks as the fast path.

The emulator tests run over real sockets; the few about timing and scale drive the shared poller
with an in-memory ``batch-get`` so they can count every request it makes.
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
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
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._waiting import Waiting
from lume_async.models import RunData
from lume_async.testing import Emulator
from lume_async.webhooks import WebhookReceiver

from ._scripted import run_json

pytestmark = pytest.mark.anyio

BATCH_GET = "POST /v1/runs/batch-get"
GET_ONE = "GET /v1/runs/{run_id}"
LONG = 1_000_000  # virtual seconds: a run that only ends when the test moves the clock


def requests_to(emu: Emulator, route: str) -> int:
    return sum(emu.stats()["requests"].get(route, {}).values())


async def start(lume: AsyncLume, name: str, *, duration: float = LONG, **query: Any) -> AsyncRun:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return await lume.run(
        "customer_cleaner:v1", f"synthetic://{name}?rows=5&duration={duration}{extra}"
    )


async def eventually(condition: Callable[[], bool], *, within: float) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110  (the poller's progress has no event to await)
            await anyio.sleep(0.005)


# -- an in-memory batch-get, for counting and timing the poller ---------------------------------


class FakeService:
    """Run statuses by id, answered the way ``batch-get`` answers; records every call."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.calls: list[list[str]] = []
        self.intervals: list[float] = []
        self.times: list[float] = []
        self.errors: deque[BaseException] = deque()
        self.waiting = Waiting(self.fetch, max_interval=0.2)

    async def fetch(self, ids: list[str]) -> dict[str, RunData]:
        self.calls.append(ids)
        self.times.append(time.monotonic())
        self.intervals.append(self.waiting.interval)
        if self.errors:
            raise self.errors.popleft()
        return {i: run_from_obj(run_json(i, self.status[i])) for i in ids if i in self.status}

    def cell(self, n: int, status: str = "PENDING") -> RunCell:
        """A run the service reports as ``status``, known to the waiter as PENDING."""
        run_id = f"run_{n:026d}"
        self.status[run_id] = status
        return RunCell(run_from_obj(run_json(run_id, "PENDING")))

    async def wait(self, cell: RunCell, *, timeout: float | None, poll_interval: float) -> None:
        await self.waiting.wait(cell, cell, timeout=timeout, poll_interval=poll_interval)


@pytest.fixture
def fake() -> FakeService:
    return FakeService()


# -- basics -------------------------------------------------------------------------------------


async def test_wait_returns_the_same_handle_once_terminal(lume: AsyncLume) -> None:
    run = await start(lume, "basic", duration=2)
    assert await run.wait(poll_interval=0.01, timeout=5) is run
    assert run.status is RunStatus.SUCCEEDED
    assert run.metadata is not None


async def test_a_completion_wakes_exactly_the_waiters_of_that_run(
    lume: AsyncLume, emu: Emulator
) -> None:
    a = await start(lume, "a", duration=1000)
    a_again = await lume.runs.get(a.id)
    b = await start(lume, "b")
    woken: list[str] = []

    async def waiter(name: str, run: AsyncRun) -> None:
        await run.wait(poll_interval=0.01, timeout=5)
        woken.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a1", a)
        tg.start_soon(waiter, "a2", a_again)
        tg.start_soon(waiter, "b", b)
        await anyio.sleep(0.05)
        emu.advance(2000)
        await eventually(lambda: len(woken) >= 2, within=2)
        await anyio.sleep(0.1)  # several more sweeps: B is still not finished
        assert sorted(woken) == ["a1", "a2"]
        assert not b.is_terminal
        tg.cancel_scope.cancel()

    assert a.is_terminal and a_again.is_terminal


async def test_each_waiter_has_its_own_deadline(lume: AsyncLume, emu: Emulator) -> None:
    run = await start(lume, "deadlines")
    other_handle = await lume.runs.get(run.id)

    async with anyio.create_task_group() as tg:

        async def patient() -> None:
            await other_handle.wait(poll_interval=0.01, timeout=5)

        tg.start_soon(patient)
        with pytest.raises(RunTimeoutError) as caught:
            await run.wait(poll_interval=0.01, timeout=0.1)
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
    lume: AsyncLume,
) -> None:
    runs = [
        await start(lume, "w1", duration=3),
        await start(lume, "w2", duration=1, outcome="FAILED"),
        await start(lume, "w3", duration=2),
    ]
    progress: list[tuple[int, int, int]] = []

    done = await lume.runs.wait_all(
        runs, poll_interval=0.01, timeout=5, on_progress=lambda *args: progress.append(args)
    )

    assert done == runs
    assert [run.status for run in done] == [
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.SUCCEEDED,
    ]
    assert progress[-1] == (3, 3, 1)


async def test_wait_all_timeout_names_an_unfinished_run(lume: AsyncLume) -> None:
    short = await start(lume, "short", duration=1)
    stuck = await start(lume, "stuck")
    with pytest.raises(RunTimeoutError) as caught:
        await lume.runs.wait_all([short, stuck], poll_interval=0.01, timeout=0.2)
    assert caught.value.run is stuck
    assert short.is_terminal


async def test_a_run_that_disappears_fails_its_waiter(lume: AsyncLume, emu: Emulator) -> None:
    run = await start(lume, "vanishing")
    async with anyio.create_task_group() as tg:

        async def vanish() -> None:
            await anyio.sleep(0.05)
            emu.reset()

        tg.start_soon(vanish)
        with pytest.raises(RunNotFoundError), anyio.fail_after(2):
            await run.wait(poll_interval=0.01)


async def test_closing_the_client_ends_its_waits_with_an_error(emu: Emulator) -> None:
    client = AsyncLume(api_key=emu.api_key, base_url=emu.url)
    run = await start(client, "closing")
    async with anyio.create_task_group() as tg:

        async def close_soon() -> None:
            await anyio.sleep(0.05)
            await client.aclose()

        tg.start_soon(close_soon)
        with pytest.raises(LumeError, match="closed"), anyio.fail_after(2):
            await run.wait(poll_interval=0.01)


# -- folding and cost ---------------------------------------------------------------------------


async def test_a_thousand_concurrent_waiters_share_batch_gets_of_a_hundred(
    lume: AsyncLume, emu: Emulator
) -> None:
    paths = [f"synthetic://fold-{i}?duration={LONG}" for i in range(1000)]
    outcomes = await lume.runs.create_many(
        [{"flow_version": "customer_cleaner:v1", "source_path": path} for path in paths],
        concurrency=64,
    )
    runs = [outcome.unwrap() for outcome in outcomes]
    waiting = lume._core.waiting
    batch_gets, sweeps = requests_to(emu, BATCH_GET), waiting.sweeps

    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(partial(run.wait, poll_interval=0.02, timeout=5))
        await eventually(lambda: waiting.sweeps - sweeps >= 3, within=3)
        emu.advance(2 * LONG)

    assert all(run.is_terminal for run in runs)
    made = requests_to(emu, BATCH_GET) - batch_gets
    swept = waiting.sweeps - sweeps
    assert swept >= 3  # the sweep that sees the completions may be one already under way
    assert made <= swept * math.ceil(1000 / 100)
    assert requests_to(emu, GET_ONE) == 0


async def test_ten_thousand_waiters_cost_one_request_per_hundred_runs_per_sweep(
    fake: FakeService,
) -> None:
    handles = [fake.cell(i) for i in range(10_000)]
    waiting = fake.waiting
    async with anyio.create_task_group() as tg:
        for handle in handles:
            tg.start_soon(partial(fake.wait, handle, timeout=5, poll_interval=0.05))
        await eventually(lambda: len(fake.calls) >= 100, within=3)
        for run_id in fake.status:
            fake.status[run_id] = "SUCCEEDED"

    assert all(handle.data.is_terminal for handle in handles)
    assert waiting.sweeps == 2
    assert len(fake.calls) == 200
    assert all(len(call) == 100 for call in fake.calls)
    assert len({run_id for call in fake.calls[:100] for run_id in call}) == 10_000


async def test_the_interval_grows_by_half_while_nothing_changes_and_drops_back(
    fake: FakeService,
) -> None:
    run = fake.cell(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: fake.wait(run, timeout=5, poll_interval=0.02))
        await eventually(lambda: len(fake.calls) >= 8, within=3)
        fake.status[run.data.id] = "RUNNING"
        calls = len(fake.calls)
        await eventually(lambda: len(fake.calls) >= calls + 2, within=3)
        fake.status[run.data.id] = "SUCCEEDED"

    expected = [min(0.02 * 1.5**k, 0.2) for k in range(8)]
    assert fake.intervals[:8] == pytest.approx(expected)
    assert fake.intervals[calls + 1] == pytest.approx(0.02)  # after the sweep that saw it move


async def test_a_newcomer_is_looked_at_within_its_own_poll_interval(fake: FakeService) -> None:
    stuck = fake.cell(1)
    done_already = fake.cell(2, status="SUCCEEDED")
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: fake.wait(stuck, timeout=None, poll_interval=5))
        await anyio.sleep(0.05)  # the first sweep happened; the next is 5 s away
        assert len(fake.calls) == 1
        began = time.monotonic()
        await fake.wait(done_already, timeout=2, poll_interval=0.02)
        assert time.monotonic() - began < 1  # not the 5 s the sweeper had planned
        tg.cancel_scope.cancel()
    assert fake.calls[1] == [stuck.data.id, done_already.data.id]  # one request for both


async def test_retry_after_holds_the_next_sweep_back(fake: FakeService) -> None:
    run = fake.cell(1)
    fake.errors.append(
        RateLimitError("slow down", status_code=429, code="rate_limited", retry_after=0.3)
    )
    fake.status[run.data.id] = "SUCCEEDED"
    await fake.wait(run, timeout=3, poll_interval=0.01)
    assert len(fake.times) == 2
    assert fake.times[1] - fake.times[0] >= 0.3


async def test_waiting_ends_its_sweeper_when_nobody_waits(fake: FakeService) -> None:
    run = fake.cell(1, status="SUCCEEDED")
    await fake.wait(run, timeout=2, poll_interval=0.01)
    task = fake.waiting._task
    assert task is not None
    await eventually(task.done, within=1)


# -- webhooks -----------------------------------------------------------------------------------


@asynccontextmanager
async def pushed(
    emu: Emulator, *, deliver: bool = True, safety_net: float = 30
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
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url, webhooks=receiver) as lume:
            lume._core.waiting.safety_net_interval = safety_net
            yield lume


async def test_a_webhook_ends_each_wait_within_100_ms_of_completion() -> None:
    async with Emulator(time_scale=1) as emu, pushed(emu) as lume:
        runs = [await start(lume, f"push-{i}", duration=0.2 + i * 0.05) for i in range(8)]
        latencies = []
        async for run in lume.runs.as_completed(runs, poll_interval=30, timeout=5):
            seen = datetime.now(UTC)
            assert run.metadata is not None and run.metadata.pipeline is not None
            completed = run.metadata.pipeline.completed_at
            assert completed is not None
            latencies.append((seen - completed).total_seconds())

        assert max(latencies) < 0.1, latencies
        assert lume._core.waiting.sweeps == 1  # the sweep every new sweeper starts with
        assert requests_to(emu, GET_ONE) == 0


async def test_an_event_that_arrives_before_the_wait_still_ends_it_at_once() -> None:
    async with Emulator(time_scale=100) as emu, pushed(emu) as lume:
        stuck = await start(lume, "stuck")
        quick = await start(lume, "quick", duration=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: stuck.wait(poll_interval=30, timeout=None))
            await eventually(lambda: emu.stats()["webhook_deliveries"]["succeeded"] >= 1, within=2)
            with anyio.fail_after(1):
                await quick.wait(poll_interval=30)
            tg.cancel_scope.cancel()
        assert quick.status is RunStatus.SUCCEEDED


async def test_lost_deliveries_are_caught_by_slow_safety_net_polling() -> None:
    async with Emulator(time_scale=100) as emu, pushed(emu, deliver=False, safety_net=0.3) as lume:
        run = await start(lume, "lost", duration=10)
        began = time.monotonic()
        await run.wait(poll_interval=0.01, timeout=3)
        waited = time.monotonic() - began

        assert run.status is RunStatus.SUCCEEDED
        assert 0.2 < waited < 1.0
        # Polling every 0.01 s would have made ~30 requests; the safety net made two or three.
        assert requests_to(emu, BATCH_GET) <= 3
