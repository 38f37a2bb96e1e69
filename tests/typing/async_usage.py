"""Type-checked only (mypy --strict), never run: the asyncio API as users write it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, assert_type

from lume_async import (
    AsyncFlows,
    AsyncLume,
    AsyncPaginator,
    AsyncRun,
    AsyncRuns,
    BatchOutcome,
    Flow,
    FlowVersion,
    LogEntry,
    Page,
    ProcessResult,
    RejectedRow,
    RunFailedError,
    RunMetadata,
    RunRequest,
    RunStatus,
    TargetField,
)


async def usage() -> None:
    async with AsyncLume(api_key="key", base_url="http://127.0.0.1:8080") as lume:
        assert_type(lume, AsyncLume)
        assert_type(lume.runs, AsyncRuns)
        assert_type(lume.flows, AsyncFlows)
        assert_type(lume.with_options(timeout=5), AsyncLume)

        run = await lume.run("customer_cleaner:v1", "s3://bucket/batch_001")
        assert_type(run, AsyncRun)
        assert_type(await lume.run_status(run.id), AsyncRun)
        assert_type(await run.wait(timeout=60), AsyncRun)
        assert_type(run.raise_for_status(), AsyncRun)
        assert_type(run.status, RunStatus)

        rows = run.results(page_size=50)
        assert_type(rows, AsyncPaginator[dict[str, Any]])
        async for row in rows:
            assert_type(row, dict[str, Any])
        assert_type(rows.pages(), AsyncIterator[Page[dict[str, Any]]])
        assert_type(await rows.collect(), list[dict[str, Any]])
        assert_type(await run.rejects().collect(), list[RejectedRow])
        assert_type(await anext(aiter(run.logs())), LogEntry)

        assert_type(lume.runs.list(), AsyncPaginator[AsyncRun])
        assert_type(await lume.runs.get_many([run.id]), list[BatchOutcome[AsyncRun]])
        assert_type(await lume.runs.wait_all([run]), list[AsyncRun])
        assert_type(lume.runs.as_completed([run]), AsyncIterator[AsyncRun])
        assert_type(await lume.flows.get("customer_cleaner"), Flow)

        result = await lume.process("customer_cleaner:v1", source_data=[{"name": "a"}])
        assert_type(result, ProcessResult[AsyncRun])

        # The seeds' operations.
        assert_type(await lume.runs.wait(run.id, timeout=600, poll_interval=10), AsyncRun)
        assert_type(await run.rerun(), AsyncRun)
        assert_type(run.input(), AsyncPaginator[dict[str, Any]])
        assert_type(lume.runs.input(run.id), AsyncPaginator[dict[str, Any]])
        assert_type(run.logs(follow=True, poll_interval=1), AsyncPaginator[LogEntry])
        assert_type(lume.runs.logs(run.id, follow=True), AsyncPaginator[LogEntry])
        flow = await lume.flows.get("customer_cleaner")
        assert_type(flow.version("v1"), FlowVersion)
        assert_type(flow.version("v1").target_schema, dict[str, TargetField])
        listing = lume.runs.list(source_path="s3://b/x", status=["RUNNING", "INCOMPLETE"])
        page = await anext(listing.pages())
        assert_type(page.next_cursor, str | None)
        if page.next_cursor is not None:
            assert_type(lume.runs.list(cursor=page.next_cursor), AsyncPaginator[AsyncRun])

        metadata = run.metadata
        assert_type(metadata, RunMetadata | None)
        if metadata is not None:
            assert_type(metadata["results"], Any)
            assert_type(metadata.get("error_message"), Any | None)
            assert_type(metadata.error_message, str | None)
            assert_type(list(metadata.keys()), list[str])

        assert_type(await run.results().to_jsonl("out.jsonl", on_progress=print), int)
        assert_type(await run.rejects().to_csv("rejects.csv", columns=["index"]), int)
        assert_type(await run.results().to_pandas(), Any)
        assert_type(await run.results().to_arrow(), Any)
        try:
            await lume.process("customer_cleaner:v1", source_data=[{"name": ""}])
        except RunFailedError as exc:
            assert_type(exc.rejects, list[RejectedRow])

        request = RunRequest("customer_cleaner:v1", source_path="s3://bucket/batch_002")
        assert_type(request.idempotency_key, str)
        assert_type(request.with_namespace("nightly-2026-11-28"), RunRequest)
        assert_type(request.with_idempotency_key("batch-2"), RunRequest)
        outcomes = await lume.runs.create_many([request], idempotency_namespace="nightly")
        assert_type(outcomes, list[BatchOutcome[AsyncRun]])
        assert_type(outcomes[0].idempotency_key, str | None)
        again = await lume.run("customer_cleaner:v1", "s3://b/1", idempotency_namespace="n")
        assert_type(again.reused, bool)
    await lume.aclose()
