"""The seeds' less prominent sentences, checked through both clients against the emulator.

Waiting up to a timeout, the metadata schema read as the dictionary the seeds describe (keys in
the seed's order, ``in``, ``get`` with defaults, ``dict()``), the validation summary, the
TypeScript status words in listings, page limits and the end of a listing, the Go SDK's
not-found errors and batch cancels, and the duplicate-source rule of "Advanced Topics".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lume_async import AsyncLume, RunStatus
from lume_async.testing import Emulator, VirtualClock
from lume_sync import DuplicateRunError, Lume, NotFoundError, RunNotFoundError

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
MISSING = "run_01HY0000000000000000000000"


def fresh(name: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"rows": 5, **query}.items())
    return f"synthetic://edges-{name}-{uuid.uuid4().hex}?{params}"


@pytest.fixture
def still_emu() -> Iterator[Emulator]:
    """An emulator whose runs move only when told (``advance()``), never on their own."""
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


@pytest.fixture
def still_lume(still_emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=still_emu.api_key, base_url=still_emu.url) as client:
        yield client


# -- wait(): a run that reaches a terminal state within the timeout is returned -------------------


async def test_wait_returns_a_run_that_ended_before_the_timeout_async(
    alume: AsyncLume, clock: VirtualClock
) -> None:
    """Seed 002, wait(): "Blocks execution and polls the run's status until it reaches a
    terminal state ... If the timeout is reached, a TimeoutError is raised."

    The run ends 70 s after it is created; the timeout is 100 s. Checks 60 s apart look at 0 s
    and about 60 s, and the next would come after the deadline: the run is over 30 s before the
    timeout is reached, so wait() returns it.
    """
    run = await alume.run(FLOW, fresh("ends-at-70", duration=70))
    start = clock.monotonic()
    await run.wait(timeout=100, poll_interval=60)
    assert run.status == "SUCCEEDED"
    assert clock.monotonic() - start <= 100


def test_wait_returns_a_run_that_ended_before_the_timeout(lume: Lume) -> None:
    """Seed 002, wait(): "polls the run's status until it reaches a terminal state ... If the
    timeout is reached, a TimeoutError is raised."

    Through the blocking client: the run ends at 500 s, the timeout is 600 s and checks come
    400 s apart (at 0 s and about 400 s), so the run is over a sixth of the timeout early.
    """
    run = lume.run(FLOW, fresh("ends-at-500", duration=500))
    run.wait(timeout=600, poll_interval=400)
    assert run.status == "SUCCEEDED"


async def test_runs_wait_by_id_returns_a_run_that_ended_before_the_timeout_async(
    alume: AsyncLume,
) -> None:
    """Seed 003, Using Context Timeout: "Wait for the run to complete or timeout", and
    WaitForRun: "fmt.Printf("Run completed with status: %s\\n", run.Status)".

    ``runs.wait(run_id, timeout=...)`` for a run that completes 30 s before the timeout.
    """
    run = await alume.run(FLOW, fresh("by-id", duration=70))
    done = await alume.runs.wait(run.id, timeout=100, poll_interval=60)
    assert done.status == "SUCCEEDED"


async def test_wait_all_returns_runs_that_ended_before_the_timeout_async(
    alume: AsyncLume,
) -> None:
    """Seed 003, Monitor a Set of Runs: "Check if the run is complete ... fmt.Println("All runs
    completed!")", with "Use Wait with Timeout: Combine WaitForRun with context timeouts".

    Two runs that both end (at 50 s and 70 s) before the 100 s timeout of ``wait_all``.
    """
    runs = [await alume.run(FLOW, fresh(f"set-{d}", duration=d)) for d in (50, 70)]
    done = await alume.runs.wait_all(runs, timeout=100, poll_interval=60)
    assert [run.status for run in done] == ["SUCCEEDED", "SUCCEEDED"]


async def test_wait_gives_up_after_an_hour_by_default_async(
    alume: AsyncLume, clock: VirtualClock
) -> None:
    """Seed 002, wait(): "timeout (int, optional): The maximum number of seconds to wait. If the
    timeout is reached, a TimeoutError is raised. Defaults to 3600 (1 hour)."
    """
    run = await alume.run(FLOW, fresh("two-hours", duration=7200))
    start = clock.monotonic()
    with pytest.raises(TimeoutError):
        await run.wait()
    assert clock.monotonic() - start == 3600
    assert not run.is_terminal and run.status != "CREATED"  # updated in place while waiting


# -- the metadata schema, read as the seed's dictionary -------------------------------------------

MIXED: list[dict[str, Any]] = [
    *[{"name": "Ann", "email": "bad", "age": 30}] * 3,  # invalid_email
    {"name": "", "email": "bo@example.com", "age": 30},  # empty_value
    *[{"name": "Cy", "email": "cy@example.com", "age": 30}] * 2,  # mapped
    {"name": "", "email": "x", "age": 999},  # empty_value, invalid_email, out_of_range
]


def check_dictionary(metadata: Any) -> None:
    """The seed's tables, key by key and in order, with the dict operations a reader uses."""
    assert metadata.keys() == {"run", "pipeline", "results", "validation", "errors"}
    assert "results" in metadata and "target_locations" not in metadata
    assert len(metadata) == 5
    assert metadata.get("no_such_section", {}) == {}
    results = metadata.get("results", {})
    assert results.get("mapped_rows", 0) == 2 and results.get("no_such_field", -1) == -1
    assert list(results["target_locations"]) == ["mapped", "rejects"]
    locations = dict(results["target_locations"])
    assert locations == {
        "mapped": metadata["target_locations"]["mapped"],
        "rejects": metadata["target_locations"]["rejects"],
    }
    assert list(metadata["pipeline"]["stages"]) == [
        "sync_source_seconds",
        "transform_seconds",
        "sync_target_seconds",
    ]
    for top in metadata["validation"]["top_errors"]:
        assert list(top) == ["error_code", "field", "count"]
    assert [k for k, _ in metadata["validation"].items()][:4] == [
        "tests_executed",
        "tests_failed",
        "error_rate",
        "top_errors",
    ]


