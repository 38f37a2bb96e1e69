"""Pagination: complete, in order, no duplicates, bounded read-ahead, connections released."""

from __future__ import annotations

import asyncio
import gc

import pytest

from lume_async import AsyncLume, AsyncPaginator, Page
from lume_async._connections import Connections

pytestmark = pytest.mark.anyio


class CountingPages:
    """Serves N numbered pages and records how many are in flight or alive at once."""

    def __init__(self, pages: int, size: int = 10) -> None:
        self.pages, self.size = pages, size
        self.in_flight = self.max_in_flight = 0
        self.requested: list[int] = []

    async def fetch(self, page: int) -> Page[int]:
        self.requested.append(page)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        start = (page - 1) * self.size
        items = tuple(range(start, start + self.size)) if page <= self.pages else ()
        return Page(
            items=items, page=page, size=self.size, total=self.pages * self.size, pages=self.pages
        )


async def test_numbered_pages_come_complete_and_in_order() -> None:
    source = CountingPages(pages=25)
    items = await AsyncPaginator(fetch_page=source.fetch, page_size=10).collect()
    assert items == list(range(250))
    assert sorted(source.requested) == list(range(1, 26))


async def test_read_ahead_is_bounded_while_the_caller_is_slow() -> None:
    source = CountingPages(pages=40)
    seen = 0
    async for page in AsyncPaginator(fetch_page=source.fetch, page_size=10, prefetch=3).pages():
        fetched_not_consumed = len(source.requested) - page.page
        assert fetched_not_consumed <= 3  # so at most prefetch + 1 pages are held
        await asyncio.sleep(0.001)  # a slow consumer gives read-ahead every chance to run away
        seen += 1
    assert seen == 40
    assert source.max_in_flight <= 3


async def test_read_ahead_stops_when_the_iteration_is_closed() -> None:
    source = CountingPages(pages=1000)
    tasks_before = asyncio.all_tasks()
    pages = AsyncPaginator(fetch_page=source.fetch, page_size=10, prefetch=2).pages()
    async for page in pages:
        if page.page == 3:
            break
    await pages.aclose()  # type: ignore[attr-defined]
    assert len(source.requested) <= 3 + 2
    assert asyncio.all_tasks() <= tasks_before


async def test_cursor_pages_follow_next_cursor_to_the_end() -> None:
    async def fetch(cursor: str | None) -> Page[int]:
        n = int(cursor or 0)
        return Page(items=(n, n + 1), next_cursor=str(n + 2) if n < 8 else None)

    assert await AsyncPaginator(fetch_cursor=fetch, page_size=2).collect() == list(range(10))


async def test_breaking_out_of_results_releases_the_connection(lume: AsyncLume) -> None:
    run = await lume.run("customer_cleaner:v1", "synthetic://big?rows=50000&duration=1")
    await run.wait(timeout=30, poll_interval=0.02)
    await asyncio.sleep(0.05)  # let the poller's task finish
    tasks_before = {t for t in asyncio.all_tasks() if "web_protocol" not in repr(t)}
    async for row in run.results(page_size=100):
        if row["full_name"] == "Customer 150":
            break
    gc.collect()  # the abandoned generator is garbage now
    for _ in range(5):  # and the loop's finaliser closes it on its next turns
        await asyncio.sleep(0)
    session = lume._core.transport.session
    assert isinstance(session, Connections)
    assert session.in_use == 0
    assert {t for t in asyncio.all_tasks() if "web_protocol" not in repr(t)} <= tasks_before


async def test_run_listing_is_stable_while_runs_are_created(lume: AsyncLume) -> None:
    before = [await lume.run("customer_cleaner:v1", f"s3://bucket/keep-{i}") for i in range(30)]
    seen: list[str] = []
    async for run in lume.runs.list(page_size=7):
        seen.append(run.id)
        await lume.run("customer_cleaner:v1", f"s3://bucket/new-{len(seen)}")  # lands ahead
    assert len(seen) == len(set(seen))
    assert set(seen) == {run.id for run in before}
