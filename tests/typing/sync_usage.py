"""Type-checked only (mypy --strict), never run: the blocking API as users write it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, assert_type

import lume_async
from lume_sync import (
    BatchOutcome,
    Flow,
    Flows,
    FlowVersion,
    LogEntry,
    Lume,
    Page,
    Paginator,
    ProcessResult,
    RejectedRow,
    Run,
    RunFailedError,
    Runs,
    RunStatus,
    SyncFacadeError,
)


def usage() -> None:
    with Lume(api_key="key", base_url="http://127.0.0.1:8080", timeout=5.0) as lume:
        assert_type(lume, Lume)
        assert_type(lume.runs, Runs)
        assert_type(lume.flows, Flows)
        assert_type(lume.with_options(max_retries=0), Lume)

        run = lume.run("customer_cleaner:v1", "s3://bucket/batch_001", label="nightly")
        assert_type(run, Run)
        assert_type(lume.run_status(run.id), Run)
        assert_type(run.wait(timeout=60, poll_interval=1), Run)
        assert_type(run.refresh(), Run)
        assert_type(run.cancel(), Run)
        assert_type(run.update(label="x", tags=["a"]), Run)
        assert_type(run.raise_for_status(), Run)
        assert_type(run.status, RunStatus)
        assert_type(run.is_terminal, bool)

        rows = run.results(page_size=50)
        assert_type(rows, Paginator[dict[str, Any]])
        for row in rows:
            assert_type(row, dict[str, Any])
        assert_type(iter(rows), Iterator[dict[str, Any]])
        assert_type(rows.pages(), Iterator[Page[dict[str, Any]]])
        assert_type(rows.collect(), list[dict[str, Any]])
        assert_type(run.results_page(page=2), Page[dict[str, Any]])
        assert_type(run.rejects().collect(), list[RejectedRow])
        assert_type(next(iter(run.logs())), LogEntry)

        assert_type(lume.runs.list(status=RunStatus.RUNNING), Paginator[Run])
        assert_type(lume.runs.create_many([{"flow_version": "f:v1"}]), list[BatchOutcome[Run]])
        assert_type(lume.runs.get_many([run.id]), list[BatchOutcome[Run]])
        assert_type(lume.runs.cancel_many([run.id]), list[BatchOutcome[Run]])
        assert_type(lume.runs.wait_all([run], timeout=10), list[Run])
        assert_type(lume.runs.as_completed([run]), Iterator[Run])
        assert_type(lume.flows.get("customer_cleaner"), Flow)
        assert_type(lume.flows.list().collect(), list[Flow])

        result = lume.process("customer_cleaner:v1", source_data=[{"name": "a"}])
        assert_type(result, ProcessResult[Run])
        assert_type(result.run, Run)
        assert_type(result.rows, list[dict[str, Any]])

        # The seeds' operations.
        assert_type(lume.runs.wait(run.id, timeout=600, poll_interval=10), Run)
        assert_type(run.rerun(), Run)
        assert_type(run.input(), Paginator[dict[str, Any]])
        assert_type(run.logs(follow=True), Paginator[LogEntry])
        assert_type(lume.flows.get("customer_cleaner").version("v2"), FlowVersion)
        first = next(iter(lume.runs.list(source_path="s3://b/x", page_size=10).pages()))
        if first.next_cursor is not None:
            assert_type(lume.runs.list(cursor=first.next_cursor), Paginator[Run])
        if run.metadata is not None:
            assert_type(run.metadata["target_locations"], Any)
        assert_type(run.results().to_jsonl("out.jsonl"), int)
        assert_type(run.results().to_csv("out.csv", on_progress=lambda n: None), int)
        try:
            lume.process("customer_cleaner:v1", source_data=[{"name": ""}])
        except RunFailedError as exc:
            assert_type(exc.rejects, list[RejectedRow])

        request = lume_async.RunRequest("customer_cleaner:v1", source_path="s3://bucket/batch_2")
        outcomes = lume.runs.create_many([request], idempotency_namespace="nightly-2026-11-28")
        assert_type(outcomes[0].idempotency_key, str | None)
        assert_type(outcomes[0].unwrap().reused, bool)
        again = lume.process("customer_cleaner:v1", "s3://b/1", idempotency_namespace="n")
        assert_type(again.run.reused, bool)

        try:
            lume.run_status("run_01")
        except lume_async.RunNotFoundError:  # the very same class as lume_sync.RunNotFoundError
            pass
        except SyncFacadeError:
            pass
    lume.close()