def test_metadata_reads_as_the_seeds_dictionary(lume: Lume) -> None:
    """Seed 002, metadata: "Type: dict. A dictionary containing detailed results and metrics
    after a run completes", with the fields of each object in the seed's tables."""
    run = lume.run(FLOW, source_data=MIXED).wait(poll_interval=5)
    check_dictionary(run.metadata)


async def test_metadata_reads_as_the_seeds_dictionary_async(alume: AsyncLume) -> None:
    """Seed 002, metadata: "Type: dict. A dictionary containing detailed results and metrics
    after a run completes"."""
    run = await (await alume.run(FLOW, source_data=MIXED)).wait()
    check_dictionary(run.metadata)


async def test_validation_counts_tests_and_rows_and_lists_the_most_common_first_async(
    alume: AsyncLume,
) -> None:
    """Seed 002, validation: "tests_failed: Total number of validation tests that failed",
    "error_rate: The ratio of tests_failed to tests_executed", "top_errors: An array of objects
    summarizing the most common failures"; results: "rejected_rows: Number of rows that failed
    validation".

    One row fails three tests: rows and failed tests are counted apart.
    """
    run = await (await alume.run(FLOW, source_data=MIXED)).wait()
    assert run.metadata is not None
    results, validation = run.metadata["results"], run.metadata["validation"]
    assert (results["input_rows"], results["mapped_rows"], results["rejected_rows"]) == (7, 2, 5)
    assert validation["tests_failed"] == 7
    assert validation["error_rate"] == validation["tests_failed"] / validation["tests_executed"]
    top = [(e["error_code"], e["field"], e["count"]) for e in validation["top_errors"]]
    assert top[0] == ("invalid_email", "email", 4)
    assert [count for _, _, count in top] == sorted((c for _, _, c in top), reverse=True)
    assert sum(count for _, _, count in top) == validation["tests_failed"]


def test_a_failed_runs_error_agrees_with_its_metadata(lume: Lume) -> None:
    """Seed 003, Getting a Run: "fmt.Printf("Run failed: %s - %s\\n", run.RunError.Code,
    run.RunError.Description)"; seed 002, errors: "If the run FAILED, it contains objects
    detailing the cause"; seed 004: "error_message=run.metadata.get("error_message")"."""
    run = lume.run(FLOW, fresh("failed", outcome="FAILED")).wait(poll_interval=5)
    assert run.status == "FAILED" and run.error is not None and run.metadata is not None
    (first,) = run.metadata["errors"]
    assert (run.error.code, run.error.message) == (first["error_code"], first["message"])
    assert run.metadata.get("error_message") == first["message"]


# -- listings, pages and their limits -------------------------------------------------------------


