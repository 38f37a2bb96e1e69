from __future__ import annotations

import asyncio

import aiohttp
import pytest

from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = pytest.mark.anyio


async def test_rerun_of_a_succeeded_pair_is_409_with_the_existing_run(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://bucket/batch_001"}
    _, first = await call(api, "POST", "/v1/runs", json=body)
    emu.advance(5)
    status, err = await call(api, "POST", "/v1/runs", json=body)
    assert (status, err["code"], err["existing_run_id"]) == (
        409,
        "duplicate_source_path",
        first["id"],
    )
    assert emu.stats()["duplicate_creates_refused"] == 1


async def test_rerun_of_a_partially_failed_pair_is_409_too(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "synthetic://half?reject_rate=0.5"}
    _, first = await call(api, "POST", "/v1/runs", json=body)
    emu.advance(5)
    _, done = await call(api, "GET", f"/v1/runs/{first['id']}")
    assert done["status"] == "PARTIAL_FAILED"
    status, err = await call(api, "POST", "/v1/runs", json=body)
    assert (status, err["code"], err["existing_run_id"]) == (
        409,
        "duplicate_source_path",
        first["id"],
    )
    status, forced = await call(api, "POST", "/v1/runs", json={**body, "force_rerun": True})
    assert status == 201
    assert forced["id"] != first["id"]


@pytest.mark.parametrize(
    "path", ["synthetic://f?outcome=FAILED", "synthetic://c?outcome=CRASHED", "canceled-batch"]
)
async def test_a_pair_whose_runs_wrote_nothing_may_run_again(
    emu: Emulator, api: aiohttp.ClientSession, path: str
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": path}
    _, first = await call(api, "POST", "/v1/runs", json=body)
    if path == "canceled-batch":
        await call(api, "POST", f"/v1/runs/{first['id']}/cancel")
    emu.advance(5)
    _, done = await call(api, "GET", f"/v1/runs/{first['id']}")
    assert done["status"] in ("FAILED", "CRASHED", "CANCELED")
    status, again = await call(api, "POST", "/v1/runs", json=body)
    assert status == 201
    assert again["id"] != first["id"]


async def test_force_rerun_makes_a_new_run(emu: Emulator, api: aiohttp.ClientSession) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://bucket/batch_002"}
    _, first = await call(api, "POST", "/v1/runs", json=body)
    emu.advance(5)
    status, second = await call(api, "POST", "/v1/runs", json={**body, "force_rerun": True})
    assert status == 201
    assert second["id"] != first["id"]


async def test_create_for_a_pair_in_flight_returns_that_run(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://bucket/batch_003"}
    _, first = await call(api, "POST", "/v1/runs", json=body)
    status, again = await call(api, "POST", "/v1/runs", json=body)
    assert (status, again["id"]) == (200, first["id"])
    assert emu.stats()["runs_created"] == 1


async def test_same_idempotency_key_and_body_replays_without_new_work(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_data": [{"name": "a"}]}
    headers = {"Idempotency-Key": "create-1"}
    s1, r1 = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    s2, r2 = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert (s1, s2) == (201, 201)
    assert r1 == r2
    stats = emu.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 1)


async def test_same_key_with_another_body_is_422(api: aiohttp.ClientSession) -> None:
    headers = {"Idempotency-Key": "k"}
    await call(
        api,
        "POST",
        "/v1/runs",
        json={"flow_version": CUSTOMERS, "source_path": "a"},
        headers=headers,
    )
    status, err = await call(
        api,
        "POST",
        "/v1/runs",
        json={"flow_version": CUSTOMERS, "source_path": "b"},
        headers=headers,
    )
    assert (status, err["code"]) == (422, "idempotency_key_reused")


async def test_same_key_while_the_first_is_in_flight_is_409(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    manual.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=3))
    body = {"flow_version": CUSTOMERS, "source_path": "slow"}
    headers = {"Idempotency-Key": "slow-key"}
    first = asyncio.create_task(call(manual_api, "POST", "/v1/runs", json=body, headers=headers))
    await clock.wait_for_sleepers(1)  # the first request is held by its delay
    status, err = await call(manual_api, "POST", "/v1/runs", json=body, headers=headers)
    assert (status, err["code"]) == (409, "idempotency_in_flight")
    await clock.pass_time(3)
    assert (await first)[0] == 201


async def test_retry_after_an_after_phase_fault_gets_the_replay(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="after"))
    body = {"flow_version": CUSTOMERS, "source_path": "lost-answer"}
    headers = {"Idempotency-Key": "retry-me"}
    status, _ = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert status == 503
    emu.set_faults(None)
    status, run = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert status == 201
    stats = emu.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 1)
    _, listed = await call(api, "GET", "/v1/runs")
    assert [r["id"] for r in listed["items"]] == [run["id"]]


async def test_reset_connection_after_the_work_still_replays(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("reset",), phase="after"))
    body = {"flow_version": CUSTOMERS, "source_path": "reset-answer"}
    headers = {"Idempotency-Key": "reset-key"}
    with pytest.raises(aiohttp.ClientError):
        await call(api, "POST", "/v1/runs", json=body, headers=headers)
    emu.set_faults(None)
    status, _ = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert status == 201
    assert emu.stats()["runs_created"] == 1


async def test_idempotency_keys_are_forgotten_after_24_hours_of_the_clock(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "old"}
    first = {"flow_version": CUSTOMERS, "source_path": "a"}
    await call(manual_api, "POST", "/v1/runs", json=first, headers=headers)
    await clock.pass_time(24 * 3600 - 1)
    other = {"flow_version": CUSTOMERS, "source_path": "b"}
    status, err = await call(manual_api, "POST", "/v1/runs", json=other, headers=headers)
    assert (status, err["code"]) == (422, "idempotency_key_reused")
    await clock.pass_time(1)
    status, run = await call(manual_api, "POST", "/v1/runs", json=other, headers=headers)
    assert (status, run["source_path"]) == (201, "b")


async def test_skipping_run_time_does_not_expire_idempotency_keys(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "kept"}
    body = {"flow_version": CUSTOMERS, "source_path": "kept"}
    _, first = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    emu.advance(48 * 3600)
    status, again = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert (status, again) == (201, first)


@pytest.mark.parametrize(
    "key", ["has space", "", "x" * 256, "tab\there", "caf\u00e9", "\u00ff" * 3]
)
async def test_malformed_idempotency_keys_are_422_naming_the_header(
    api: aiohttp.ClientSession, key: str
) -> None:
    headers = {"Idempotency-Key": key}
    body = {"flow_version": CUSTOMERS, "source_path": "k"}
    status, err = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert (status, err["code"]) == (422, "validation_error")
    assert err["detail"][0]["loc"] == ["header", "Idempotency-Key"]


@pytest.mark.parametrize("key", ["a", "~" * 255, "!#$%&'*+-.^_`|", "nightly-2026-11-28/0007"])
async def test_printable_ascii_keys_up_to_255_characters_are_accepted(
    api: aiohttp.ClientSession, key: str
) -> None:
    headers = {"Idempotency-Key": key}
    body = {"flow_version": CUSTOMERS, "source_path": "k"}
    status, _ = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert status == 201
