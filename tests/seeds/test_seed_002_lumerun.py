"""Seed 002, the ``LumeRun`` class: its attributes, ``wait()``, ``refresh()``, the metadata schema.

Every snippet of the seed runs as written through the blocking client (``lume``), and awaited
through the async one (``alume``). Lines between ``# seed:`` and ``# end of seed`` are the seed's
own; what each test adds around them is said at its top.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from lume_async import AsyncLume, RunStatus
from lume_async.testing import Emulator
from lume_sync import Lume

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
TERMINAL = ("SUCCEEDED", "FAILED", "PARTIAL_FAILED", "CRASHED")
PARTIAL = "synthetic://seed-002-{}?rows=200&reject_rate=0.1&duration=30"


# -- Methods: wait() -----------------------------------------------------------------------------


def test_wait_snippet(lume: Lume, capsys: pytest.CaptureFixture[str]) -> None:
    # Added: the run the snippet waits on, which the seed makes with lume.run() elsewhere.
    run = lume.run(FLOW, "synthetic://seed-002-wait?rows=50&duration=40")
    # seed:
    run.wait(timeout=600, poll_interval=10)
    print(f"Run finished with status: {run.status}")
    # end of seed
    assert capsys.readouterr().out == "Run finished with status: SUCCEEDED\n"


async def test_wait_snippet_async(alume: AsyncLume, capsys: pytest.CaptureFixture[str]) -> None:
    # Added: the run (as above). Adapted: wait() is awaited.
    run = await alume.run(FLOW, "synthetic://seed-002-wait?rows=50&duration=40")
    # seed:
    await run.wait(timeout=600, poll_interval=10)
    print(f"Run finished with status: {run.status}")
    # end of seed
    assert capsys.readouterr().out == "Run finished with status: SUCCEEDED\n"


def test_wait_reaches_every_terminal_status_the_seed_lists(lume: Lume) -> None:
    # "polls the run's status until it reaches a terminal state (SUCCEEDED, FAILED,
    # PARTIAL_FAILED, or CRASHED)"
    paths = {
        "SUCCEEDED": "synthetic://seed-002-ok?rows=5",
        "PARTIAL_FAILED": "synthetic://seed-002-partial?rows=10&reject_rate=0.5",
        "FAILED": "synthetic://seed-002-failed?rows=5&outcome=FAILED",
        "CRASHED": "synthetic://seed-002-crashed?rows=5&outcome=CRASHED",
    }
    for status, path in paths.items():
        run = lume.run(FLOW, path)
        run.wait(timeout=600, poll_interval=10)
        assert run.status == status


def test_wait_raises_a_timeout_error_when_the_timeout_is_reached(lume: Lume) -> None:
    # "timeout (int, optional): ... If the timeout is reached, a TimeoutError is raised.
    # Defaults to 3600 (1 hour)."
    run = lume.run(FLOW, "synthetic://seed-002-slow?rows=5&duration=100000")
    with pytest.raises(TimeoutError):
        run.wait(timeout=60, poll_interval=10)
    assert not run.is_terminal


# -- Methods: refresh() --------------------------------------------------------------------------


def test_refresh_snippet(lume: Lume, emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    # Added: a run that is mid-way through its transform when refreshed.
    run = lume.run(FLOW, "synthetic://seed-002-refresh?rows=5&duration=100000")
    emu.advance(50_000)
    # seed:
    # Check status now
    run.refresh()
    print(f"Current status is: {run.status}")
    # end of seed
    assert capsys.readouterr().out == "Current status is: TRANSFORMING\n"
    # "This is equivalent to calling run = lume.run_status(run.id)."
    assert lume.run_status(run.id).status == run.status


async def test_refresh_snippet_async(
    alume: AsyncLume, aemu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Added: the run (as above). Adapted: refresh() is awaited.
    run = await alume.run(FLOW, "synthetic://seed-002-refresh?rows=5&duration=100000")
    aemu.advance(50_000)
    # seed:
    # Check status now
    await run.refresh()
    print(f"Current status is: {run.status}")
    # end of seed
    assert capsys.readouterr().out == "Current status is: TRANSFORMING\n"
    assert (await alume.run_status(run.id)).status == run.status


# -- Attributes ----------------------------------------------------------------------------------


def test_attributes_have_the_documented_types(lume: Lume) -> None:
    run = lume.run(FLOW, "synthetic://seed-002-attributes?rows=5")
    assert isinstance(run.id, str) and run.id.startswith("run_")
    assert isinstance(run.status, str)
    run.wait(timeout=600, poll_interval=10)
    assert isinstance(run.metadata, Mapping)  # "Type: dict"
    assert lume.run_status(run.id).id == run.id  # returned by lume.run() and lume.run_status()


# -- Metadata Schema -----------------------------------------------------------------------------


def check_schema(metadata: Any, *, run_id: str, status: str, flow: str, path: str) -> None:
    """Every field of the seed's metadata schema, read as the seed writes it: by key."""
    assert list(metadata) == ["run", "pipeline", "results", "validation", "errors"]

    run = metadata["run"]
    assert run["run_id"] == run_id
    assert run["flow_version"] == flow
    assert run["source_path"] == path
    assert run["status"] == status

    pipeline = metadata["pipeline"]
    assert pipeline["completed_at"] >= pipeline["created_at"]
    assert pipeline["duration_seconds"] > 0
    stages = pipeline["stages"]
    parts = [stages[k] for k in ("sync_source_seconds", "transform_seconds", "sync_target_seconds")]
    assert all(part >= 0 for part in parts)
    assert sum(parts) <= pipeline["duration_seconds"] + 0.01

    results = metadata["results"]
    assert results["mapped_rows"] + results["rejected_rows"] == results["input_rows"]
    locations = results["target_locations"]
    assert isinstance(locations["mapped"], str) and isinstance(locations["rejects"], str)

    validation = metadata["validation"]
    assert validation["tests_failed"] <= validation["tests_executed"]
    assert validation["error_rate"] == validation["tests_failed"] / validation["tests_executed"]
    for top in validation["top_errors"]:
        assert isinstance(top["error_code"], str) and isinstance(top["field"], str)
        assert top["count"] > 0
    assert sum(top["count"] for top in validation["top_errors"]) == results["rejected_rows"]

    # "This array is empty for SUCCEEDED or PARTIAL_FAILED runs."
    assert metadata["errors"] == ()