def test_the_typescript_status_words_filter_listings(still_lume: Lume, still_emu: Emulator) -> None:
    """Seed 000: "Intermediate statuses: CREATED, PENDING, RUNNING" and "INCOMPLETE: The run
    failed to process some records", as listing filters of the blocking client."""
    durations = {"CREATED": 5000, "PENDING": 700, "SYNCING_SOURCE": 250, "TRANSFORMING": 100}
    durations |= {"SYNCING_TARGET": 60, "SUCCEEDED": 40}
    made = {still_lume.run(FLOW, fresh(s, duration=d)).id: s for s, d in durations.items()}
    partial = still_lume.run(FLOW, fresh("partial", rows=10, reject_rate=0.5, duration=40)).id
    still_emu.advance(50)

    def listed(status: Any) -> dict[str, str]:
        return {r.id: r.status.value for r in still_lume.runs.list(status=status)}

    working = {i: s for i, s in made.items() if s.startswith(("SYNCING", "TRANSFORMING"))}
    assert listed("RUNNING") == working
    assert listed("INCOMPLETE") == {partial: "PARTIAL_FAILED"}
    assert listed(["RUNNING", "INCOMPLETE"]) == {**working, partial: "PARTIAL_FAILED"}
    assert listed("CREATED") == {i: s for i, s in made.items() if s == "CREATED"}


def test_page_size_is_limited_to_100_for_every_listing(lume: Lume) -> None:
    """Seed 000: "Page size is limited to 100 items per request" (before anything is sent)."""
    run = lume.run(FLOW, fresh("limits", duration=1)).wait(poll_interval=5)
    for listing in (run.results, run.rejects, run.logs, run.input, lume.runs.list):
        assert listing(page_size=100) is not None
        with pytest.raises(ValueError, match="page_size"):
            listing(page_size=101)
        with pytest.raises(ValueError, match="page_size"):
            listing(page_size=0)


async def test_paginating_past_the_last_page_gives_no_items_async(alume: AsyncLume) -> None:
    """Seed 000: "Results are paginated with a default limit of 100 items per page. Use
    pagination parameters to retrieve all results for large datasets." and "// paginate
    through the results as needed"."""
    run = await (await alume.run(FLOW, fresh("pages", rows=120, duration=1))).wait()
    pages = [await run.results_page(page=n, page_size=50) for n in (1, 2, 3, 4)]
    assert [len(p.items) for p in pages] == [50, 50, 20, 0]
    assert {(p.total, p.pages) for p in pages} == {(120, 3)}
    assert [p.page for p in pages] == [1, 2, 3, 4]


# -- the Go SDK's operations ----------------------------------------------------------------------


def test_operations_on_a_missing_run_are_run_not_found(lume: Lume) -> None:
    """Seed 003, Canceling a Run: "if flows.IsRunNotFoundError(err) { fmt.Println("Run not
    found") }", and the same test for getting, updating, and reading a run's logs."""
    calls: dict[str, Callable[[], object]] = {
        "cancel": lambda: lume.runs.cancel(MISSING),
        "update": lambda: lume.runs.update(MISSING, label="Updated Processing Job"),
        "logs": lambda: lume.runs.logs(MISSING).collect(),
        "results": lambda: lume.runs.results(MISSING).collect(),
        "wait": lambda: lume.runs.wait(MISSING, poll_interval=5),
    }
    for name, call in calls.items():
        with pytest.raises(RunNotFoundError) as caught:
            call()
        assert isinstance(caught.value, NotFoundError), name


def test_cancel_many_reports_each_runs_error_apart(lume: Lume) -> None:
    """Seed 003, Cancel Multiple Runs: "// Check for individual cancellation errors" ...
    "fmt.Printf("Run %s canceled\\n", result.RunID)"."""
    runs = [lume.run(FLOW, fresh(f"cancel-{i}", duration=100_000)).id for i in (1, 2)]
    outcomes = lume.runs.cancel_many([runs[0], MISSING, runs[1]], concurrency=3)
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, RunNotFoundError)
    assert [outcomes[i].unwrap().status for i in (0, 2)] == [RunStatus.CANCELED] * 2


# -- Advanced Topics: re-processing a source_path -------------------------------------------------


def test_a_source_path_is_processed_once_per_flow_version(lume: Lume) -> None:
    """Seed 004: "By default, Lume prevents re-processing the same source_path for a given Flow
    Version to ensure idempotency", and "A PARTIAL_FAILED status ... means some data was
    processed successfully"."""
    partial = fresh("partial-dup", rows=10, reject_rate=0.5, duration=1)
    first = lume.run(FLOW, partial).wait(poll_interval=5)
    assert first.status == "PARTIAL_FAILED"
    with pytest.raises(DuplicateRunError) as caught:
        lume.run(FLOW, partial)
    assert caught.value.existing_run_id == first.id
    other_version = lume.run("customer_cleaner:v2", partial)  # another Flow Version
    assert other_version.id != first.id
    failed = fresh("failed-again", outcome="FAILED", duration=1)
    nothing = lume.run(FLOW, failed).wait(poll_interval=5)
    assert nothing.status == "FAILED"  # "No data was processed": the path may run again
    assert lume.run(FLOW, failed).id != nothing.id
