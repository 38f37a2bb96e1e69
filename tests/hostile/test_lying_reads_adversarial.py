"""Reads from a service that lies in ways a listing's own bookkeeping cannot see.

A scripted service over a real socket answers run listings whose runs do not match the filters
asked for or carry ids that are not run ids, and page-numbered envelopes that carry a cursor
besides their page numbers or totals past 2**53. Each is refused as ``ResponseValidationError``
(or read as what it says) rather than handed out as right; the client runs on a virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

import lume_sync
from lume_async import AsyncLume, ResponseValidationError
from lume_async.testing import VirtualClock

from ..core._scripted import Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

KEY = "k" * 16
FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"


def listed(n: int, **fields: Any) -> dict[str, Any]:
    """Run ``n`` as a listing shows it: created ``n`` seconds into 2026, of FLOW."""
    run = run_json(f"run_01HY{n:022d}", "SUCCEEDED")
    run["created_at"] = run["updated_at"] = f"2026-01-01T00:00:{n:02d}.000Z"
    run.update(fields)
    return run


def runs_page(*runs: dict[str, Any]) -> Answer:
    return Answer(200, {"items": list(runs), "next_cursor": None})


@asynccontextmanager
async def client_of(server: ScriptedServer) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=KEY, base_url=server.url, clock=VirtualClock()) as client:
        yield client


# -- run listings: the runs must be runs of the query -----------------------------------------


@pytest.mark.timeout(30)
async def test_a_listed_run_whose_id_is_not_a_run_id_is_refused(
    scripted: ScriptedServer,
) -> None:
    # Handed out, its handle's every call (refresh, results, cancel) would raise ValueError.
    scripted.respond = lambda _: runs_page(listed(2), listed(1, id="../../v1/webhooks"))
    async with client_of(scripted) as lume:
        with pytest.raises(ResponseValidationError, match="is not a run id"):
            await lume.runs.list().collect()


_OUTSIDE = [
    ({"flow_version": FLOW}, {"flow_version": "other_flow:v9"}),
    ({"source_path": "s3://bucket/batch_001"}, {"source_path": "s3://bucket/batch_002"}),
    ({"created_after": datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)}, {}),
    ({"created_before": datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)}, {}),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("filters", "lie"), _OUTSIDE, ids=lambda v: ",".join(v) or "-")
async def test_a_run_outside_a_filter_that_cannot_change_is_refused(
    scripted: ScriptedServer, filters: dict[str, Any], lie: dict[str, Any]
) -> None:
    # Run 1 was created at 00:00:01: more than a second outside either window above.
    scripted.respond = lambda _: runs_page(listed(1, **lie))
    async with client_of(scripted) as lume:
        with pytest.raises(ResponseValidationError, match="does not match"):
            await lume.runs.list(**filters).collect()


@pytest.mark.timeout(30)
async def test_a_created_at_shown_rounded_down_to_the_second_is_within_its_window(
    scripted: ScriptedServer,
) -> None:
    scripted.respond = lambda _: runs_page(listed(1, created_at="2026-01-01T00:00:01Z"))
    after = datetime(2026, 1, 1, 0, 0, 1, 400_000, tzinfo=UTC)
    async with client_of(scripted) as lume:
        got = await lume.runs.list(created_after=after, flow_version=FLOW).collect()
    assert [run.id for run in got] == [f"run_01HY{1:022d}"]


@pytest.mark.timeout(30)
async def test_labels_tags_and_statuses_are_left_to_the_service(
    scripted: ScriptedServer,
) -> None:
    # They change while a listing is read: a run may show a newer one than the filter saw.
    scripted.respond = lambda _: runs_page(listed(1, status="CANCELED", label="b", tags=[]))
    async with client_of(scripted) as lume:
        got = await lume.runs.list(status="PENDING", label="a", tags=["t"]).collect()
    assert len(got) == 1


@pytest.mark.timeout(30)
async def test_lume_sync_refuses_a_listing_of_another_flow_s_runs(
    scripted: ScriptedServer,
) -> None:
    scripted.respond = lambda _: runs_page(listed(1, flow_version="other_flow:v9"))
    lume = lume_sync.Lume(api_key=KEY, base_url=scripted.url, clock=VirtualClock())
    try:

        def walk() -> list[str]:
            return [run.id for run in lume.runs.list(flow_version=FLOW, page_size=10)]

        with pytest.raises(ResponseValidationError, match="does not match flow_version"):
            await anyio.to_thread.run_sync(walk)
    finally:
        await anyio.to_thread.run_sync(lume.close)


# -- page-numbered envelopes ------------------------------------------------------------------


def envelope(items: list[Any], total: int, page: int, size: int, pages: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "size": size, "pages": pages}


@pytest.mark.timeout(30)
async def test_a_numbered_page_s_stray_cursor_does_not_make_its_last_page_have_a_next(
    scripted: ScriptedServer,
) -> None:
    body = {**envelope([{"a": 1}], 1, 1, 2, 1), "next_cursor": "more"}
    scripted.respond = lambda _: Answer(200, body)
    async with client_of(scripted) as lume:
        page = await lume.runs.results_page(RUN_ID, page_size=2)
        pages = [p async for p in lume.runs.results(RUN_ID, page_size=2).pages()]
    assert (page.has_next, page.next_cursor) == (False, None)
    assert [(p.has_next, p.next_cursor) for p in pages] == [(False, None)]


@pytest.mark.timeout(30)
async def test_a_total_past_2_53_is_checked_in_integers(scripted: ScriptedServer) -> None:
    total = 2**60 + 1  # a float quotient makes 2**59 pages of it, one short
    scripted.respond = lambda _: Answer(200, envelope([{"a": 1}, {"a": 2}], total, 1, 2, 2**59 + 1))
    async with client_of(scripted) as lume:
        page = await lume.runs.results_page(RUN_ID, page_size=2)
        assert (page.total, page.pages, page.has_next) == (total, 2**59 + 1, True)
        scripted.respond = lambda _: Answer(200, envelope([{"a": 1}, {"a": 2}], total, 1, 2, 2**59))
        with pytest.raises(ResponseValidationError, match="disagrees with total"):
            await lume.runs.results_page(RUN_ID, page_size=2)
