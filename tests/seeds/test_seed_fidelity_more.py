"""More of the seeds' words, written as a user of this SDK would write them.

Seed 000 names the status of a run that "failed to process some records" ``INCOMPLETE``; the
SDK reads it as PARTIAL_FAILED, and ``RunStatus.INCOMPLETE`` is that same status. Seed 003's
batch runs are requests built like ``lume.run(flow_version, source_path)``: the source path
may follow the flow version without its keyword.
"""

from __future__ import annotations

import uuid

import pytest

import lume_sync
from lume_async import AsyncLume, RunRequest, RunStatus
from lume_sync import Lume

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"


def fresh(name: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"rows": 10, "duration": 1, **query}.items())
    return f"synthetic://fidelity-{name}-{uuid.uuid4().hex}?{params}"


# -- Seed 000: "INCOMPLETE: The run failed to process some records" -------------------------------


def test_incomplete_is_the_partial_failed_status() -> None:
    assert RunStatus.INCOMPLETE is RunStatus.PARTIAL_FAILED
    assert lume_sync.RunStatus.INCOMPLETE is RunStatus.PARTIAL_FAILED
    assert RunStatus.INCOMPLETE.is_terminal
    assert len(list(RunStatus)) == 11  # an alias, not a twelfth status


def test_a_run_that_rejected_some_rows_is_incomplete(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("incomplete", reject_rate=0.5)).wait(poll_interval=5)
    # Final statuses include: SUCCEEDED, FAILED, CRASHED, INCOMPLETE
    assert run.status == lume_sync.RunStatus.INCOMPLETE
    assert run.status in (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.INCOMPLETE)
    listed = [r.id for r in lume.runs.list(status=lume_sync.RunStatus.INCOMPLETE)]
    assert run.id in listed


async def test_a_run_that_rejected_some_rows_is_incomplete_async(alume: AsyncLume) -> None:
    run = await (await alume.run(FLOW, fresh("incomplete", reject_rate=0.5))).wait()
    assert run.status == RunStatus.INCOMPLETE
    assert [r.id async for r in alume.runs.list(status=RunStatus.INCOMPLETE)] == [run.id]


# -- Seed 003, Batch Run Multiple Flows -----------------------------------------------------------


def test_a_run_request_takes_its_source_path_after_the_flow_version(lume: Lume) -> None:
    paths = [fresh(f"batch-{n}") for n in (1, 2, 3)]
    requests = [
        lume_sync.RunRequest(FLOW, path, label=f"Batch Job {n}") for n, path in enumerate(paths, 1)
    ]
    assert requests[0] == RunRequest(FLOW, source_path=paths[0], label="Batch Job 1")
    outcomes = lume.runs.create_many(requests, concurrency=3)
    assert [o.unwrap().source_path for o in outcomes] == paths
    assert [o.unwrap().label for o in outcomes] == ["Batch Job 1", "Batch Job 2", "Batch Job 3"]


async def test_a_run_request_takes_its_source_path_after_the_flow_version_async(
    alume: AsyncLume,
) -> None:
    path = fresh("batch-async")
    (outcome,) = await alume.runs.create_many([RunRequest(FLOW, path, label="Batch Job 1")])
    assert outcome.unwrap().source_path == path


def test_a_run_request_still_takes_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RunRequest(FLOW, "s3://bucket/batch_001", source_data=[{"name": "a"}])
    with pytest.raises(TypeError, match="source_path"):
        RunRequest(FLOW, [{"name": "a"}])  # type: ignore[arg-type]
