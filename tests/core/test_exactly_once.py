"""Exactly once across the caller's own retries and restarts, against the emulator.

Re-sending the same ``RunRequest`` objects, or the same job with the same
``idempotency_namespace``, never makes a second run; a source still in flight comes back as that
run, marked ``reused``; a source already processed is ``DuplicateRunError`` naming its run.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from lume_async import (
    AsyncLume,
    BatchOutcome,
    DuplicateRunError,
    RunRequest,
    RunStatus,
)
from lume_async.testing import Emulator, FaultProfile

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
NS = "nightly-2026-11-28"


def inline(i: int) -> RunRequest:
    return RunRequest(FLOW, source_data=[{"name": f"n{i}", "age": i}], label=f"item-{i}")


def by_path(i: int) -> RunRequest:
    return RunRequest(FLOW, source_path=f"synthetic://once-{i:03d}?rows=3", label=f"item-{i}")


async def runs_per_label(lume: AsyncLume) -> Counter[str | None]:
    return Counter([run.label async for run in lume.runs.list(page_size=100)])


# --- keys on outcomes -----------------------------------------------------------------------------


async def test_every_create_many_outcome_carries_the_key_its_item_was_sent_with(
    lume: AsyncLume,
) -> None:
    first = await lume.runs.create_many([by_path(0)])
    await first[0].unwrap().wait(poll_interval=0.01)
    requests: list[Any] = [by_path(1), by_path(0), {"flow_version": "nope"}]
    outcomes = await lume.runs.create_many(requests)
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[0].idempotency_key == requests[0].idempotency_key
    assert isinstance(outcomes[1].error, DuplicateRunError)  # the same path, another request
    assert outcomes[1].idempotency_key == requests[1].idempotency_key
    assert outcomes[1].idempotency_key != first[0].idempotency_key
    assert isinstance(outcomes[2].error, ValueError)
    assert outcomes[2].idempotency_key is None  # not a request: nothing was sent


async def test_the_same_request_object_sent_again_gets_the_first_answer(
    emu: Emulator, lume: AsyncLume
) -> None:
    request = by_path(2)
    [first] = await lume.runs.create_many([request])
    emu.advance(60)
    [again] = await lume.runs.create_many([request])
    assert again.unwrap().id == first.unwrap().id
    assert emu.stats()["idempotent_replays"] == 1


async def test_items_given_as_mappings_get_keys_too(lume: AsyncLume) -> None:
    outcomes = await lume.runs.create_many(
        [{"flow_version": FLOW, "source_path": "s3://m/1", "idempotency_key": "given-1"}],
        idempotency_namespace=NS,
    )
    assert outcomes[0].ok and outcomes[0].idempotency_key == "given-1"  # a given key wins


# --- the caller's own retries ---------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["both", "after"])
@pytest.mark.parametrize("make", [inline, by_path], ids=["inline-rows", "source-path"])
@pytest.mark.parametrize("concurrency", [60, 8], ids=["alone", "batched"])
async def test_resubmitting_the_failed_items_of_create_many_makes_no_second_run(
    emu: Emulator, phase: str, make: Any, concurrency: int
) -> None:
    n = 60
    requests = [make(i) for i in range(n)]
    emu.set_faults(
        FaultProfile(rate=0.4, kinds=("500", "503", "429", "reset"), phase=phase, seed=11)
    )
    failed_once = 0
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, max_retries=0) as lume:
        pending = requests
        for _ in range(60):
            outcomes = await lume.runs.create_many(pending, concurrency=concurrency)
            assert [o.idempotency_key for o in outcomes] == [r.idempotency_key for r in pending]
            failed_once += sum(not o.ok for o in outcomes) if pending is requests else 0
            assert not any(isinstance(o.error, DuplicateRunError) for o in outcomes)
            pending = [r for r, o in zip(pending, outcomes, strict=True) if not o.ok]
            if not pending:
                break
    emu.set_faults(None)
    assert pending == []
    # The trouble was real (the faults are drawn from a seeded sequence, request by request:
    # eight batches of eight meet at least one).
    assert failed_once > (n // 5 if concurrency >= n else 0)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as oracle:
        per_label = await runs_per_label(oracle)
    assert per_label == Counter({f"item-{i}": 1 for i in range(n)})
    assert emu.stats()["runs_created"] == n


# --- restarts -------------------------------------------------------------------------------------


async def test_a_job_run_again_with_the_same_namespace_creates_nothing_new(
    emu: Emulator,
) -> None:
    async def job() -> list[BatchOutcome[Any]]:
        # A restart builds its requests and its client anew: only the namespace is kept.
        requests = [inline(i) for i in range(10)] + [by_path(i) for i in range(10)]
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
            return await lume.runs.create_many(requests, idempotency_namespace=NS)

    first = await job()
    emu.advance(60)  # every run has finished meanwhile
    again = await job()
    assert all(o.ok for o in first + again)
    assert [o.unwrap().id for o in again] == [o.unwrap().id for o in first]
    assert [o.idempotency_key for o in again] == [o.idempotency_key for o in first]
    stats = emu.stats()
    assert stats["runs_created"] == 20
    assert stats["idempotent_replays"] == 20
    assert not any(o.unwrap().reused for o in again)


async def test_a_job_run_again_under_another_namespace_finds_processed_paths_as_duplicates(
    emu: Emulator, lume: AsyncLume
) -> None:
    paths = {"ok": "synthetic://d-ok?rows=4", "partial": "synthetic://d-part?reject_rate=0.5"}
    first = {k: await lume.run(FLOW, p, idempotency_namespace="day-1") for k, p in paths.items()}
    emu.advance(60)
    for kind, path in paths.items():
        with pytest.raises(DuplicateRunError) as caught:
            await lume.run(FLOW, path, idempotency_namespace="day-2")
        assert caught.value.existing_run_id == first[kind].id
        done = await lume.runs.get(first[kind].id)
        assert done.status is (RunStatus.SUCCEEDED if kind == "ok" else RunStatus.PARTIAL_FAILED)


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
async def test_a_source_whose_run_wrote_nothing_runs_again(
    emu: Emulator, lume: AsyncLume, outcome: str
) -> None:
    path = f"synthetic://wrote-nothing?outcome={outcome}"
    first = await lume.run(FLOW, path)
    emu.advance(60)
    second = await lume.run(FLOW, path)
    assert second.id != first.id and not second.reused


async def test_run_and_process_with_a_namespace_find_the_run_of_the_first_call(
    emu: Emulator, lume: AsyncLume
) -> None:
    rows = [{"name": "Ada", "email": "ada@example.com", "age": 36}]
    first = await lume.process(FLOW, source_data=rows, idempotency_namespace=NS, poll_interval=0.01)
    again = await lume.process(FLOW, source_data=rows, idempotency_namespace=NS, poll_interval=0.01)
    run = await lume.run(FLOW, source_data=rows, idempotency_namespace=NS)
    assert again.run.id == first.run.id == run.id
    assert again.rows == first.rows
    assert emu.stats()["runs_created"] == 1


async def test_a_key_and_a_namespace_together_are_refused_before_any_request(
    emu: Emulator, lume: AsyncLume
) -> None:
    with pytest.raises(ValueError, match="idempotency_key or idempotency_namespace"):
        await lume.run(FLOW, "s3://b/1", idempotency_key="k", idempotency_namespace=NS)
    assert emu.stats()["requests"] == {}


# --- a source still in flight ---------------------------------------------------------------------


async def test_a_create_for_a_source_in_flight_returns_that_run_marked_reused(
    emu: Emulator, lume: AsyncLume
) -> None:
    first = await lume.run(FLOW, "synthetic://busy?duration=600")
    again = await lume.run(FLOW, "synthetic://busy?duration=600")
    assert again.id == first.id
    assert (first.reused, again.reused) == (False, True)
    assert emu.stats()["runs_created"] == 1


async def test_a_replayed_answer_says_reused_as_the_first_answer_did(lume: AsyncLume) -> None:
    await lume.run(FLOW, "synthetic://busy2?duration=600")
    joined = await lume.run(FLOW, "synthetic://busy2?duration=600", idempotency_key="join-1")
    replayed = await lume.run(FLOW, "synthetic://busy2?duration=600", idempotency_key="join-1")
    assert joined.reused and replayed.reused


async def test_a_reused_run_logs_the_label_and_tags_the_request_could_not_apply(
    lume: AsyncLume, caplog: pytest.LogCaptureFixture
) -> None:
    first = await lume.run(FLOW, "synthetic://busy3?duration=600", label="a", tags=["x"])
    with caplog.at_level(logging.INFO, logger="lume_async.runs"):
        again = await lume.run(FLOW, "synthetic://busy3?duration=600", label="b", tags=["y"])
    assert again.reused and (again.label, again.tags) == ("a", ("x",))
    [record] = [r for r in caplog.records if r.name == "lume_async.runs"]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert first.id in message
    assert "not applied" in message and "label='b'" in message and "tags=['y']" in message


async def test_a_reused_run_asked_for_nothing_different_logs_no_difference(
    lume: AsyncLume, caplog: pytest.LogCaptureFixture
) -> None:
    await lume.run(FLOW, "synthetic://busy4?duration=600", label="a")
    with caplog.at_level(logging.INFO, logger="lume_async.runs"):
        await lume.run(FLOW, "synthetic://busy4?duration=600", label="a")
    [record] = [r for r in caplog.records if r.name == "lume_async.runs"]
    assert "in flight" in record.getMessage()
    assert "not applied" not in record.getMessage()


async def test_a_new_run_logs_nothing(lume: AsyncLume, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lume_async.runs"):
        run = await lume.run(FLOW, "synthetic://fresh")
    assert not run.reused
    assert [r for r in caplog.records if r.name == "lume_async.runs"] == []