def test_metadata_schema_reads_by_key(lume: Lume) -> None:
    path = PARTIAL.format("sync")
    run = lume.run(FLOW, path).wait(timeout=600, poll_interval=10)
    assert run.status == "PARTIAL_FAILED"
    check_schema(run.metadata, run_id=run.id, status="PARTIAL_FAILED", flow=FLOW, path=path)


async def test_metadata_schema_reads_by_key_async(alume: AsyncLume) -> None:
    path = PARTIAL.format("async")
    run = await (await alume.run(FLOW, path)).wait(timeout=600, poll_interval=10)
    assert run.status == "PARTIAL_FAILED"
    check_schema(run.metadata, run_id=run.id, status="PARTIAL_FAILED", flow=FLOW, path=path)
    # "duration_seconds: Total time from created_at to completed_at" (here, on one clock)
    pipeline = run.metadata["pipeline"]
    span = pipeline["completed_at"] - pipeline["created_at"]
    assert abs(span - timedelta(seconds=pipeline["duration_seconds"])) < timedelta(seconds=0.01)


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
def test_errors_detail_the_cause_of_a_failed_run(lume: Lume, outcome: str) -> None:
    # "If the run FAILED, it contains objects detailing the cause."
    run = lume.run(FLOW, f"synthetic://seed-002-{outcome}?rows=5&outcome={outcome}")
    run.wait(timeout=600, poll_interval=10)
    (error,) = run.metadata["errors"]
    assert error["stage"] in ("sync_source", "transform", "sync_target")
    assert isinstance(error["error_code"], str) and error["error_code"]
    assert isinstance(error["message"], str) and error["message"]
    assert run.metadata["run"]["status"] == outcome == run.status


def test_typed_access_reads_the_same_values(lume: Lume) -> None:
    run = lume.run(FLOW, PARTIAL.format("typed")).wait(timeout=600, poll_interval=10)
    metadata = run.metadata
    assert metadata is not None and metadata.results is not None
    assert metadata.results.mapped_rows == metadata["results"]["mapped_rows"]
    assert metadata.run is not None and metadata.run.status is RunStatus.PARTIAL_FAILED
