"""Seed 003, the Go flows SDK's run operations, done with this SDK.

The seed's snippets are Go; each test here is their Python counterpart, written as a user of this
SDK would: run, list with filters and a marker, get, update, cancel, logs, wait, batches.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator
from lume_sync import LogEntry, Lume, RunNotFoundError, RunRequest, RunTimeoutError

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"


def fresh(name: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"rows": 10, **query}.items())
    return f"synthetic://seed-003-{name}-{uuid.uuid4().hex}?{params}"


def test_running_a_flow_with_a_label_and_tags(lume: Lume) -> None:
    label = "Processing Job " + datetime.now(UTC).strftime("%Y-%m-%d")
    run = lume.run(FLOW, fresh("run"), label=label, tags=["processing", "automated"])
    assert (run.label, run.tags) == (label, ("processing", "automated"))
    assert run.status == "CREATED"


def test_listing_with_options_and_resuming_from_the_marker(lume: Lume, emu: Emulator) -> None:
    label = f"Processing-{uuid.uuid4().hex}"
    ids = [lume.run(FLOW, fresh("list"), label=label).id for _ in range(5)]
    emu.advance(10)
    since = datetime.now(UTC) - timedelta(hours=1)
    options = {"flow_version": FLOW, "status": "SUCCEEDED", "created_after": since, "label": label}
    pages = lume.runs.list(**options, page_size=2, descending=True).pages()
    first = next(pages)
    pages.close()
    marker = first.next_cursor  # saved, e.g. in a database
    assert marker is not None
    # ... later, maybe in another process:
    rest = lume.runs.list(cursor=marker, page_size=2).collect()
    assert [r.id for r in [*first.items, *rest]] == list(reversed(ids))
    # created_before=now finds every run just made (timestamps are real wall-clock time).
    assert len(lume.runs.list(label=label, created_before=datetime.now(UTC)).collect()) == 5


def test_getting_a_run_and_a_missing_one(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("get")).wait(poll_interval=5)
    got = lume.runs.get(run.id)
    assert got.status == "SUCCEEDED" and got.metadata["results"]["mapped_rows"] == 10
    with pytest.raises(RunNotFoundError):
        lume.runs.get("run_01HY0000000000000000000000")


def test_updating_a_run(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("update"))
    updated = lume.runs.update(
        run.id, label="Updated Processing Job", tags=["important", "processing", "updated"]
    )
    assert updated.label == "Updated Processing Job"
    assert updated.tags == ("important", "processing", "updated")


def test_canceling_a_run_and_one_that_already_ended(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("cancel", duration=10_000))
    lume.runs.cancel(run.id)
    assert lume.runs.get(run.id).status == "CANCELED"
    done = lume.run(FLOW, fresh("ended")).wait(poll_interval=5)
    assert lume.runs.cancel(done.id).status == "SUCCEEDED"  # nothing to cancel: left as it is


def test_run_logs_a_page_an_iterator_and_all(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("logs")).wait(poll_interval=5)
    page = next(iter(run.logs(page_size=100).pages()))  # GetRunLogs(ctx, id, 100, 0)
    lines = [f"[{e.time}] {e.code}: {e.message}" for e in page.items]
    assert lines and all(isinstance(e, LogEntry) for e in page.items)
    iterated = [entry.code for entry in lume.runs.logs(run.id, page_size=2)]  # the iterator
    everything = run.logs().collect()  # ListAllRunLogs
    assert iterated == [e.code for e in everything] == [e.code for e in page.items]


def test_waiting_for_a_run_with_an_interval_and_a_timeout(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("wait", duration=30))
    done = lume.runs.wait(run.id, poll_interval=5)
    assert done.status == "SUCCEEDED"
    slow = lume.run(FLOW, fresh("slow", duration=100_000))
    with pytest.raises(RunTimeoutError):
        lume.runs.wait(slow.id, timeout=60, poll_interval=5)


def test_monitoring_a_run_follows_its_logs_until_it_ends(lume: Lume) -> None:
    run = lume.run(FLOW, fresh("monitor", duration=60))
    codes = [entry.code for entry in run.logs(follow=True, poll_interval=10)]
    assert run.status == "SUCCEEDED" and codes[-1] == "run.succeeded"


def test_batch_run_monitor_and_cancel(lume: Lume) -> None:
    requests = [
        RunRequest(FLOW, source_path=fresh("batch", duration=1000), label=f"Batch Job {i}")
        for i in (1, 2, 3)
    ]
    started = lume.runs.create_many(requests, concurrency=3)
    run_ids = [outcome.unwrap().id for outcome in started if outcome.ok]
    assert len(run_ids) == 3
    statuses = {o.unwrap().id: o.unwrap().status for o in lume.runs.get_many(run_ids)}
    assert set(statuses) == set(run_ids)
    canceled = lume.runs.cancel_many(run_ids, concurrency=3)
    assert [o.unwrap().status for o in canceled] == ["CANCELED"] * 3


async def test_monitoring_a_set_of_runs_async(alume: AsyncLume) -> None:
    runs = [await alume.run(FLOW, fresh("set", duration=d)) for d in (300, 100, 200)]
    finished = [run.id async for run in alume.runs.as_completed(runs, poll_interval=30)]
    assert finished == [runs[1].id, runs[2].id, runs[0].id]
