"""Every run and flow method of the async client, against the emulator over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lume_async import (
    AsyncLume,
    AsyncRun,
    DuplicateRunError,
    NotFoundError,
    RunFailedError,
    RunNotFoundError,
    RunStatus,
    RunTimeoutError,
)
from lume_async.testing import Emulator

pytestmark = pytest.mark.anyio

FAST = "synthetic://{name}?rows={rows}&duration=1"
GOOD_ROWS = [
    {"name": " Ann ", "email": "ANN@x.io", "age": "41", "signup_date": "2024-02-03"},
    {"name": "Bo", "email": "bo@x.io", "age": 30},
]
BAD_ROW = {"name": "", "email": "nope", "age": "old"}


async def test_run_returns_at_once_with_a_fresh_handle(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "s3://bucket/batch_001", label="first", tags=["a"])
    assert isinstance(run, AsyncRun)
    assert run.id.startswith("run_") and len(run.id) == 30
    assert not run.is_terminal
    assert run.label == "first" and run.tags == ("a",)
    assert run.created_at.tzinfo is not None


async def test_run_status_reads_the_same_run(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "s3://bucket/batch_002")
    again = await lume.run_status(run.id)
    assert again.id == run.id and again.flow_version == "customer_cleaner:v1"


async def test_wait_returns_the_same_handle_terminal_with_complete_metadata(
    lume: AsyncLume,
) -> None:
    run = await lume.run("customer_cleaner:v1", FAST.format(name="w", rows=40))
    same = await run.wait(timeout=30, poll_interval=0.02)
    assert same is run
    assert run.status is RunStatus.SUCCEEDED
    assert run.metadata is not None and run.metadata.results is not None
    assert run.metadata.results.mapped_rows == 40
    assert run.metadata.pipeline is not None and run.metadata.pipeline.stages is not None


async def test_wait_raises_run_timeout_error_and_the_run_goes_on(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "synthetic://slow?rows=5&duration=3600")
    with pytest.raises(RunTimeoutError) as caught:
        await run.wait(timeout=0.05, poll_interval=0.01)
    assert caught.value.run is run
    assert isinstance(caught.value, TimeoutError)


async def test_refresh_updates_the_handle_in_place(lume: AsyncLume, emu: Emulator) -> None:
    run = await lume.run("customer_cleaner:v1", "synthetic://r?rows=5&duration=10")
    emu.advance(20)
    assert await run.refresh() is run
    assert run.status is RunStatus.SUCCEEDED


async def test_results_page_through_in_order_without_gaps(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", FAST.format(name="p", rows=1234))
    await run.wait(timeout=30, poll_interval=0.02)
    rows = await run.results(page_size=100).collect()
    assert len(rows) == 1234
    assert [row["full_name"] for row in rows] == [f"Customer {i}" for i in range(1234)]


async def test_results_page_gives_one_page(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", FAST.format(name="one", rows=120))
    await run.wait(timeout=30, poll_interval=0.02)
    page = await run.results_page(page=2, page_size=50)
    assert (page.page, page.size, page.total, page.pages, len(page.items)) == (2, 50, 120, 3, 50)
    assert page.has_next


async def test_partial_failure_reports_rejects_with_reasons(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", source_data=[*GOOD_ROWS, BAD_ROW])
    await run.wait(timeout=30, poll_interval=0.02)
    assert run.status is RunStatus.PARTIAL_FAILED
    run.raise_for_status()  # a partial failure is not an error
    rows = await run.results().collect()
    assert rows[0] == {
        "full_name": "Ann",
        "email": "ann@x.io",
        "age": 41,
        "signup_date": "2024-02-03",
    }
    rejects = await run.rejects().collect()
    assert [r.index for r in rejects] == [2]
    assert {e.field for e in rejects[0].errors} >= {"full_name", "email", "age"}
    assert rejects[0].source_record == BAD_ROW


async def test_logs_follow_the_lifecycle(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", FAST.format(name="logs", rows=3))
    await run.wait(timeout=30, poll_interval=0.02)
    logs = await run.logs().collect()
    assert logs and logs[0].time <= logs[-1].time
    assert all(entry.level for entry in logs)


async def test_a_failed_run_raises_run_failed_error_on_request(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "synthetic://f?rows=5&duration=1&outcome=FAILED")
    await run.wait(timeout=30, poll_interval=0.02)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    with pytest.raises(RunFailedError) as caught:
        run.raise_for_status()
    assert caught.value.run is run


async def test_process_creates_waits_and_collects(lume: AsyncLume) -> None:
    result = await lume.process(
        "customer_cleaner:v1", source_data=[*GOOD_ROWS, BAD_ROW], poll_interval=0.02
    )
    assert result.run.status is RunStatus.PARTIAL_FAILED
    assert len(result.rows) == 2 and len(result.rejects) == 1


async def test_process_raises_for_a_crashed_run(lume: AsyncLume) -> None:
    with pytest.raises(RunFailedError, match="CRASHED"):
        await lume.process(
            "customer_cleaner:v1",
            "synthetic://c?rows=5&duration=1&outcome=CRASHED",
            poll_interval=0.02,
        )


async def test_rerunning_a_succeeded_source_is_a_duplicate(lume: AsyncLume) -> None:
    first = await lume.run("customer_cleaner:v1", "s3://bucket/dup")
    await first.wait(timeout=30, poll_interval=0.02)
    with pytest.raises(DuplicateRunError) as caught:
        await lume.run("customer_cleaner:v1", "s3://bucket/dup")
    assert caught.value.existing_run_id == first.id
    assert caught.value.status_code == 409
    forced = await lume.run("customer_cleaner:v1", "s3://bucket/dup", force_rerun=True)
    assert forced.id != first.id


async def test_creating_a_source_still_in_flight_returns_that_run(lume: AsyncLume) -> None:
    first = await lume.run("customer_cleaner:v1", "synthetic://inflight?rows=5&duration=600")
    second = await lume.run("customer_cleaner:v1", "synthetic://inflight?rows=5&duration=600")
    assert second.id == first.id


async def test_update_changes_label_and_tags(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "s3://bucket/upd")
    assert await run.update(label="renamed", tags=["x", "y"]) is run
    assert (run.label, run.tags) == ("renamed", ("x", "y"))
    again = await lume.runs.update(run.id, tags=[])
    assert again.tags == () and again.label == "renamed"


async def test_cancel_ends_a_run_and_leaves_a_terminal_one_alone(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "synthetic://cancel?rows=5&duration=600")
    assert (await run.cancel()).status is RunStatus.CANCELED
    done = await lume.runs.cancel(run.id)
    assert done.status is RunStatus.CANCELED


@pytest.mark.parametrize(
    "path", ["synthetic://done?rows=5&duration=1", "synthetic://x?outcome=FAILED"]
)
async def test_cancel_of_a_run_that_already_ended_returns_it_unchanged(
    lume: AsyncLume, emu: Emulator, path: str
) -> None:
    run = await lume.run("customer_cleaner:v1", path)
    emu.advance(5)
    ended = (await lume.runs.get(run.id)).status
    assert ended in (RunStatus.SUCCEEDED, RunStatus.FAILED)
    assert (await run.cancel()).status is ended
    assert (await lume.runs.cancel(run.id)).status is ended


async def test_list_filters_and_orders(lume: AsyncLume) -> None:
    for i in range(5):
        await lume.run("customer_cleaner:v1", f"s3://bucket/list-{i}", label="L", tags=["t"])
    await lume.run("invoice_mapper:v1", "s3://bucket/other", label="M")
    listed = await lume.runs.list(label="L", tags=["t"], page_size=2).collect()
    assert len(listed) == 5
    assert [r.created_at for r in listed] == sorted((r.created_at for r in listed), reverse=True)
    oldest_first = await lume.runs.list(
        flow_version="invoice_mapper:v1", descending=False
    ).collect()
    assert [r.source_path for r in oldest_first] == ["s3://bucket/other"]
    soon = datetime.now(UTC) + timedelta(days=1)
    assert await lume.runs.list(created_after=soon).collect() == []
    pending = await lume.runs.list(status=[RunStatus.SUCCEEDED]).collect()
    assert all(r.status is RunStatus.SUCCEEDED for r in pending)


async def test_flows_list_and_get(lume: AsyncLume) -> None:
    flows = await lume.flows.list().collect()
    assert {f.name for f in flows} >= {"customer_cleaner", "invoice_mapper"}
    flow = await lume.flows.get("customer_cleaner")
    assert [v.id for v in flow.versions] == ["customer_cleaner:v1", "customer_cleaner:v2"]
    with pytest.raises(NotFoundError):
        await lume.flows.get("no_such_flow")


async def test_an_unknown_run_is_run_not_found(lume: AsyncLume) -> None:
    with pytest.raises(RunNotFoundError) as caught:
        await lume.runs.get("run_01HY0000000000000000000000")
    assert caught.value.request_id and caught.value.error_id


async def test_another_tenants_run_reads_as_not_found(lume: AsyncLume, emu: Emulator) -> None:
    run = await lume.run("customer_cleaner:v1", "s3://bucket/mine")
    async with AsyncLume(api_key=emu.add_tenant(), base_url=emu.url) as other:
        with pytest.raises(RunNotFoundError):
            await other.runs.get(run.id)
        assert await other.runs.list().collect() == []
