"""Time: runs progress on the clock, timestamps are wall-clock time and never in the future."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = pytest.mark.anyio


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _wall(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.time(), UTC)


async def test_timestamps_stay_wall_clock_time_under_a_time_scale() -> None:
    async with (
        Emulator(time_scale=1000) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        before = datetime.now(UTC)
        body = {"flow_version": CUSTOMERS, "source_path": "synthetic://t?duration=50"}
        _, run = await call(api, "POST", "/v1/runs", json=body)
        emu.advance(60)
        _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
        now = datetime.now(UTC)
        meta = done["metadata"]
        assert done["status"] == "SUCCEEDED"
        assert before <= _at(done["created_at"]) <= _at(done["updated_at"]) <= now
        assert _at(meta["pipeline"]["completed_at"]) <= now
        assert meta["pipeline"]["duration_seconds"] == 50.0  # durations are run time


async def test_created_before_now_finds_the_runs_just_made() -> None:
    async with (
        Emulator(time_scale=100) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        ids = []
        for i in range(3):
            _, run = await call(
                api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": f"n{i}"}
            )
            ids.append(run["id"])
        emu.advance(3600)
        now = datetime.now(UTC).isoformat()
        _, page = await call(api, "GET", "/v1/runs", params={"created_before": now})
        assert [r["id"] for r in page["items"]] == ids[::-1]
        _, page = await call(api, "GET", "/v1/runs", params={"created_after": now})
        assert page["items"] == []


async def test_created_filters_split_exactly_at_a_runs_own_created_at(
    api: aiohttp.ClientSession,
) -> None:
    runs = []
    for i in range(3):
        _, run = await call(
            api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": f"s{i}"}
        )
        runs.append(run)
    split = runs[1]["created_at"]
    _, before = await call(api, "GET", "/v1/runs", params={"created_before": split})
    _, after = await call(api, "GET", "/v1/runs", params={"created_after": split})
    assert [r["id"] for r in before["items"]] == [runs[0]["id"]]
    assert [r["id"] for r in after["items"]] == [runs[2]["id"], runs[1]["id"]]


async def test_runs_progress_on_the_injected_clock(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "synthetic://m?duration=10"}
    _, run = await call(manual_api, "POST", "/v1/runs", json=body)
    assert _at(run["created_at"]) == _wall(clock)
    seen = []
    for _ in range(4):
        await clock.pass_time(3)
        _, now = await call(manual_api, "GET", f"/v1/runs/{run['id']}")
        seen.append((now["status"], now["updated_at"]))
    assert [status for status, _ in seen] == [
        "SYNCING_SOURCE",
        "TRANSFORMING",
        "SYNCING_TARGET",
        "SUCCEEDED",
    ]
    # Each transition happened at the wall time run time reached it: 1, 4, 8 and 10 s in.
    created = clock.time() - 12
    assert [_at(u).timestamp() - created for _, u in seen] == [1.0, 4.0, 8.0, 10.0]


async def test_advance_skips_run_time_without_moving_timestamps(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "synthetic://a?duration=600"}
    _, run = await call(manual_api, "POST", "/v1/runs", json=body)
    await clock.pass_time(2)
    manual.advance(600)
    _, done = await call(manual_api, "GET", f"/v1/runs/{run['id']}")
    assert done["status"] == "SUCCEEDED"
    assert _at(done["updated_at"]) == _wall(clock)
    assert done["metadata"]["pipeline"]["duration_seconds"] == 600.0


async def test_a_time_scale_scales_run_time_on_the_injected_clock(clock: ManualClock) -> None:
    async with (
        Emulator(clock=clock, time_scale=60) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        body = {"flow_version": CUSTOMERS, "source_path": "synthetic://s?duration=120"}
        _, run = await call(api, "POST", "/v1/runs", json=body)
        await clock.pass_time(1.9)
        _, mid = await call(api, "GET", f"/v1/runs/{run['id']}")
        await clock.pass_time(0.1)
        _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
        assert (mid["status"], done["status"]) == ("SYNCING_TARGET", "SUCCEEDED")
        assert _at(done["updated_at"]).timestamp() - _at(done["created_at"]).timestamp() == 2.0


async def test_updated_at_moves_with_a_patch(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "p"}
    _, run = await call(manual_api, "POST", "/v1/runs", json=body)
    await clock.pass_time(0.01)
    _, patched = await call(manual_api, "PATCH", f"/v1/runs/{run['id']}", json={"label": "x"})
    assert _at(patched["updated_at"]) == _wall(clock) > _at(run["updated_at"])


def test_a_clock_must_follow_the_clock_protocol() -> None:
    with pytest.raises(TypeError, match="clock"):
        Emulator(clock=object())  # type: ignore[arg-type]
