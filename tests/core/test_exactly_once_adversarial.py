"""Exactly once where the answer of a create is lost in ways the service did not choose.

Each test makes the runs exist on the service and the client hear less than all of it; every
item must still come back as the one run its key made, never as a failure, never twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lume_async import AsyncLume, RunRequest
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
# A run's answer is about 700 bytes: one fits, a batch of twenty does not.
SMALL_ANSWERS = 8 * 1024


@pytest.fixture
async def small_reader(vemu: Emulator, clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    """A client of ``vemu`` that reads no answer over ``SMALL_ANSWERS`` bytes."""
    async with AsyncLume(
        api_key=vemu.api_key,
        base_url=vemu.url,
        clock=clock,
        max_response_bytes=SMALL_ANSWERS,
    ) as client:
        yield client


async def test_a_batch_answer_too_large_to_read_still_gives_each_item_its_one_run(
    vemu: Emulator, small_reader: AsyncLume
) -> None:
    # Forty items at concurrency 2 go in two batches of twenty: each batch is done, but its
    # answer is over max_response_bytes. Each item's key finds its run alone.
    requests = [RunRequest(FLOW, source_data=[{"name": f"n{i}"}]) for i in range(40)]
    outcomes = await small_reader.runs.create_many(requests, concurrency=2)
    stats = vemu.stats()
    assert stats["requests"]["POST /v1/runs/batch-create"] == {"200": 2}
    assert [outcome.error for outcome in outcomes if not outcome.ok] == []
    assert len({outcome.unwrap().id for outcome in outcomes}) == 40
    assert stats["runs_created"] == 40
    assert stats["idempotent_replays"] == 40


@pytest.mark.parametrize("concurrency", [4, 64], ids=["batched", "alone"])
async def test_a_progress_callback_that_exits_ends_create_many_with_its_own_exception(
    vlume: AsyncLume, concurrency: int
) -> None:
    # sys.exit() in a callback (or Ctrl-C landing in it) is what the caller catches, as an
    # Exception from the callback is: never a group of it.
    def stop(done: int, total: int, failed: int) -> None:
        if done == 3:
            raise SystemExit("enough")

    requests = [RunRequest(FLOW, source_path=f"s3://bucket/exit-{i}") for i in range(20)]
    with pytest.raises(SystemExit, match="enough"):
        await vlume.runs.create_many(requests, concurrency=concurrency, on_progress=stop)


async def test_a_progress_callback_that_exits_ends_cancel_many_with_its_own_exception(
    vlume: AsyncLume,
) -> None:
    created = await vlume.runs.create_many(
        [RunRequest(FLOW, source_path=f"s3://bucket/stop-{i}") for i in range(6)]
    )

    def stop(done: int, total: int, failed: int) -> None:
        raise SystemExit("enough")

    with pytest.raises(SystemExit, match="enough"):
        await vlume.runs.cancel_many(
            [outcome.unwrap().id for outcome in created], concurrency=2, on_progress=stop
        )
