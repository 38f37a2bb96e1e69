"""Calls given a time limit end within it, however the service answers.

Each limit is measured on the client's clock (virtual here), and the margin a wait may take past
its deadline for its last look at its runs is the documented one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from lume_async import AsyncLume, AsyncRun, RunTimeoutError
from lume_async._waiting import LAST_LOOK
from lume_async.testing import Emulator, FaultProfile, VirtualClock
from lume_sync import Lume

from ..core._scripted import RUN_ID, Answer, ScriptedServer, Seen, run_json

pytestmark = pytest.mark.anyio

# An outage that asks for patience: every answer is a 503 asking to come back in 20 s.
_BUSY = Answer(503, {"error": {"code": "unavailable", "message": "busy"}}, {"Retry-After": "20"})


def _running_then_busy(clock: VirtualClock, until: float) -> Callable[[Seen], Answer]:
    """Answers: the run is RUNNING until ``until`` (virtual seconds), then an outage."""

    def respond(seen: Seen) -> Answer:
        if clock.monotonic() >= until:
            return _BUSY
        if seen.path.startswith("/v1/runs/batch-get"):
            return Answer(200, {"items": [run_json(status="RUNNING")], "missing": []})
        return Answer(200, run_json(status="RUNNING"))

    return respond


async def test_waiting_by_id_counts_the_first_read_against_the_timeout(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.respond = lambda _: _BUSY
    async with AsyncLume(api_key="lume_test_key", base_url=scripted.url, clock=clock) as lume:
        with anyio.fail_after(10), pytest.raises(RunTimeoutError) as caught:
            await lume.runs.wait(RUN_ID, timeout=10, poll_interval=1)
    assert clock.monotonic() <= 10 + LAST_LOOK
    assert RUN_ID in str(caught.value)
    assert "10 s" in str(caught.value)


async def test_waiting_by_id_with_time_left_says_the_whole_timeout(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    # The first read takes 2 retries (about 40 s of Retry-After) of a 100 s timeout.
    scripted.then(_BUSY, _BUSY)
    scripted.respond = _running_then_busy(clock, until=1e9)
    async with AsyncLume(api_key="lume_test_key", base_url=scripted.url, clock=clock) as lume:
        with anyio.fail_after(10), pytest.raises(RunTimeoutError) as caught:
            await lume.runs.wait(RUN_ID, timeout=100, poll_interval=5)
    assert 100 <= clock.monotonic() <= 100 + LAST_LOOK
    assert str(caught.value) == f"run {RUN_ID} is still RUNNING after 100 s"
    assert caught.value.run is not None and caught.value.run.id == RUN_ID


async def test_a_zero_timeout_by_id_still_takes_one_look(vemu: Emulator, vlume: AsyncLume) -> None:
    run = await vlume.run("customer_cleaner:v1", "s3://bucket/batch_001")
    with anyio.fail_after(10):
        await run.wait(poll_interval=1)
        same = await vlume.runs.wait(run.id, timeout=0)
    assert same.is_terminal


async def _wait_alone(lume: AsyncLume, run: AsyncRun) -> None:
    await run.wait(timeout=30, poll_interval=10)


async def _wait_all(lume: AsyncLume, run: AsyncRun) -> None:
    await lume.runs.wait_all([run], timeout=30, poll_interval=10)


async def _as_completed(lume: AsyncLume, run: AsyncRun) -> None:
    async for _ in lume.runs.as_completed([run], timeout=30, poll_interval=10):
        pass


@pytest.mark.parametrize("call", [_wait_alone, _wait_all, _as_completed])
async def test_the_last_look_at_the_deadline_is_bounded_on_the_clients_clock(
    scripted: ScriptedServer,
    clock: VirtualClock,
    call: Callable[[AsyncLume, AsyncRun], Awaitable[None]],
) -> None:
    # Polls see the run RUNNING; from 25 s on the service asks to come back in 20 s, so the
    # look at the deadline (30 s) would retry well past it.
    scripted.respond = _running_then_busy(clock, until=25)
    async with AsyncLume(api_key="lume_test_key", base_url=scripted.url, clock=clock) as lume:
        run = await lume.runs.get(RUN_ID)
        with anyio.fail_after(10), pytest.raises(RunTimeoutError) as caught:
            await call(lume, run)
    assert clock.monotonic() <= 30 + LAST_LOOK
    assert "after 30 s" in str(caught.value)


def test_the_blocking_wait_by_id_ends_within_its_timeout_during_an_outage() -> None:
    clock = VirtualClock()
    busy = FaultProfile(rate=1.0, kinds=("503",), phase="before", retry_after=20)
    with Emulator(clock=clock) as emu:
        run_id = "run_01HY0000000000000000000000"
        emu.set_faults(busy)
        with Lume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume:
            started = clock.monotonic()
            with pytest.raises(RunTimeoutError):
                lume.runs.wait(run_id, timeout=10, poll_interval=1)
            assert clock.monotonic() - started <= 10 + LAST_LOOK
