"""``POST /v1/runs/batch-create``: each item is the ``POST /v1/runs`` of its ``run`` with its
``idempotency_key`` as the ``Idempotency-Key`` header, answered in a 200 with one result per item.

Every test runs against an emulator on a real socket whose time is a ``ManualClock``: runs move
only when a test calls ``advance()``, so a run a test expects in flight stays in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

BATCH = "/v1/runs/batch-create"


def item(key: str, **run: Any) -> dict[str, Any]:
    """A batch item whose run is of ``CUSTOMERS`` unless ``run`` says otherwise."""
    return {"idempotency_key": key, "run": {"flow_version": CUSTOMERS, **run}}


async def batch(
    session: aiohttp.ClientSession, *items: dict[str, Any], **kwargs: Any
) -> tuple[int, Any]:
    return await call(session, "POST", BATCH, json={"items": list(items)}, **kwargs)


async def results(session: aiohttp.ClientSession, *items: dict[str, Any]) -> list[dict[str, Any]]:
    """The results of a batch that must be answered 200, one per item."""
    status, body = await batch(session, *items)
    assert status == 200, body
    assert set(body) == {"results"}
    out: list[dict[str, Any]] = body["results"]
    assert len(out) == len(items)
    for result in out:  # a run or an error, never both; replayed only when true
        assert ("run" in result) != ("error" in result), result
        assert ("run" in result) == (result["status"] in (200, 201)), result
        assert result.get("replayed", True) is True, result
    return out


async def single(
    session: aiohttp.ClientSession, body: dict[str, Any], key: str | None = None
) -> tuple[int, Any, str | None]:
    """``POST /v1/runs``: status, JSON body and the ``idempotent-replayed`` header."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    async with session.post("/v1/runs", json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.get("idempotent-replayed")


