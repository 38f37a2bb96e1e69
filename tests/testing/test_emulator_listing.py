"""Listing runs: status words of every SDK, filters, and cursors that resume anywhere for 24 h."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = pytest.mark.anyio

Params = list[tuple[str, str]]


async def _create(api: aiohttp.ClientSession, path: str, **extra: Any) -> str:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path, **extra}
    )
    return str(run["id"])


async def _ids(api: aiohttp.ClientSession, params: Params) -> list[str]:
    status, page = await call(api, "GET", "/v1/runs", params=params)
    assert status == 200, page
    return [r["id"] for r in page["items"]]


async def _walk(api: aiohttp.ClientSession, params: Params, cursor: str | None = None) -> list[str]:
    seen: list[str] = []
    while True:
        query = params if cursor is None else [*params, ("cursor", cursor)]
        _, page = await call(api, "GET", "/v1/runs", params=query)
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_running_matches_the_three_working_states(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    # One second in, these are PENDING, SYNCING_SOURCE, TRANSFORMING, SYNCING_TARGET, SUCCEEDED.
    durations = (15, 5, 2, 1.1, 0.5)
    ids = [await _create(api, f"synthetic://r{d}?duration={d}") for d in durations]
    emu.advance(1)
    _, page = await call(api, "GET", "/v1/runs", params={"order": "asc"})
    assert [r["status"] for r in page["items"]] == [
        "PENDING",
        "SYNCING_SOURCE",
        "TRANSFORMING",
        "SYNCING_TARGET",
        "SUCCEEDED",
    ]
    assert await _ids(api, [("status", "RUNNING"), ("order", "asc")]) == ids[1:4]


async def test_incomplete_matches_partially_failed_runs(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    partial = await _create(api, "synthetic://p?reject_rate=0.3")
    await _create(api, "synthetic://ok")
    emu.advance(5)
    assert await _ids(api, [("status", "INCOMPLETE")]) == [partial]
    assert await _ids(api, [("status", "PARTIAL_FAILED")]) == [partial]


async def test_status_repeats_as_a_union(emu: Emulator, api: aiohttp.ClientSession) -> None:
    failed = await _create(api, "synthetic://f?outcome=FAILED")
    partial = await _create(api, "synthetic://p?reject_rate=0.3")
    await _create(api, "synthetic://ok")
    emu.advance(5)
    params = [("status", "FAILED"), ("status", "INCOMPLETE"), ("order", "asc")]
    assert await _ids(api, params) == [failed, partial]


async def test_source_path_filter_finds_every_run_of_a_path(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    first = await _create(api, "s3://bucket/a")
    await _create(api, "s3://bucket/b")
    emu.advance(5)
    again = await _create(api, "s3://bucket/a", force_rerun=True)
    assert await _ids(api, [("source_path", "s3://bucket/a")]) == [again, first]


async def test_a_saved_cursor_resumes_in_a_fresh_session(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    ids = [await _create(api, f"c{i}", label="job") for i in range(7)]
    await _create(api, "other")
    params = [("label", "job"), ("size", "3")]
    _, first = await call(api, "GET", "/v1/runs", params=params)
    saved = first["next_cursor"]
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as fresh:
        rest = await _walk(fresh, [("size", "3")], saved)  # the cursor carries its filters
        same = await _walk(fresh, params, saved)  # or they are given again
    assert [r["id"] for r in first["items"]] + rest == ids[::-1]
    assert rest == same


async def test_a_cursor_is_valid_in_another_emulator_process() -> None:
    async with Emulator() as one, Emulator() as two:
        cursors = []
        for emu in (one, two):
            async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api:
                for i in range(3):
                    await _create(api, f"x{i}")
                _, page = await call(api, "GET", "/v1/runs", params={"size": 1})
                cursors.append(page["next_cursor"])
        async with aiohttp.ClientSession(two.url, headers={"lume-api-key": two.api_key}) as api:
            status, page = await call(api, "GET", "/v1/runs", params={"cursor": cursors[0]})
        # Runs of ``two`` were made after the last run of ``one``'s page: none come before it.
        assert (status, page["items"]) == (200, [])


@pytest.mark.parametrize(
    "other",
    [
        [("label", "other")],
        [("order", "asc")],
        [("status", "FAILED")],
        [("tag", "t")],
        [("source_path", "c1")],
        [("created_after", "2020-01-01T00:00:00Z")],
    ],
)
async def test_a_cursor_with_other_filters_is_refused(
    api: aiohttp.ClientSession, other: Params
) -> None:
    for i in range(3):
        await _create(api, f"c{i}", label="job")
    _, page = await call(api, "GET", "/v1/runs", params=[("label", "job"), ("size", "1")])
    status, err = await call(
        api, "GET", "/v1/runs", params=[*other, ("cursor", page["next_cursor"])]
    )
    assert (status, err["code"]) == (422, "cursor_mismatch")
    assert err["detail"][0]["loc"] == ["query", other[0][0]]


@pytest.mark.parametrize("flip", [0, 5, -3])
async def test_a_damaged_cursor_is_refused(api: aiohttp.ClientSession, flip: int) -> None:
    for i in range(3):
        await _create(api, f"d{i}")
    _, page = await call(api, "GET", "/v1/runs", params={"size": 1})
    cursor = page["next_cursor"]
    damaged = cursor[:flip] + ("A" if cursor[flip] != "A" else "B") + cursor[flip + 1 :]
    status, err = await call(api, "GET", "/v1/runs", params={"cursor": damaged})
    assert (status, err["code"]) == (422, "validation_error")
    assert err["detail"][0]["loc"] == ["query", "cursor"]


async def test_a_cursor_expires_after_24_hours(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    for i in range(3):
        await _create(manual_api, f"e{i}")
    _, page = await call(manual_api, "GET", "/v1/runs", params={"size": 1})
    await clock.pass_time(24 * 3600)
    status, _ = await call(manual_api, "GET", "/v1/runs", params={"cursor": page["next_cursor"]})
    assert status == 200
    await clock.pass_time(1)
    status, err = await call(manual_api, "GET", "/v1/runs", params={"cursor": page["next_cursor"]})
    assert (status, err["code"]) == (422, "cursor_expired")


async def test_runs_that_change_status_while_iterating_are_neither_skipped_nor_repeated(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    ids = [await _create(api, f"synthetic://m{i}?duration={1 + i % 5}") for i in range(30)]
    seen: list[str] = []
    cursor = None
    while True:
        query: Params = [("size", "4")] + ([("cursor", cursor)] if cursor else [])
        _, page = await call(api, "GET", "/v1/runs", params=query)
        seen += [r["id"] for r in page["items"]]
        emu.advance(0.7)  # runs move on between pages
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


async def test_runs_list_pages_hold_100_runs_unless_asked(api: aiohttp.ClientSession) -> None:
    for i in range(101):
        await _create(api, f"h{i}")
    _, page = await call(api, "GET", "/v1/runs")
    assert len(page["items"]) == 100
    assert page["next_cursor"] is not None
