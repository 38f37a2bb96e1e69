"""Fan-out edges: repeated handles, extreme Retry-After values and lazy inputs.

Waiting on the same handle twice ends when its run ends; a ``Retry-After`` too long to wait out
(over ``max_retry_after``, or too large for a float) is never retried early nor waited out by
the shared poller; an iterable handed to lume_sync's batch calls is read on the caller's thread,
so it may itself use lume_sync; a batch cancelled midway and sent again creates each run once.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from lume_async import (
    AsyncLume,
    AsyncRun,
    LumeError,
    RunRequest,
    RunStatus,
    ServerError,
)
from lume_async.testing import Emulator, VirtualClock
from lume_sync import Lume

from ..core._scripted import RUN_ID, Answer, ScriptedServer, run_json

FLOW = "customer_cleaner:v1"
# Real seconds a test may take before it is deemed stuck (everything else is virtual time).
STUCK = 20


async def _create(lume: AsyncLume, name: str, duration: float = 10) -> AsyncRun:
    return await lume.runs.create(FLOW, f"synthetic://{name}?rows=3&duration={duration}")


# -- waiting on repeated handles -------------------------------------------------------------


@pytest.mark.anyio
async def test_wait_all_with_the_same_handle_twice_returns_once_the_run_ends(
    vlume: AsyncLume,
) -> None:
    run = await _create(vlume, "twice")
    with anyio.fail_after(STUCK):
        done = await vlume.runs.wait_all([run, run], timeout=600)
    assert done == [run, run]
    assert run.status is RunStatus.SUCCEEDED


@pytest.mark.anyio
async def test_wait_all_with_two_handles_of_one_run_returns_both(vlume: AsyncLume) -> None:
    run = await _create(vlume, "two-handles")
    other = await vlume.runs.get(run.id)
    with anyio.fail_after(STUCK):
        done = await vlume.runs.wait_all([run, other], timeout=600)
    assert done == [run, other]
    assert run.status is other.status is RunStatus.SUCCEEDED


@pytest.mark.anyio
async def test_as_completed_of_nothing_yields_nothing_and_sends_nothing(
    vlume: AsyncLume, vemu: Emulator
) -> None:
    assert [run async for run in vlume.runs.as_completed([], timeout=0)] == []
    assert await vlume.runs.wait_all([], timeout=0) == []
    assert vemu.stats()["requests"] == {}


@pytest.mark.anyio
async def test_waiting_through_a_closed_client_fails_at_once(vemu: Emulator) -> None:
    clock = VirtualClock()
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock) as lume:
        run = await _create(lume, "closed", duration=3600)
    with anyio.fail_after(STUCK), pytest.raises(LumeError, match="closed"):
        await lume.runs.wait_all([run])


# -- Retry-After too long to wait out --------------------------------------------------------


@pytest.mark.anyio
async def test_a_retry_after_over_max_retry_after_does_not_stall_waiting(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        run = await lume.runs.get(RUN_ID)  # PENDING
        assert lume.retry.max_retry_after == 60
        # One refused sweep asking for a day; the run has ended meanwhile.
        scripted.then(
            Answer(503, {"detail": "busy", "code": "unavailable"}, {"Retry-After": "86400"})
        )
        scripted.default = Answer(200, {"items": [run_json(status="SUCCEEDED")], "missing": []})
        with anyio.fail_after(STUCK):
            await run.wait(timeout=600, poll_interval=1)
    assert run.status is RunStatus.SUCCEEDED


@pytest.mark.anyio
async def test_a_retry_after_too_large_for_a_float_is_not_retried_early(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    huge = "9" * 400  # valid delta-seconds, but past the largest float
    scripted.then(Answer(503, {"detail": "busy", "code": "unavailable"}, {"Retry-After": huge}))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 1
    assert "max_retry_after" in " ".join(caught.value.__notes__)


# -- cancelling a batch midway, then sending it again ----------------------------------------


@pytest.mark.anyio
async def test_a_batch_cancelled_midway_then_sent_again_creates_each_run_once(
    emu: Emulator,
) -> None:
    # Inline rows: no source_path, so only the idempotency keys keep a run from being made twice.
    requests = [
        RunRequest(FLOW, source_data=[{"customer_id": i, "email": f"c{i}@example.com"}])
        for i in range(300)
    ]
    halfway = anyio.Event()

    def progress(done: int, total: int, failed: int) -> None:
        if done >= 30:
            halfway.set()

    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        async with anyio.create_task_group() as tg:

            async def create() -> None:
                # 100 per batch-create, one at a time: the third is never sent.
                await lume.runs.create_many(requests, concurrency=1, on_progress=progress)

            tg.start_soon(create)
            with anyio.fail_after(STUCK):
                await halfway.wait()
            tg.cancel_scope.cancel()
        assert emu.stats()["runs_created"] < len(requests)

        outcomes = await lume.runs.create_many(requests, concurrency=7)

    assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes if not o.ok]
    assert len({outcome.unwrap().id for outcome in outcomes}) == len(requests)
    assert emu.stats()["runs_created"] == len(requests)


@pytest.mark.anyio
async def test_a_requests_iterable_that_fails_midway_sends_nothing(
    vlume: AsyncLume, vemu: Emulator
) -> None:
    def items() -> Iterator[RunRequest]:
        yield RunRequest(FLOW, source_path="s3://b/first")
        raise OSError("the source listing broke")

    with pytest.raises(OSError, match="source listing broke"):
        await vlume.runs.create_many(items())
    assert vemu.stats()["requests"] == {}


# -- lume_sync: lazy inputs of batch calls ---------------------------------------------------


def test_a_sync_listing_fed_lazily_to_get_many_and_cancel_many_works() -> None:
    with Emulator(time_scale=100) as emu, Lume(api_key=emu.api_key, base_url=emu.url) as lume:
        for i in range(3):
            lume.runs.create(FLOW, f"synthetic://lazy-{i}?rows=2&duration=3600", label="lazy")

        found = lume.runs.get_many(run.id for run in lume.runs.list(label="lazy"))
        cancelled = lume.runs.cancel_many(run.id for run in lume.runs.list(label="lazy"))

    assert [outcome.ok for outcome in found] == [True] * 3
    assert [outcome.unwrap().status for outcome in cancelled] == [RunStatus.CANCELED] * 3
