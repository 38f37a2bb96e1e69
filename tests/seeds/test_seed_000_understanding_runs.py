"""Seeds 000/001, "Understanding Runs": the TypeScript SDK's run workflow, done with this SDK.

The seed's snippets are TypeScript; each test here is their Python counterpart, written as a
user of this SDK would, and checks what the seed says of it.
"""

from __future__ import annotations

from typing import Any

import pytest

from lume_async import AsyncLume, RunStatus
from lume_sync import Lume

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
NEW_SOURCE_DATA: list[dict[str, Any]] = [
    {"name": f"Customer {i}", "email": f"c{i}@example.com", "age": 20 + i} for i in range(120)
]


def test_simple_process(lume: Lume) -> None:
    # const results = await existingFlow.process(newSourceData);
    results = lume.process(FLOW, source_data=NEW_SOURCE_DATA, poll_interval=10)
    assert results.run.status == "SUCCEEDED"
    assert len(results.rows) == len(NEW_SOURCE_DATA)


async def test_simple_process_async(alume: AsyncLume) -> None:
    results = await alume.process(FLOW, source_data=NEW_SOURCE_DATA, poll_interval=10)
    assert len(results.rows) == len(NEW_SOURCE_DATA)


def test_manual_control(lume: Lume, capsys: pytest.CaptureFixture[str]) -> None:
    # 1. Create a run but do not wait.
    run = lume.run(FLOW, source_data=NEW_SOURCE_DATA)
    assert not run.is_terminal
    # 2. Poll or wait for it to finish.
    run.wait()  # blocks until Succeeded, Failed, or Crashed
    # 3. Check the run status and get the results.
    if run.status == "SUCCEEDED":
        # Page size is limited to 100 items per request
        page = run.results_page(page=1, page_size=50)
        print("Manual run output:", len(page.items))
    else:
        print("Run ended with status:", run.status)
    assert capsys.readouterr().out == "Manual run output: 50\n"
    # paginate through the results as needed
    assert len(run.results().collect()) == 120
    with pytest.raises(ValueError, match="page_size"):
        run.results_page(page_size=101)


async def test_manual_control_async(alume: AsyncLume) -> None:
    run = await alume.run(FLOW, source_data=NEW_SOURCE_DATA)
    await run.wait()
    assert run.status == "SUCCEEDED"
    page = await run.results_page(page=1, page_size=50)
    assert len(page.items) == 50


def test_results_are_paginated_100_items_per_page_by_default(lume: Lume) -> None:
    # "Results are paginated with a default limit of 100 items per page."
    run = lume.run(FLOW, source_data=NEW_SOURCE_DATA).wait()
    first = run.results_page()
    assert (len(first.items), first.size, first.total, first.pages) == (100, 100, 120, 2)
    assert [len(p.items) for p in run.results().pages()] == [100, 20]


def test_final_and_intermediate_statuses(lume: Lume) -> None:
    # "Final statuses include: SUCCEEDED, FAILED, CRASHED, INCOMPLETE"
    for word in ("SUCCEEDED", "FAILED", "CRASHED", "INCOMPLETE"):
        assert RunStatus(word).is_terminal
    assert RunStatus("INCOMPLETE") is RunStatus.PARTIAL_FAILED
    # "Intermediate statuses: CREATED, PENDING, RUNNING"
    for word in ("CREATED", "PENDING", "RUNNING"):
        assert not RunStatus(word).is_terminal
    # Both TypeScript words filter listings (RUNNING: any of the three working stages).
    assert isinstance(lume.runs.list(status=["RUNNING", "INCOMPLETE"]).collect(), list)


def test_each_run_stores_what_the_seed_lists(lume: Lume) -> None:
    data = [*NEW_SOURCE_DATA[:3], {"name": "", "email": "bad", "age": "x"}]
    run = lume.run(FLOW, source_data=data).wait()
    # The input source data used
    assert run.input().collect() == data
    # The mapped output data produced
    assert len(run.results().collect()) == 3
    # The version of the mapper used
    assert run.flow_version == run.metadata["run"]["flow_version"] == FLOW
    # Validation results and any errors
    assert run.metadata["validation"]["tests_failed"] > 0
    assert [r.index for r in run.rejects()] == [3]
    # Performance metrics and statistics
    assert run.metadata["pipeline"]["duration_seconds"] > 0
    assert run.metadata["results"]["input_rows"] == 4
