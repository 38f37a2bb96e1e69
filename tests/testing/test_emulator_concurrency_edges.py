"""The emulator under concurrent and repeated requests, and at the edges of its clock.

Requests race over real sockets; orderings that matter are fixed with events and the manual
clock, never with real sleeps. Changes made at one instant of a clock that does not move (a
virtual clock, or ``advance()``, which skips run time at one wall-clock instant) leave
``updated_at`` where it was, so ``batch-get`` must not call such a run unchanged for the
``known`` instant it had before: the SDK's poller trusts that answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lume_async import AsyncLume, RunStatus
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = pytest.mark.anyio

BATCH_GET = "/v1/runs/batch-get"
LONG = "synthetic://long?duration=1000000"


async def _create(api: aiohttp.ClientSession, path: str, **extra: Any) -> dict[str, Any]:
    status, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path, **extra}
    )
    assert status == 201, run
    return dict(run)


async def _known(api: aiohttp.ClientSession, run: dict[str, Any]) -> dict[str, Any]:
    """batch-get of ``run`` naming the ``updated_at`` held of it."""
    body = {"ids": [run["id"]], "known": {run["id"]: run["updated_at"]}}
    status, answer = await call(api, "POST", BATCH_GET, json=body)
    assert status == 200, answer
    return dict(answer)


# -- changes at one instant of the clock are not hidden by ``known`` -----------------------------


async def test_a_cancel_at_the_instant_of_the_create_is_not_called_unchanged(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    run = await _create(manual_api, "same-instant")
    status, canceled = await call(manual_api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, canceled["status"]) == (200, "CANCELED")

    answer = await _known(manual_api, run)

    assert answer["unchanged"] == []
    assert [item["status"] for item in answer["items"]] == ["CANCELED"]


async def test_each_stage_reached_by_advance_at_one_instant_is_sent(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    run = await _create(manual_api, "synthetic://stages?duration=10")
    seen = [run]
    for step in (0.6, 1.0, 3.0, 4.0, 2.0):  # to 0.6, 1.6, 4.6, 8.6 and 10.6 of 10 seconds
        manual.advance(step)
        answer = await _known(manual_api, seen[-1])
        assert answer["unchanged"] == [], seen[-1]["status"]
        seen.append(answer["items"][0])
    statuses = [r["status"] for r in seen]
    assert statuses == [
        "CREATED",
        "PENDING",
        "SYNCING_SOURCE",
        "TRANSFORMING",
        "SYNCING_TARGET",
        "SUCCEEDED",
    ]


async def test_a_patch_at_the_instant_of_the_create_is_not_called_unchanged(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    run = await _create(manual_api, LONG)
    status, _ = await call(manual_api, "PATCH", f"/v1/runs/{run['id']}", json={"label": "a"})
    assert status == 200

    answer = await _known(manual_api, run)

    assert [item["label"] for item in answer["items"]] == ["a"]


@pytest.fixture
async def vclock_lume() -> AsyncIterator[tuple[Emulator, AsyncLume]]:
    """An emulator and a client sharing one virtual clock (the documented way to test)."""
    clock = VirtualClock()
    async with (
        Emulator(clock=clock) as emulator,
        AsyncLume(api_key=emulator.api_key, base_url=emulator.url, clock=clock) as client,
    ):
        yield emulator, client


@pytest.mark.parametrize("how", ["advance", "cancel-by-id"])
async def test_wait_sees_a_run_that_ended_without_virtual_time_passing(
    vclock_lume: tuple[Emulator, AsyncLume], how: str
) -> None:
    emu, lume = vclock_lume
    run = await lume.run(CUSTOMERS, "synthetic://w?duration=10")
    if how == "advance":
        emu.advance(20)
        ended = RunStatus.SUCCEEDED
    else:
        await lume.runs.cancel(run.id)  # another handle; ``run`` still holds CREATED
        ended = RunStatus.CANCELED

    [done] = await lume.runs.wait_all([run], timeout=60, poll_interval=1)

    assert done.status is ended


# -- batch-get -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_known_timestamp_outside_the_datetime_range_just_sends_the_run(
    emu: Emulator, api: aiohttp.ClientSession, value: str
) -> None:
    run = await _create(api, LONG)
    body = {"ids": [run["id"]], "known": {run["id"]: value}}

    status, answer = await call(api, "POST", BATCH_GET, json=body)

    assert status == 200, answer
    assert (answer["unchanged"], [item["id"] for item in answer["items"]]) == ([], [run["id"]])


async def test_batch_get_names_each_id_once_and_hides_other_tenants_runs(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    mine = await _create(api, LONG)
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.add_tenant()}) as other:
        theirs = await _create(other, LONG)
    ids = [mine["id"], theirs["id"]] * 50

    status, answer = await call(api, "POST", BATCH_GET, json={"ids": ids})
    assert status == 200
    assert ([item["id"] for item in answer["items"]], answer["missing"]) == (
        [mine["id"]],
        [theirs["id"]],
    )
    status, err = await call(api, "POST", BATCH_GET, json={"ids": [*ids, mine["id"]]})
    assert (status, err["code"], err["detail"][0]["loc"]) == (
        422,
        "validation_error",
        ["body", "ids"],
    )


# -- concurrent creates ----------------------------------------------------------------------------


async def test_concurrent_creates_with_one_key_make_one_run(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_data": [{"name": "a"}]}
    headers = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(call(api, "POST", "/v1/runs", json=body, headers=headers) for _ in range(40))
    )
    assert Counter(status for status, _ in answers) == Counter({201: 40})
    assert len({run["id"] for _, run in answers}) == 1
    stats = emu.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 39)


async def test_a_key_in_flight_is_409_for_its_body_and_422_for_another(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    manual.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=3))
    body = {"flow_version": CUSTOMERS, "source_path": "held"}
    headers = {"Idempotency-Key": "held-key"}
    first = asyncio.create_task(call(manual_api, "POST", "/v1/runs", json=body, headers=headers))
    await clock.wait_for_sleepers(2)  # the run's end, and the answer held after the work
    again = await asyncio.gather(
        *(call(manual_api, "POST", "/v1/runs", json=body, headers=headers) for _ in range(5)),
        call(manual_api, "POST", "/v1/runs", json={**body, "label": "x"}, headers=headers),
    )
    assert [(s, err["code"]) for s, err in again] == [(409, "idempotency_in_flight")] * 5 + [
        (422, "idempotency_key_reused")
    ]
    await clock.pass_time(3)
    status, run = await first
    assert status == 201
    manual.set_faults(None)
    assert await call(manual_api, "POST", "/v1/runs", json=body, headers=headers) == (201, run)
    assert manual.stats()["runs_created"] == 1


async def test_concurrent_creates_of_one_pair_make_one_run_in_flight(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://bucket/shared"}
    answers = await asyncio.gather(*(call(api, "POST", "/v1/runs", json=body) for _ in range(40)))
    assert Counter(status for status, _ in answers) == Counter({201: 1, 200: 39})
    assert len({run["id"] for _, run in answers}) == 1
    assert emu.stats()["runs_created"] == 1


# -- listing and cursors ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_listing_at_one_instant_with_inserts_between_pages_skips_and_repeats_nothing(
    manual: Emulator, manual_api: aiohttp.ClientSession, order: str
) -> None:
    before = [(await _create(manual_api, f"tie-{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"size": 2, "order": order}
    while True:
        status, page = await call(manual_api, "GET", "/v1/runs", params=params)
        assert status == 200, page
        seen += [run["id"] for run in page["items"]]
        assert {run["created_at"] for run in page["items"]} <= {page["items"][0]["created_at"]}
        await _create(manual_api, f"inserted-{len(seen)}")  # same created_at as every other
        if page["next_cursor"] is None:
            break
        params = {"cursor": page["next_cursor"], "size": 2}
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    if order == "desc":
        assert seen == sorted(before, reverse=True)  # runs made meanwhile are newer
    else:
        assert seen[:5] == before
        assert seen == sorted(seen)


async def test_a_cursor_stays_valid_for_the_whole_24_hours() -> None:
    clock = ManualClock(wall=1_800_000_000.75)
    async with (
        Emulator(clock=clock) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        for i in range(2):
            await _create(api, f"c{i}")
        _, page = await call(api, "GET", "/v1/runs", params={"size": 1})
        cursor = page["next_cursor"]
        await clock.pass_time(24 * 3600 - 0.5)
        status, later = await call(api, "GET", "/v1/runs", params={"cursor": cursor})
        assert status == 200, later
        await clock.pass_time(1)
        status, err = await call(api, "GET", "/v1/runs", params={"cursor": cursor})
        assert (status, err["code"]) == (422, "cursor_expired")


# -- rate limiting ---------------------------------------------------------------------------------


async def test_a_burst_gets_exactly_the_bucket_and_retry_after_is_honest(
    clock: ManualClock,
) -> None:
    async with (
        Emulator(clock=clock, rate_limit=10, rate_burst=5) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):

        async def burst() -> Counter[tuple[int, str | None, str | None]]:
            async def one() -> tuple[int, str | None, str | None]:
                async with api.get("/v1/flows") as resp:
                    await resp.read()
                    headers = resp.headers
                    return resp.status, headers.get("Retry-After"), headers.get("retry-after-ms")

            return Counter(await asyncio.gather(*(one() for _ in range(20))))

        assert await burst() == Counter({(200, None, None): 5, (429, "1", "100"): 15})
        await clock.pass_time(0.1)  # what retry-after-ms asked for: one token
        assert await burst() == Counter({(200, None, None): 1, (429, "1", "100"): 19})


# -- webhooks --------------------------------------------------------------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_a_redirect_is_a_failed_delivery_that_is_retried(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str, bytes]] = []
    second = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, await request.read()))
        if len(seen) == 1:
            raise web.HTTPFound("/landing")
        second.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_route("*", "/landing", hook)
    runner, base = await _serve(app)
    try:
        await call(api, "POST", "/v1/webhooks", json={"url": f"{base}/hook"})
        run = await _create(api, LONG)
        await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
        await asyncio.wait_for(second.wait(), 10)
    finally:
        await runner.cleanup()
    assert [(method, path) for method, path, _ in seen] == [("POST", "/hook")] * 2
    assert seen[0][2] == seen[1][2]


async def test_a_hung_receiver_does_not_hold_back_another_tenants_events(emu: Emulator) -> None:
    entered = 0
    all_held = asyncio.Event()
    release = asyncio.Event()
    got = asyncio.Event()

    async def hung(request: web.Request) -> web.Response:
        nonlocal entered
        entered += 1
        if entered == 50:
            all_held.set()
        await release.wait()
        return web.Response(status=204)

    async def healthy(request: web.Request) -> web.Response:
        got.set()
        return web.Response(status=204)

    slow_app, fast_app = web.Application(), web.Application()
    slow_app.router.add_post("/hook", hung)
    fast_app.router.add_post("/hook", healthy)
    slow, slow_base = await _serve(slow_app)
    fast, fast_base = await _serve(fast_app)
    try:
        async with (
            aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as a,
            aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.add_tenant()}) as b,
        ):
            await call(a, "POST", "/v1/webhooks", json={"url": f"{slow_base}/hook"})
            await call(b, "POST", "/v1/webhooks", json={"url": f"{fast_base}/hook"})
            for i in range(50):
                run = await _create(a, f"synthetic://hung-{i}?duration=1000000")
                await call(a, "POST", f"/v1/runs/{run['id']}/cancel")
            await asyncio.wait_for(all_held.wait(), 10)  # 50 deliveries hang in the receiver
            run = await _create(b, LONG)
            await call(b, "POST", f"/v1/runs/{run['id']}/cancel")
            # Delivered at once when it has a connection of its own; ~5 s (the delivery
            # timeout) when it queues behind the hung ones.
            await asyncio.wait_for(got.wait(), 3)
    finally:
        release.set()
        await fast.cleanup()
        await slow.cleanup()
