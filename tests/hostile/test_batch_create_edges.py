"""``create_many`` in batches against answers that lie, echo secrets, or refuse the route.

An item's result is taken only for the run it can be: of that item's flow version and source,
and not one already answered as new for another item's key (else the item is sent again alone,
and its key says what was done). An item's error never carries the API key. A batch's whole body
stays within 1 MiB. Items a batch leaves to single creates are sent with every request allowed in
flight, not one after another.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web

from lume_async import AsyncLume, NotFoundError, RetryPolicy, RunRequest
from lume_async.testing import VirtualClock

from ..core._scripted import Answer, ScriptedServer, Seen, posts, run_json

FLOW = "customer_cleaner:v1"
BATCH = "/v1/runs/batch-create"
STUCK = 20
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
API_KEY = "lume_sk_0123456789abcdefSECRET"

Results = list[dict[str, Any]]


class Keyed:
    """Creates one run per new Idempotency-Key and replays it after; ``lie`` rewrites a batch's
    results (the runs were created all the same)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.lie: Callable[[Results], Results] = lambda results: results
        self.route = True

    def create(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if key not in self.answers:
            run = {**run_json(f"run_01HY{next(self.ids):022d}"), **body}
            run.pop("source_data", None)
            run.setdefault("source_path", None)
            self.answers[key] = 201, run
        return self.answers[key]

    def __call__(self, seen: Seen) -> Answer:
        body = orjson.loads(seen.body)
        if seen.path == "/v1/runs":
            return Answer(*self.create(seen.headers["Idempotency-Key"], body))
        if not self.route:
            return Answer(404, {"detail": "No such route", "code": "not_found"})
        results = []
        for item in body["items"]:
            status, run = self.create(item["idempotency_key"], item["run"])
            results.append({"status": status, "run": run})
        return Answer(200, {"results": self.lie(results)})


class HeldServer(ScriptedServer):
    """A scripted server whose single creates may be held (``hold``) before they are answered."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: Callable[[], Awaitable[None]] | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/v1/runs" and self.hold is not None:
            await self.hold()
        return await super()._handle(request)


@pytest.fixture
async def keyed() -> AsyncIterator[tuple[ScriptedServer, Keyed]]:
    service = Keyed()
    async with HeldServer() as server:
        server.respond = service
        yield server, service


async def _create_many(
    server: ScriptedServer, requests: list[RunRequest], concurrency: int
) -> list[Any]:
    async with AsyncLume(
        api_key=API_KEY, base_url=server.url, retry=FAST, clock=VirtualClock()
    ) as lume:
        with anyio.fail_after(STUCK):
            return await lume.runs.create_many(requests, concurrency=concurrency)


def _paths(n: int) -> list[RunRequest]:
    return [RunRequest(FLOW, source_path=f"s3://bucket/b{i:03d}") for i in range(n)]


# -- runs answered for the wrong item -------------------------------------------------------


@pytest.mark.anyio
async def test_results_in_the_wrong_order_give_each_item_its_own_run(
    keyed: tuple[ScriptedServer, Keyed],
) -> None:
    server, service = keyed
    service.lie = lambda results: results[::-1]
    requests = _paths(6)
    outcomes = await _create_many(server, requests, concurrency=2)
    assert posts(server, BATCH), "the items went in batches"
    for request, outcome in zip(requests, outcomes, strict=True):
        assert outcome.value.source_path == request.source_path
        assert outcome.value.id == service.answers[request.idempotency_key][1]["id"]
    assert len({outcome.value.id for outcome in outcomes}) == 6


@pytest.mark.anyio
async def test_a_run_of_another_flow_version_is_not_taken_for_the_item(
    keyed: tuple[ScriptedServer, Keyed],
) -> None:
    server, service = keyed

    def other_flow(results: Results) -> Results:
        results[1] = {**results[1], "run": {**results[1]["run"], "flow_version": "other:v3"}}
        return results

    service.lie = other_flow
    outcomes = await _create_many(server, _paths(4), concurrency=1)
    assert [outcome.value.flow_version for outcome in outcomes] == [FLOW] * 4


@pytest.mark.anyio
async def test_one_new_run_answered_for_two_keys_is_not_taken_for_both(
    keyed: tuple[ScriptedServer, Keyed],
) -> None:
    server, service = keyed
    service.lie = lambda results: [results[0], results[0], *results[2:]]
    requests = [RunRequest(FLOW, source_data=[{"n": i}]) for i in range(4)]
    outcomes = await _create_many(server, requests, concurrency=1)
    made = [service.answers[request.idempotency_key][1]["id"] for request in requests]
    assert [outcome.value.id for outcome in outcomes] == made
    assert len(set(made)) == 4


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_items_error_does_not_carry_the_api_key(
    keyed: tuple[ScriptedServer, Keyed],
) -> None:
    server, service = keyed
    error = {"detail": f"flow not found for key {API_KEY}", "code": "not_found"}
    service.lie = lambda results: [{"status": 404, "error": error} for _ in results]
    outcomes = await _create_many(server, _paths(3), concurrency=1)
    for outcome in outcomes:
        assert isinstance(outcome.error, NotFoundError)
        assert API_KEY not in str(outcome.error)
        assert API_KEY not in repr(outcome.error.body)


# -- sizes -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_batch_body_stays_within_one_mib(keyed: tuple[ScriptedServer, Keyed]) -> None:
    server, _ = keyed
    pad = "x" * 10_385  # 100 bodies of 10,482 bytes: just under 1 MiB without the envelope
    requests = [
        RunRequest(FLOW, source_path=f"s3://bucket/b{i:03d}", run_metadata={"pad": pad})
        for i in range(100)
    ]
    assert sum(len(request.wire_body()) for request in requests) <= 1 << 20
    outcomes = await _create_many(server, requests, concurrency=1)
    assert all(outcome.ok for outcome in outcomes)
    # The server refuses bodies over 1 MiB (413, aiohttp's default), which would end batching.
    assert not posts(server, "/v1/runs"), "every item went in a batch"
    assert all(len(seen.body) <= 1 << 20 for seen in posts(server, BATCH))


# -- concurrency of what is sent alone -------------------------------------------------------


@pytest.mark.anyio
async def test_items_a_refused_batch_leaves_are_sent_with_all_the_concurrency(
    keyed: tuple[ScriptedServer, Keyed],
) -> None:
    server, service = keyed
    service.route = False
    concurrency = 32
    in_flight = peak = 0
    full = asyncio.Event()

    async def held() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= concurrency:
            full.set()
        with anyio.move_on_after(2):  # the service side: lets a narrower fan-out go on
            await full.wait()
        full.set()
        in_flight -= 1

    assert isinstance(server, HeldServer)
    server.hold = held
    outcomes = await _create_many(server, _paths(96), concurrency)
    assert all(outcome.ok for outcome in outcomes)
    assert peak == concurrency
