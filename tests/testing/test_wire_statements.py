"""WIRE.md, statement by statement: what the emulator serves and what the SDK makes of it."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio

# 50 tags of 64 characters, the most a run and a listing filter take; they do not compress.
LONG_TAGS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50)]
CURSOR_MAX = 4096  # the maxLength of the cursor parameter in openapi.json


class SteppedBackClock:
    """A virtual clock whose wall-clock reading can be stepped back, as NTP may step a host's."""

    def __init__(self) -> None:
        self.virtual = VirtualClock()
        self.back = 0.0

    def monotonic(self) -> float:
        return self.virtual.monotonic()

    def time(self) -> float:
        return self.virtual.time() - self.back

    async def sleep(self, seconds: float) -> None:
        await self.virtual.sleep(seconds)


async def test_a_listing_with_the_longest_filters_resumes_from_its_cursors() -> None:
    # "A cursor is opaque, carries its filters, and stays valid": every next_cursor must be one
    # the API takes back (at most 4096 characters), whatever the filters.
    clock = VirtualClock()
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        made = [
            (
                await lume.runs.create(
                    flow_version=CUSTOMERS, source_path=f"s3://bucket/{i}", tags=LONG_TAGS
                )
            ).id
            for i in range(3)
        ]
        listed = await lume.runs.list(tags=LONG_TAGS, page_size=1).collect()
    assert [run.id for run in listed] == made[::-1]


async def test_a_cursor_for_long_filters_fits_and_is_held_to_them(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    for i in range(3):
        body = {"flow_version": CUSTOMERS, "source_path": f"s3://bucket/{i}", "tags": LONG_TAGS}
        assert (await call(api, "POST", "/v1/runs", json=body))[0] == 201
    filters = [("tag", tag) for tag in LONG_TAGS]
    status, page = await call(api, "GET", "/v1/runs", params=[("size", "1"), *filters])
    assert status == 200, page
    cursor = page["next_cursor"]
    assert 0 < len(cursor) <= CURSOR_MAX
    seen = [page["items"][0]["id"]]
    while cursor is not None:
        query = [("size", "1"), ("cursor", cursor), *filters]
        status, page = await call(api, "GET", "/v1/runs", params=query)
        assert status == 200, page
        seen += [run["id"] for run in page["items"]]
        cursor = page["next_cursor"]
        assert cursor is None or len(cursor) <= CURSOR_MAX
    assert len(seen) == len(set(seen)) == 3
    # With other filters, the cursor is refused as any cursor given with other filters is.
    _, first = await call(api, "GET", "/v1/runs", params=[("size", "1"), *filters])
    other = [("size", "1"), ("cursor", first["next_cursor"]), *filters[:-1]]
    status, refused = await call(api, "GET", "/v1/runs", params=other)
    assert (status, refused["code"]) == (422, "cursor_mismatch")


async def test_runs_list_in_created_at_order_when_the_wall_clock_steps_back() -> None:
    # "keyset pagination on created_at (then id)": a run made after another is never listed as
    # created before it, or the listing's order (and the SDK's check of it) breaks.
    clock = SteppedBackClock()
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock.virtual) as lume,
    ):
        first = await lume.runs.create(flow_version=CUSTOMERS, source_path="s3://bucket/a")
        clock.back = 5.0
        second = await lume.runs.create(flow_version=CUSTOMERS, source_path="s3://bucket/b")
        assert second.created_at >= first.created_at
        listed = await lume.runs.list().collect()
        oldest_first = await lume.runs.list(descending=False).collect()
    assert [run.id for run in listed] == [second.id, first.id]
    assert [run.id for run in oldest_first] == [first.id, second.id]