def same_error(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two error bodies alike but for their error_id (one per answer)."""
    return {**a, "error_id": None} == {**b, "error_id": None}


async def run_ids(session: aiohttp.ClientSession) -> list[str]:
    status, page = await call(session, "GET", "/v1/runs", params={"order": "asc"})
    assert status == 200
    return [run["id"] for run in page["items"]]


# -- what each item answers ------------------------------------------------------------------------


async def test_each_item_answers_as_its_single_create_in_item_order(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    status, done, _ = await single(manual_api, {"flow_version": CUSTOMERS, "source_path": "done"})
    assert status == 201
    manual.advance(5)  # "done" SUCCEEDED: running it again is a 409 naming it
    out = await results(
        manual_api,
        item("new", source_path="s3://new"),
        item("same-pair", source_path="s3://new"),
        item("unknown-flow", flow_version="missing_flow:v9", source_path="x"),
        item("invalid", source_path="x", label="x" * 257),
        item("again", source_path="done"),
        item("inline", source_data=[{"name": "a"}, {"name": "b"}]),
    )
    assert [r["status"] for r in out] == [201, 200, 404, 422, 409, 201]
    new = out[0]["run"]
    assert (new["status"], new["source_path"]) == ("CREATED", "s3://new")
    assert out[1]["run"]["id"] == new["id"]  # the pair in flight: that run, not another
    assert out[2]["error"]["code"] == "not_found"
    assert out[3]["error"]["code"] == "validation_error"
    assert [issue["loc"] for issue in out[3]["error"]["detail"]] == [["body", "label"]]
    assert out[4]["error"]["code"] == "duplicate_source_path"
    assert out[4]["error"]["existing_run_id"] == done["id"]
    assert (out[5]["run"]["status"], out[5]["run"]["source_path"]) == ("CREATED", None)
    assert not any("replayed" in r for r in out)
    stats = manual.stats()
    assert (stats["runs_created"], stats["duplicate_creates_refused"]) == (3, 1)


@pytest.mark.parametrize(
    "run",
    [
        {"flow_version": "missing_flow:v9", "source_path": "x"},
        {"flow_version": "not a version", "source_path": "x"},
        {"flow_version": CUSTOMERS},
        {"flow_version": CUSTOMERS, "source_path": "x", "source_data": []},
        {"flow_version": CUSTOMERS, "source_path": "", "tags": ["", "t" * 65], "extra": 1},
        {"flow_version": CUSTOMERS, "source_path": "x", "run_owner": ""},
        {"source_path": "x"},
    ],
)
async def test_a_failed_item_carries_the_body_the_single_create_answers(
    manual_api: aiohttp.ClientSession, run: dict[str, Any]
) -> None:
    [result] = await results(manual_api, {"idempotency_key": "batch", "run": run})
    status, error, _ = await single(manual_api, run, key="single")
    assert result["status"] == status
    assert same_error(result["error"], error), (result["error"], error)


async def test_items_act_as_the_batchs_principal(manual: Emulator) -> None:
    ana_key = manual.add_principal("ana@example.com")
    bo_key = manual.add_principal("bo@example.com")
    async with (
        aiohttp.ClientSession(manual.url, headers={"lume-api-key": ana_key}) as ana,
        aiohttp.ClientSession(manual.url, headers={"lume-api-key": bo_key}) as bo,
    ):
        mine, given = await results(
            ana,
            item("ana-1", source_path="p"),
            item("ana-2", source_path="q", run_owner="bo@example.com"),
        )
        assert (mine["run"]["created_by"], mine["run"]["run_owner"]) == ("ana@example.com",) * 2
        assert (given["run"]["created_by"], given["run"]["run_owner"]) == (
            "ana@example.com",
            "bo@example.com",
        )
        # bo may not read ana's run in flight: a 409 that names no run, as the single says.
        hidden, same_key = await results(
            bo, item("bo-1", source_path="p"), item("ana-1", source_path="p")
        )
        status, error, _ = await single(bo, {"flow_version": CUSTOMERS, "source_path": "p"}, "bo-2")
        assert (hidden["status"], status) == (409, 409)
        assert hidden["error"]["code"] == "duplicate_source_path"
        assert "existing_run_id" not in hidden["error"]
        assert same_error(hidden["error"], error)
        # Keys are the tenant's, requests the principal's: ana's key from bo is another request.
        assert (same_key["status"], same_key["error"]["code"]) == (422, "idempotency_key_reused")
        assert await run_ids(bo) == [given["run"]["id"]]  # bo reads only the run it owns


# -- idempotency -----------------------------------------------------------------------------------


async def test_a_key_twice_in_one_batch_replays_or_is_refused_for_that_item_only(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    out = await results(
        manual_api,
        item("dup", source_path="a"),
        item("dup", source_path="a"),
        item("dup", source_path="b"),
        item("other", source_path="c"),
    )
    assert [r["status"] for r in out] == [201, 201, 422, 201]
    assert out[1] == {"status": 201, "run": out[0]["run"], "replayed": True}
    assert out[2]["error"]["code"] == "idempotency_key_reused"
    assert "replayed" not in out[3]
    stats = manual.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (2, 1)


async def test_a_second_batch_replays_what_was_remembered(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    items = (
        item("k-new", source_path="a"),
        item("k-404", flow_version="missing_flow:v9", source_path="a"),
        item("k-422", source_path="a", source_data=[]),
    )
    first = await results(manual_api, *items)
    manual.advance(5)  # "a" ended: a new create of it would now be a 409
    second = await results(manual_api, *items)
    assert second[0] == {**first[0], "replayed": True}  # the same run, as of its creation
    assert second[1] == {**first[1], "replayed": True}  # the same bytes: the same error_id
    # A 422 is not remembered (as on POST /v1/runs): validated afresh, a new error_id.
    assert "replayed" not in second[2]
    assert same_error(second[2]["error"], first[2]["error"])
    assert second[2]["error"]["error_id"] != first[2]["error"]["error_id"]
    stats = manual.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 2)


async def test_a_batch_item_and_a_single_create_replay_each_other(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://one", "tags": ["x"]}
    [made] = await results(manual_api, {"idempotency_key": "b-then-s", "run": body})
    # Keys in another order and other spacing: the same JSON body, the same request.
    status, run, replayed = await single(manual_api, dict(reversed(body.items())), "b-then-s")
    assert (status, run, replayed) == (201, made["run"], "true")
    status, error, replayed = await single(manual_api, {**body, "tags": ["y"]}, "b-then-s")
    assert (status, error["code"], replayed) == (422, "idempotency_key_reused", None)

    status, first, _ = await single(manual_api, {**body, "source_path": "s3://two"}, "s-then-b")
    assert status == 201
    replay, other = await results(
        manual_api,
        item("s-then-b", source_path="s3://two", tags=["x"]),
        item("s-then-b", source_path="s3://three"),
    )
    assert replay == {"status": 201, "run": first, "replayed": True}
    assert (other["status"], other["error"]["code"]) == (422, "idempotency_key_reused")

    # An error is remembered as its bytes: the single replay is that very error.
    [refused] = await results(manual_api, item("b-404", flow_version="gone:v1", source_path="a"))
    status, error, replayed = await single(
        manual_api, {"flow_version": "gone:v1", "source_path": "a"}, "b-404"
    )
    assert (status, error, replayed) == (404, refused["error"], "true")
    stats = manual.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (2, 3)
    assert await run_ids(manual_api) == [made["run"]["id"], first["id"]]


async def test_a_key_still_in_flight_is_409_for_that_item(
    clock: ManualClock, manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    manual.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=3))
    body = {"flow_version": CUSTOMERS, "source_path": "slow"}
    held = asyncio.create_task(single(manual_api, body, "slow-key"))
    await clock.wait_for_sleepers(1)  # the single create is held, its key in flight
    manual.set_faults(None)
    busy, free = await results(
        manual_api, item("slow-key", source_path="slow"), item("free", source_path="fast")
    )
    assert (busy["status"], busy["error"]["code"]) == (409, "idempotency_in_flight")
    assert free["status"] == 201
    await clock.pass_time(3)
    status, run, _ = await held
    assert status == 201
    [replay] = await results(manual_api, item("slow-key", source_path="slow"))
    assert replay == {"status": 201, "run": run, "replayed": True}
    assert manual.stats()["runs_created"] == 2


@pytest.mark.parametrize(
    "key", ["has space", "", "x" * 256, "tab\there", "caf\u00e9", "\u00ff" * 3]
)
async def test_a_malformed_key_fails_its_item_only(
    manual: Emulator, manual_api: aiohttp.ClientSession, key: str
) -> None:
    items = (
        item("ok-1", source_path="a"),
        item(key, source_path="b"),
        item("ok-2", source_path="c"),
    )
    before, bad, after = await results(manual_api, *items)
    assert (before["status"], after["status"]) == (201, 201)
    assert (bad["status"], bad["error"]["code"]) == (422, "validation_error")
    assert [issue["loc"] for issue in bad["error"]["detail"]] == [
        ["body", "items", 1, "idempotency_key"]
    ]
    # Nothing was remembered under it: the same item fails the same way again.
    [again] = await results(manual_api, item(key, source_path="other"))
    assert again["error"]["code"] == "validation_error"
    assert manual.stats()["runs_created"] == 2


# -- the request as a whole ------------------------------------------------------------------------

_OK = item("fine", source_path="fine")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"items": []}, ["body", "items"]),
        ({"items": [item(f"k{i}", source_path=f"p{i}") for i in range(101)]}, ["body", "items"]),
        ({}, ["body", "items"]),
        ({"items": _OK}, ["body", "items"]),
        ({"items": [_OK], "atomic": True}, ["body", "atomic"]),
        ({"items": [_OK, "x"]}, ["body", "items", 1]),
        ({"items": [_OK, {**_OK, "force": True}]}, ["body", "items", 1, "force"]),
        ({"items": [_OK, {"run": _OK["run"]}]}, ["body", "items", 1, "idempotency_key"]),
        ({"items": [_OK, {"idempotency_key": "k"}]}, ["body", "items", 1, "run"]),
        ({"items": [_OK, {**_OK, "idempotency_key": 7}]}, ["body", "items", 1, "idempotency_key"]),
        (
            {"items": [_OK, {**_OK, "idempotency_key": None}]},
            ["body", "items", 1, "idempotency_key"],
        ),
        ({"items": [_OK, {"idempotency_key": "k", "run": []}]}, ["body", "items", 1, "run"]),
        ({"items": [_OK, {"idempotency_key": "k", "run": "x"}]}, ["body", "items", 1, "run"]),
        ([_OK], ["body"]),
    ],
)
async def test_a_malformed_envelope_is_a_422_for_the_whole_request(
    manual: Emulator, manual_api: aiohttp.ClientSession, body: Any, loc: list[str | int]
) -> None:
    status, error = await call(manual_api, "POST", BATCH, json=body)
    assert (status, error["code"]) == (422, "validation_error")
    assert [issue["loc"] for issue in error["detail"]] == [loc]
    assert set(error) == {"detail", "error_id", "code"}
    assert manual.stats()["runs_created"] == 0  # not even the valid items


@pytest.mark.parametrize("raw", [b"", b"{", b"items"])
async def test_a_body_that_is_not_json_is_a_422(
    manual_api: aiohttp.ClientSession, raw: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    status, error = await call(manual_api, "POST", BATCH, data=raw, headers=headers)
    assert (status, error["code"], error["detail"][0]["loc"]) == (422, "validation_error", ["body"])


@pytest.mark.parametrize("kind", ["503", "reset", "truncate"])
async def test_a_batch_whose_answer_was_lost_is_retried_without_creating_twice(
    manual: Emulator, manual_api: aiohttp.ClientSession, kind: str
) -> None:
    items = [item(f"lost-{i}", source_path=f"s3://lost/{i}") for i in range(5)]
    items.append(item("lost-404", flow_version="missing_flow:v9", source_path="x"))
    manual.set_faults(FaultProfile(rate=1.0, kinds=(kind,), phase="after"))
    try:
        status, _ = await batch(manual_api, *items)
    except aiohttp.ClientError:
        status = 0
    assert status == (503 if kind == "503" else 0)
    assert manual.stats()["runs_created"] == 5  # the work was done, the answer lost
    manual.set_faults(None)
    out = await results(manual_api, *items)
    assert [(r["status"], r.get("replayed")) for r in out] == [(201, True)] * 5 + [(404, True)]
    ids = [r["run"]["id"] for r in out[:5]]
    assert await run_ids(manual_api) == ids
    # An item resent on its own, as a single create with its key, is the same request too.
    status, run, replayed = await single(manual_api, items[2]["run"], "lost-2")
    assert (status, run["id"], replayed) == (201, ids[2], "true")
    assert manual.stats()["runs_created"] == 5


async def test_a_fault_before_the_work_creates_nothing(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    manual.set_faults(FaultProfile(rate=1.0, kinds=("500",), phase="before"))
    status, error = await batch(manual_api, item("early", source_path="e"))
    assert (status, error["code"]) == (500, "internal")
    manual.set_faults(None)
    [made] = await results(manual_api, item("early", source_path="e"))
    assert (made["status"], "replayed" in made) == (201, False)
    assert manual.stats()["runs_created"] == 1


async def test_an_idempotency_key_header_replays_the_whole_batch(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    body = {"items": [item("inner-1", source_path="a"), item("inner-2", source_path="b")]}
    headers = {"Idempotency-Key": "whole-batch"}
    answers = []
    for _ in range(2):
        async with manual_api.post(BATCH, json=body, headers=headers) as resp:
            answers.append(
                (resp.status, await resp.read(), resp.headers.get("idempotent-replayed"))
            )
    (s1, b1, r1), (s2, b2, r2) = answers
    assert (s1, s2, r1, r2) == (200, 200, None, "true")
    assert b1 == b2  # the batch's own first answer, byte for byte
    stats = manual.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (2, 1)


async def test_a_batch_takes_one_token_of_the_rate_limit(clock: ManualClock) -> None:
    async with (
        Emulator(clock=clock, rate_limit=1, rate_burst=1) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        out = await results(api, *(item(f"r{i}", source_path=f"r/{i}") for i in range(20)))
        assert [r["status"] for r in out] == [201] * 20
        async with api.post(BATCH, json={"items": [item("late", source_path="late")]}) as resp:
            error = await resp.json()
            assert (resp.status, error["code"]) == (429, "rate_limited")
            assert resp.headers["Retry-After"] == "1"
        assert emu.stats()["runs_created"] == 20
        await clock.pass_time(1)
        [late] = await results(api, item("late", source_path="late"))
        assert late["status"] == 201
        assert emu.stats()["requests"]["POST /v1/runs/batch-create"] == {"200": 2, "429": 1}


async def test_stats_count_the_batch_route_not_its_items(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    await results(manual_api, item("s1", source_path="a"), item("s1", source_path="a"))
    await call(manual_api, "POST", BATCH, json={"items": []})
    stats = manual.stats()
    assert stats["requests"] == {"POST /v1/runs/batch-create": {"200": 1, "422": 1}}
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 1)


async def test_an_unknown_key_is_401_before_anything(manual: Emulator) -> None:
    async with aiohttp.ClientSession(manual.url, headers={"lume-api-key": "nope"}) as stranger:
        status, error = await batch(stranger, item("k", source_path="a"))
    assert (status, error["code"]) == (401, "unauthorized")
    assert manual.stats()["runs_created"] == 0


# -- the runs made ---------------------------------------------------------------------------------


async def test_batch_runs_are_listed_and_progress_like_single_ones(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    paths = [
        "synthetic://ok?rows=10&duration=2",
        "synthetic://half?rows=10&reject_rate=0.5&duration=2",
        "synthetic://bad?rows=10&outcome=FAILED&duration=2",
    ]
    out = await results(manual_api, *(item(f"p{i}", source_path=p) for i, p in enumerate(paths)))
    singles = [
        (await single(manual_api, {"flow_version": CUSTOMERS, "source_path": p + "&s=1"}))[1]
        for p in paths
    ]
    batch_ids = [r["run"]["id"] for r in out]
    assert await run_ids(manual_api) == batch_ids + [run["id"] for run in singles]
    manual.advance(5)
    for made, alike in zip(batch_ids, singles, strict=True):
        _, run = await call(manual_api, "GET", f"/v1/runs/{made}")
        _, other = await call(manual_api, "GET", f"/v1/runs/{alike['id']}")
        assert run["status"] == other["status"]
        counts = ("input_rows", "mapped_rows", "rejected_rows")
        assert [run["metadata"]["results"][c] for c in counts] == [
            other["metadata"]["results"][c] for c in counts
        ]
    statuses = [(await call(manual_api, "GET", f"/v1/runs/{i}"))[1]["status"] for i in batch_ids]
    assert statuses == ["SUCCEEDED", "PARTIAL_FAILED", "FAILED"]
    status, page = await call(manual_api, "GET", f"/v1/runs/{batch_ids[0]}/results")
    assert (status, page["total"]) == (200, 10)


@pytest.fixture
async def hook_url() -> AsyncIterator[tuple[asyncio.Queue[bytes], str]]:
    """A webhook endpoint: the bodies it receives, in a queue."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(request: web.Request) -> web.Response:
        received.put_nowait(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield received, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def test_batch_runs_are_announced_by_webhooks(
    manual: Emulator,
    manual_api: aiohttp.ClientSession,
    hook_url: tuple[asyncio.Queue[bytes], str],
) -> None:
    received, url = hook_url
    status, _ = await call(manual_api, "POST", "/v1/webhooks", json={"url": url})
    assert status == 201
    out = await results(
        manual_api,
        item("w1", source_path="synthetic://w?rows=5&duration=1", run_metadata={"n": 1}),
        item("w2", source_path="synthetic://x?rows=5&duration=1&outcome=CRASHED"),
    )
    manual.advance(5)
    events = [await asyncio.wait_for(received.get(), 10) for _ in out]
    heard = {
        event["data"]["run_id"]: (event["type"], event["data"]["run_metadata"])
        for event in map(orjson.loads, events)
    }
    assert heard == {
        out[0]["run"]["id"]: ("run.succeeded", {"n": 1}),
        out[1]["run"]["id"]: ("run.crashed", None),
    }
