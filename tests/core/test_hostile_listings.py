"""Listings that lie: every paginator refuses them instead of looping, dropping or repeating rows.

A scripted server answers the SDK's real requests over a socket. For page-numbered listings
(results, rejects, logs, flows, webhook endpoints) hypothesis draws the listing (its length and
page size) and one lie told on one page: the page asked for ignored, page 1 served again under
another number (where items carry ids), ``pages`` or ``total`` missing or wrong, a size other
than the one asked for, more items than the size, a short page, a total that falls. For the
cursor listing (runs) it draws a cursor repeated or cycling (with the same runs or new ones), a
run listed twice, runs out of order, an oversized page, an empty page pointing further. Each lie
must end the walk with a ``ResponseValidationError`` carrying the request id of the answer that
told it; the same listings told honestly, also while rows are appended, must come out whole,
once, in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, ResponseValidationError, RunRequest
from lume_async._listing_checks import WINDOW, ListingChecks
from lume_async.models import Page

from .._profiles import examples
from ._scripted import RUN_ID, Answer, ScriptedServer, Seen, run_json

pytestmark = pytest.mark.anyio

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
HOSTILE = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- page-numbered listings -----------------------------------------------------------------------


def result_row(i: int) -> dict[str, Any]:
    return {"n": i}


def reject_row(i: int) -> dict[str, Any]:
    return {"index": i, "source_record": {"n": i}, "errors": []}


def log_row(i: int) -> dict[str, Any]:
    time = (EPOCH + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return {"time": time, "level": "INFO", "code": "c", "message": f"m{i}", "details": {}}


def flow_row(i: int) -> dict[str, Any]:
    return {"name": f"flow_{i}", "description": None, "versions": []}


def endpoint_row(i: int) -> dict[str, Any]:
    return {"id": f"wh_{i}", "url": "https://example.com/hooks", "events": ["run.failed"]}


@attrs.frozen
class Listing:
    """One page-numbered listing: how a row looks, how the SDK walks it, how to read a row back."""

    row: Callable[[int], dict[str, Any]]
    walk: Callable[[AsyncLume, int], Any]
    read: Callable[[Any], int]
    has_ids: bool


LISTINGS = {
    "results": Listing(
        result_row, lambda c, s: c.runs.results(RUN_ID, page_size=s), lambda r: r["n"], False
    ),
    "rejects": Listing(
        reject_row, lambda c, s: c.runs.rejects(RUN_ID, page_size=s), lambda r: r.index, True
    ),
    "logs": Listing(
        log_row, lambda c, s: c.runs.logs(RUN_ID, page_size=s), lambda r: int(r.message[1:]), False
    ),
    "flows": Listing(
        flow_row, lambda c, s: c.flows.list(page_size=s), lambda f: int(f.name[5:]), True
    ),
    "webhook_endpoints": Listing(
        endpoint_row,
        lambda c, s: c.webhook_endpoints.list(page_size=s),
        lambda e: int(e.id[3:]),
        True,
    ),
}

NUMBERED_LIES = (
    "ignores_page",
    "repeats_page_one",
    "no_pages",
    "wrong_pages",
    "no_total",
    "wrong_size",
    "too_many_items",
    "short_page",
    "total_falls",
)


class NumberedServer:
    """Serves ``total`` rows page by page, telling ``lie`` on page ``lying_page`` (if any).

    ``appended`` more rows appear once page 1 has been served (an honest, growing listing).
    """

    def __init__(
        self, listing: Listing, total: int, lie: str | None, lying_page: int, appended: int = 0
    ) -> None:
        self.listing, self.total, self.lie, self.lying_page = listing, total, lie, lying_page
        self.appended = appended
        self.request_ids: dict[int, str] = {}
        self.served = 0

    def __call__(self, seen: Seen) -> Answer:
        query = parse_qs(urlsplit(seen.path).query)
        page, size = int(query["page"][0]), int(query["size"][0])
        self.served += 1
        request_id = self.request_ids[page] = f"req_{self.served}"
        total = self.total + (self.appended if self.served > 1 else 0)
        lied = page == self.lying_page and self.lie is not None
        body = self.lied(page, size, total) if lied else self.envelope(page, size, total)
        return Answer(200, body, {"x-request-id": request_id})

    def envelope(self, page: int, size: int, total: int) -> dict[str, Any]:
        start = (page - 1) * size
        items = [self.listing.row(i) for i in range(start, min(total, start + size))]
        pages = math.ceil(total / size)
        return {"items": items, "total": total, "page": page, "size": size, "pages": pages}

    def lied(self, page: int, size: int, total: int) -> dict[str, Any]:
        body = self.envelope(page, size, total)
        match self.lie:
            case "ignores_page":
                return self.envelope(1, size, total)
            case "repeats_page_one":
                return {**self.envelope(1, size, total), "page": page}
            case "no_pages":
                del body["pages"]
            case "wrong_pages":
                body["pages"] += 1
            case "no_total":
                del body["total"]
            case "wrong_size":
                body["size"] = size + 1
            case "too_many_items":
                body["items"] = [self.listing.row(i) for i in range(size + 1)]
            case "short_page":
                body["items"] = body["items"][:-1]
            case "total_falls":
                body = {**self.envelope(page, size, total - 1), "page": page}
        return body


@st.composite
def numbered_lies(draw: st.DrawFn) -> tuple[str, int, int, str, int]:
    """(listing, total, page size, lie, the page that tells it) for which the lie is a lie."""
    lie = draw(st.sampled_from(NUMBERED_LIES))
    # Page 1 served again under another number gives itself away by its ids alone.
    names = [n for n, li in LISTINGS.items() if li.has_ids or lie != "repeats_page_one"]
    name = draw(st.sampled_from(sorted(names)))
    size = draw(st.integers(1, 12))
    at_least = {"ignores_page": 2, "repeats_page_one": 2, "no_pages": 2, "total_falls": 2}
    pages = draw(st.integers(at_least.get(lie, 1), 6))
    if lie == "short_page" and pages == 1:
        pages = 2
    total = draw(st.integers((pages - 1) * size + 1, pages * size))
    if lie in ("no_pages", "ignores_page", "repeats_page_one", "total_falls"):
        lying_page = draw(st.integers(2, pages))
    elif lie == "short_page":
        lying_page = draw(st.integers(1, pages - 1))  # a page that should be full
    else:
        lying_page = draw(st.integers(1, pages))
    if lie == "no_pages":
        lying_page = draw(st.integers(1, pages))  # total > size on every page
    return name, total, size, lie, lying_page


@pytest.fixture
async def scripted_lume(scripted: ScriptedServer) -> Any:
    async with AsyncLume(api_key="k", base_url=scripted.url, max_retries=0) as client:
        yield client


@HOSTILE
@given(case=numbered_lies())
async def test_a_lying_numbered_listing_raises_with_the_request_id_of_the_lie(
    scripted: ScriptedServer, scripted_lume: AsyncLume, case: tuple[str, int, int, str, int]
) -> None:
    name, total, size, lie, lying_page = case
    listing = LISTINGS[name]
    server = NumberedServer(listing, total, lie, lying_page)
    scripted.respond = server
    with pytest.raises(ResponseValidationError) as caught:
        await listing.walk(scripted_lume, size).collect()
    assert caught.value.request_id == server.request_ids[lying_page], str(caught.value)
    assert caught.value.request_id in str(caught.value)


@HOSTILE
@given(
    name=st.sampled_from(sorted(LISTINGS)),
    total=st.integers(0, 60),
    size=st.integers(1, 12),
    appended=st.integers(0, 30),
)
async def test_an_honest_numbered_listing_comes_whole_once_and_in_order_even_while_it_grows(
    scripted: ScriptedServer,
    scripted_lume: AsyncLume,
    name: str,
    total: int,
    size: int,
    appended: int,
) -> None:
    listing = LISTINGS[name]
    scripted.respond = NumberedServer(listing, total, None, 0, appended=appended)
    walk = listing.walk(scripted_lume, size)
    if name == "results" and appended and total > size:
        # Only an ended run serves its results (409 before): they cannot grow, and a total that
        # does is not believed (followed, a total growing at every page would never end).
        with pytest.raises(ResponseValidationError, match="the total grew"):
            await walk.collect()
        return
    rows = [listing.read(row) for row in await walk.collect()]
    # Rows appended once page 1 was served are walked too, when there is a page 2 to walk.
    assert rows == list(range(total if total <= size else total + appended))


async def test_one_lying_page_fetched_alone_is_refused_too(
    scripted: ScriptedServer, scripted_lume: AsyncLume
) -> None:
    scripted.respond = NumberedServer(LISTINGS["results"], 30, "ignores_page", 2)
    with pytest.raises(ResponseValidationError, match="asked for page 2, got page 1"):
        await scripted_lume.runs.results_page(RUN_ID, page=2, page_size=10)


# --- the cursor listing (runs) --------------------------------------------------------------------


def run_at(i: int) -> dict[str, Any]:
    """Run number ``i`` of a listing newest first: a larger ``i`` is an older run."""
    created = (EPOCH - timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return {**run_json(f"run_01HY{i:022d}", "SUCCEEDED"), "created_at": created}


CURSOR_LIES = (
    "repeats_cursor",
    "cycles_same_runs",
    "cycles_new_runs",
    "repeats_a_run",
    "out_of_order",
    "too_many_items",
    "empty_page_points_on",
)


class CursorServer:
    """Serves runs newest first, ``size`` per page, following its own cursors ``c<n>``.

    With a lie, page ``lying_page`` (from 0) and, for cycles, every page after it tells it.
    """

    def __init__(self, total: int, lie: str | None, lying_page: int, cycle: int = 1) -> None:
        self.total, self.lie, self.lying_page, self.cycle = total, lie, lying_page, cycle
        self.last_request_id = ""
        self.served = 0

    def __call__(self, seen: Seen) -> Answer:
        query = parse_qs(urlsplit(seen.path).query)
        size = int(query["size"][0])
        cursor = query.get("cursor", ["c0"])[0]
        n = int(cursor[1:])
        self.served += 1
        self.last_request_id = f"req_{self.served}"
        return Answer(200, self.page(n, size), {"x-request-id": self.last_request_id})

    def page(self, n: int, size: int) -> dict[str, Any]:
        lie = self.lie if n >= self.lying_page else None
        if lie == "cycles_new_runs":
            # Fresh, properly ordered runs on every page, but the cursors go round.
            first = n * size
            items = [run_at(i) for i in range(first, first + size)]
            back = self.lying_page + (n - self.lying_page + 1) % self.cycle
            return {"items": items, "next_cursor": f"c{back}" if back != n + 1 else f"c{n + 1}"}
        first = n * size
        if lie == "cycles_same_runs":
            n_next = self.lying_page + (n - self.lying_page + 1) % self.cycle
            items = [run_at(i) for i in range(first, first + size)]
            return {"items": items, "next_cursor": f"c{n_next}"}
        items = [run_at(i) for i in range(first, min(self.total, first + size))]
        next_cursor = f"c{n + 1}" if first + size < self.total else None
        match lie:
            case "repeats_cursor":
                next_cursor = f"c{n}"
            case "repeats_a_run":
                items = [run_at(first - 1), *items[1:]] if n else [*items, items[0]][-size:]
            case "out_of_order":
                items = [run_at(first + size), *items]
                items = items[:size]
            case "too_many_items":
                items = [run_at(i) for i in range(first, first + size + 1)]
            case "empty_page_points_on":
                items, next_cursor = [], f"c{n + 1}"
        return {"items": items, "next_cursor": next_cursor}


async def walk_runs(lume: AsyncLume, size: int, server: CursorServer) -> None:
    async for _ in lume.runs.list(page_size=size):
        assert server.served < 500, "the listing loops"


@st.composite
def cursor_lies(draw: st.DrawFn) -> tuple[int, int, str, int, int]:
    lie = draw(st.sampled_from(CURSOR_LIES))
    size = draw(st.integers(2 if lie in ("repeats_a_run", "out_of_order") else 1, 10))
    lying_page = draw(st.integers(1 if lie == "repeats_a_run" else 0, 4))
    total = (lying_page + 2) * size
    cycle = draw(st.integers(1, 60))
    return total, size, lie, lying_page, cycle


@HOSTILE
@given(case=cursor_lies())
async def test_a_lying_cursor_listing_raises_instead_of_looping_or_repeating(
    scripted: ScriptedServer, scripted_lume: AsyncLume, case: tuple[int, int, str, int, int]
) -> None:
    total, size, lie, lying_page, cycle = case
    server = CursorServer(total, lie, lying_page, cycle)
    scripted.respond = server
    with pytest.raises(ResponseValidationError) as caught:
        await walk_runs(scripted_lume, size, server)
    assert caught.value.request_id == server.last_request_id


@HOSTILE
@given(total=st.integers(0, 80), size=st.integers(1, 15))
async def test_an_honest_cursor_listing_comes_whole_once_and_in_order(
    scripted: ScriptedServer, scripted_lume: AsyncLume, total: int, size: int
) -> None:
    scripted.respond = CursorServer(total, None, 0)
    runs = await scripted_lume.runs.list(page_size=size).collect()
    assert [run.id for run in runs] == [run_at(i)["id"] for i in range(total)]


async def test_runs_listed_oldest_first_must_not_go_back_in_time(
    scripted: ScriptedServer, scripted_lume: AsyncLume
) -> None:
    scripted.respond = CursorServer(10, None, 0)  # newest first, whatever was asked
    with pytest.raises(ResponseValidationError, match="out of ascending order"):
        await scripted_lume.runs.list(page_size=5, descending=False).collect()


# --- bounded memory -------------------------------------------------------------------------------


def test_the_cursors_and_ids_remembered_stay_bounded_on_an_endless_listing() -> None:
    checks: ListingChecks[int] = ListingChecks(page_size=2, item_id=lambda i: i)
    for n in range(5 * WINDOW):
        checks.cursor(Page(items=(2 * n, 2 * n + 1), next_cursor=f"c{n}"))
    assert len(checks._cursors) <= WINDOW
    assert len(checks._ids) <= WINDOW


def walk(checks: ListingChecks[Any], pages: list[Page[Any]]) -> None:
    for page in pages:
        checks.cursor(page)


def test_an_ordered_listing_catches_a_cycle_longer_than_any_window() -> None:
    # Fresh cursors and ids all along, but the runs' times come round again: caught by the order.
    checks: ListingChecks[tuple[int, int]] = ListingChecks(
        page_size=1, item_id=lambda item: item, ordered_by=lambda item: item[1], descending=True
    )
    pages = [
        Page(items=((n, -(n % (2 * WINDOW))),), next_cursor=f"c{n}") for n in range(3 * WINDOW)
    ]
    with pytest.raises(ResponseValidationError, match="out of descending order"):
        walk(checks, pages)


async def test_a_listing_resumed_from_a_cursor_follows_the_order_the_cursor_carries(
    scripted: ScriptedServer, scripted_lume: AsyncLume
) -> None:
    scripted.respond = CursorServer(20, None, 0)  # newest first: the cursor's own order
    runs = await scripted_lume.runs.list(page_size=5, cursor="c1", descending=False).collect()
    assert [run.id for run in runs] == [run_at(i)["id"] for i in range(5, 20)]


async def test_a_resumed_listing_that_turns_back_is_refused(
    scripted: ScriptedServer, scripted_lume: AsyncLume
) -> None:
    scripted.respond = CursorServer(40, "out_of_order", 3)
    with pytest.raises(ResponseValidationError, match="out of descending order"):
        await scripted_lume.runs.list(page_size=5, cursor="c1").collect()


# --- an honest service ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 100])
async def test_every_listing_of_the_emulator_passes_every_check(lume: AsyncLume, size: int) -> None:
    run = await lume.run(
        "customer_cleaner:v1", f"synthetic://honest-{size}?rows=30&reject_rate=0.2&duration=1"
    )
    await run.wait(timeout=60, poll_interval=0.02)
    await lume.webhook_endpoints.create("https://example.com/hooks")
    meta = run.metadata
    assert meta is not None and meta.results is not None
    assert len(await run.results(page_size=size).collect()) == meta.results.mapped_rows
    assert len(await run.rejects(page_size=size).collect()) == meta.results.rejected_rows
    assert len(await run.input(page_size=size).collect()) == 30
    assert await run.logs(page_size=size).collect()
    assert await lume.flows.list(page_size=size).collect()
    assert len(await lume.webhook_endpoints.list(page_size=size).collect()) == 1
    more = [
        RunRequest("customer_cleaner:v1", source_path=f"s3://bucket/honest-{size}-{i}")
        for i in range(11)
    ]
    created = [o.unwrap().id for o in await lume.runs.create_many(more, concurrency=1)]
    for descending in (True, False):
        runs = await lume.runs.list(page_size=size, descending=descending).collect()
        oldest_first = [run.id, *created]
        assert [r.id for r in runs] == (oldest_first[::-1] if descending else oldest_first)
