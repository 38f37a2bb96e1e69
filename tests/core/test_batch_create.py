"""``create_many`` in batches: up to 100 creates per request, exactly once item by item.

A keyed fake service (a real HTTP server) stands in where the behaviour cannot be asked of the
emulator: a service without the route, answers that lose or garble items, items the service
could not do for now. The emulator checks the whole path on the real route.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from lume_async import (
    AsyncLume,
    AuthenticationError,
    DuplicateRunError,
    InvalidRequestError,
    NotFoundError,
    RetryPolicy,
    RunRequest,
)
from lume_async.testing import Emulator, VirtualClock

from ._scripted import Answer, ScriptedServer, Seen, posts, run_json

FLOW = "customer_cleaner:v1"
BATCH = "/v1/runs/batch-create"
STUCK = 20
FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02)


def _requests(n: int, prefix: str = "s3://bucket/b") -> list[RunRequest]:
    return [RunRequest(FLOW, source_path=f"{prefix}{i:05d}") for i in range(n)]


class KeyedService:
    """Creates a run per new Idempotency-Key (replays otherwise), alone or in batches.

    ``batch`` answers a whole batch-create (None: as a service that has it would); ``item``
    may replace the result of one item (None: as done).
    """

    def __init__(self) -> None:
        self.runs: dict[str, str] = {}  # key -> run id
        self.ids = itertools.count(1)
        self.batch: Callable[[list[dict[str, Any]]], Answer | None] = lambda items: None
        self.item: Callable[[int, dict[str, Any]], dict[str, Any] | None] = lambda i, item: None

    def create(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("flow_version") != FLOW:
            return 404, {"detail": "Flow version not found", "code": "not_found"}
        if body.get("source_path", "").endswith("done"):
            return 409, {
                "detail": "already processed",
                "code": "duplicate_source_path",
                "existing_run_id": "run_01HY000000000000000000DONE",
            }
        status = 200 if key in self.runs else 201
        run_id = self.runs.setdefault(key, f"run_01HY{next(self.ids):022d}")
        return status, {**run_json(run_id), "source_path": body.get("source_path")}

    def __call__(self, seen: Seen) -> Answer:
        body = orjson.loads(seen.body)
        if seen.path == "/v1/runs":
            status, answer = self.create(seen.headers["Idempotency-Key"], body)
            return Answer(status, answer)
        assert seen.path == BATCH, seen.path
        items = body["items"]
        whole = self.batch(items)
        if whole is not None:
            return whole
        results = []
        for i, item in enumerate(items):
            status, answer = self.create(item["idempotency_key"], item["run"])
            replaced = self.item(i, item)
            if replaced is not None:
                results.append(replaced)
            elif status < 300:
                results.append({"status": status, "run": answer})
            else:
                results.append({"status": status, "error": answer})
        return Answer(200, {"results": results})


@pytest.fixture
async def service() -> AsyncIterator[tuple[ScriptedServer, KeyedService]]:
    keyed = KeyedService()
    async with ScriptedServer() as server:
        server.respond = keyed
        yield server, keyed


async def _create_many(
    server: ScriptedServer, requests: list[RunRequest], concurrency: int, **kwargs: Any
) -> list[Any]:
    async with AsyncLume(
        api_key="k", base_url=server.url, retry=FAST, clock=VirtualClock()
    ) as lume:
        with anyio.fail_after(STUCK):
            return await lume.runs.create_many(requests, concurrency=concurrency, **kwargs)


# -- how many requests -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_large_fan_out_goes_a_hundred_per_request(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, keyed = service
    outcomes = await _create_many(server, _requests(1000), concurrency=4)
    assert [o.ok for o in outcomes] == [True] * 1000
    batches = posts(server, BATCH)
    assert len(batches) == 10 and not posts(server, "/v1/runs")
    assert all(len(orjson.loads(b.body)["items"]) == 100 for b in batches)
    assert len(keyed.runs) == 1000
    # Each outcome is its own item's run, with the key it was sent with.
    sent = {
        item["idempotency_key"]: item["run"]["source_path"]
        for b in batches
        for item in orjson.loads(b.body)["items"]
    }
    assert {o.idempotency_key: o.value.source_path for o in outcomes} == sent
    assert [o.value.source_path for o in outcomes] == [f"s3://bucket/b{i:05d}" for i in range(1000)]


@pytest.mark.anyio
async def test_no_more_runs_than_requests_in_flight_are_not_batched(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service
    outcomes = await _create_many(server, _requests(8), concurrency=8)
    assert all(o.ok for o in outcomes)
    assert len(posts(server, "/v1/runs")) == 8 and not posts(server, BATCH)


@pytest.mark.anyio
async def test_batches_spread_over_the_requests_allowed_in_flight(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service
    await _create_many(server, _requests(90), concurrency=10)
    sizes = [len(orjson.loads(b.body)["items"]) for b in posts(server, BATCH)]
    assert sorted(sizes) == [6] + [12] * 7  # eight batches in flight at most
    server.seen.clear()
    await _create_many(server, _requests(90), concurrency=3)
    sizes = [len(orjson.loads(b.body)["items"]) for b in posts(server, BATCH)]
    assert sorted(sizes) == [30] * 3


@pytest.mark.anyio
async def test_large_items_go_alone_and_bad_items_not_at_all(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service
    big = RunRequest(FLOW, source_data=[{"id": i, "name": "x" * 40} for i in range(8000)])
    items: list[Any] = [*_requests(30), big, {"flow_version": "no spaces allowed"}]
    outcomes = await _create_many(server, items, concurrency=2)
    assert [o.ok for o in outcomes] == [True] * 31 + [False]
    assert isinstance(outcomes[-1].error, ValueError)
    alone = posts(server, "/v1/runs")
    assert len(alone) == 1 and len(alone[0].body) > 256 * 1024
    assert sum(len(orjson.loads(b.body)["items"]) for b in posts(server, BATCH)) == 30
    # The body of a batch stays under 1 MiB: many mid-sized items take several requests.
    server.seen.clear()
    mid = [
        RunRequest(FLOW, source_data=[{"id": i, "pad": "y" * 1000} for i in range(100)])
        for _ in range(40)
    ]
    outcomes = await _create_many(server, mid, concurrency=1)
    assert all(o.ok for o in outcomes)
    assert all(len(b.body) < 1 << 20 for b in posts(server, BATCH))
    assert len(posts(server, BATCH)) >= 4


# -- per-item outcomes -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_item_gets_its_own_error_and_the_others_their_runs(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service
    requests = _requests(20)
    requests[3] = RunRequest(FLOW, source_path="s3://bucket/done")
    requests[7] = RunRequest("unknown_flow:v1", source_path="s3://bucket/x")
    outcomes = await _create_many(server, requests, concurrency=2)
    assert [o.ok for o in outcomes] == [i not in (3, 7) for i in range(20)]
    dup = outcomes[3].error
    assert isinstance(dup, DuplicateRunError)
    assert dup.existing_run_id == "run_01HY000000000000000000DONE"
    assert type(outcomes[7].error) is NotFoundError
    assert outcomes[3].idempotency_key == requests[3].idempotency_key
    assert not posts(server, "/v1/runs")  # refusals are final: not sent again


@pytest.mark.anyio
async def test_a_reused_run_is_reported_as_reused(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, keyed = service
    requests = _requests(10)
    keyed.create(requests[4].idempotency_key, requests[4].to_wire())  # done before: 200
    outcomes = await _create_many(server, requests, concurrency=2)
    assert [o.value.reused for o in outcomes] == [i == 4 for i in range(10)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "result",
    [
        {"status": 503, "error": {"detail": "busy", "code": "unavailable"}},
        {"status": 429, "error": {"detail": "slow down", "code": "rate_limited"}},
        {"status": 409, "error": {"detail": "in flight", "code": "idempotency_in_flight"}},
        {"status": 201},  # a run missing
        {"status": 201, "run": {"id": 5}},  # not a run
        {"status": "201"},
        {"status": 302, "run": run_json()},
        "garbage",
    ],
)
async def test_an_item_the_service_could_not_do_or_garbled_is_sent_again_alone(
    service: tuple[ScriptedServer, KeyedService], result: Any
) -> None:
    server, keyed = service
    keyed.item = lambda i, item: result if i == 2 else None
    requests = _requests(20)
    outcomes = await _create_many(server, requests, concurrency=2)
    assert all(o.ok for o in outcomes)
    alone = posts(server, "/v1/runs")
    assert len(alone) == 2  # the third item of each batch, with its own key
    assert {seen.headers["Idempotency-Key"] for seen in alone} == {
        requests[2].idempotency_key,
        requests[12].idempotency_key,
    }
    assert len(keyed.runs) == 20  # done once each: the single create replayed the batch's
    assert len({o.value.id for o in outcomes}) == 20


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, {"results": []}),
        Answer(200, {"items": []}),
        Answer(200, b"not json"),
        Answer(200, [1, 2]),
    ],
)
async def test_a_malformed_answer_sends_every_item_again_alone(
    service: tuple[ScriptedServer, KeyedService], answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    server, keyed = service

    def done_then_garbled(items: list[dict[str, Any]]) -> Answer:
        for item in items:  # the work is done; its answer is lost
            keyed.create(item["idempotency_key"], item["run"])
        return answer

    keyed.batch = done_then_garbled
    with caplog.at_level(logging.WARNING, "lume_async.runs"):
        outcomes = await _create_many(server, _requests(10), concurrency=2)
    assert all(o.ok for o in outcomes)
    assert len(posts(server, "/v1/runs")) == 10
    assert len(keyed.runs) == 10 and len({o.value.id for o in outcomes}) == 10
    assert "malformed batch-create answer" in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 404, 405, 413, 422, 501])
async def test_a_service_without_batch_create_gets_one_create_per_request(
    service: tuple[ScriptedServer, KeyedService], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server, keyed = service
    keyed.batch = lambda items: Answer(status, {"detail": "No such route", "code": "not_found"})
    with caplog.at_level(logging.INFO, "lume_async.runs"):
        async with AsyncLume(
            api_key="k", base_url=server.url, retry=FAST, clock=VirtualClock()
        ) as lume:
            with anyio.fail_after(STUCK):
                first = await lume.runs.create_many(_requests(30), concurrency=3)
                again = await lume.runs.create_many(_requests(30, "s3://other/"), concurrency=3)
    assert all(o.ok for o in first + again)
    # Each batch in flight when the refusal came was asked once; nothing after it.
    assert 1 <= len(posts(server, BATCH)) <= 3
    assert len(posts(server, "/v1/runs")) == 60 and len(keyed.runs) == 60
    assert caplog.text.count("refused batch creates") == 1


@pytest.mark.anyio
async def test_a_batch_refused_as_a_whole_fails_each_item_with_that_error(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, keyed = service
    keyed.batch = lambda items: Answer(401, {"detail": "bad key", "code": "unauthorized"})
    requests = _requests(10)
    outcomes = await _create_many(server, requests, concurrency=2)
    assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
    assert [o.idempotency_key for o in outcomes] == [r.idempotency_key for r in requests]
    assert not posts(server, "/v1/runs") and not keyed.runs


@pytest.mark.anyio
async def test_a_lost_batch_answer_is_retried_and_replays(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, keyed = service
    calls = 0

    def lose_the_first(items: list[dict[str, Any]]) -> Answer | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            for item in items:  # done, then the answer is lost
                keyed.create(item["idempotency_key"], item["run"])
            return Answer(503, {"detail": "gateway", "code": "unavailable"})
        return None

    keyed.batch = lose_the_first
    outcomes = await _create_many(server, _requests(10), concurrency=1)
    assert all(o.ok for o in outcomes)
    assert len(posts(server, BATCH)) == 2  # the same body again
    first, second = posts(server, BATCH)
    assert first.body == second.body
    assert len(keyed.runs) == 10 and [o.value.reused for o in outcomes] == [True] * 10


# -- progress --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_progress_is_told_after_each_item(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service
    requests: list[Any] = _requests(50)
    requests[10] = {"flow_version": FLOW}  # neither source: fails before any request
    calls: list[tuple[int, int, int]] = []
    await _create_many(
        server, requests, concurrency=5, on_progress=lambda *args: calls.append(args)
    )
    assert [done for done, _, _ in calls] == list(range(1, 51))
    assert {total for _, total, _ in calls} == {50}
    assert calls[-1][2] == 1


@pytest.mark.anyio
async def test_an_error_in_progress_stops_the_fan_out_and_propagates(
    service: tuple[ScriptedServer, KeyedService],
) -> None:
    server, _ = service

    def stop(done: int, total: int, failed: int) -> None:
        if done == 150:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        await _create_many(server, _requests(1000), concurrency=2, on_progress=stop)
    assert len(posts(server, BATCH)) <= 4


# -- against the emulator --------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_emulator_creates_a_batch_once_even_sent_twice(
    emulated: tuple[Emulator, AsyncLume],
) -> None:
    emu, lume = emulated
    requests = [
        RunRequest(FLOW, source_path=f"synthetic://batch-{i}?rows=2&duration=5") for i in range(300)
    ]
    with anyio.fail_after(STUCK):
        first = await lume.runs.create_many(requests, concurrency=3)
        again = await lume.runs.create_many(requests, concurrency=7)
    stats = emu.stats()
    assert all(o.ok for o in first + again)
    assert [o.value.id for o in first] == [o.value.id for o in again]
    assert len({o.value.id for o in first}) == 300
    runs = [run async for run in lume.runs.list(flow_version=FLOW)]
    assert len(runs) == 300
    routes = stats["requests"]
    assert sum(routes.get("POST /v1/runs/batch-create", {}).values()) == 3 + 7
    assert "POST /v1/runs" not in routes
    done = await lume.runs.wait_all([o.value for o in first], timeout=600)
    assert len(done) == 300


@pytest.mark.anyio
async def test_the_emulator_answers_each_item_as_its_own_create(
    emulated: tuple[Emulator, AsyncLume],
) -> None:
    _, lume = emulated
    ok = [RunRequest(FLOW, source_path=f"synthetic://item-{i}?rows=1&duration=1") for i in range(6)]
    unknown = RunRequest("customer_cleaner:v99", source_path="s3://bucket/x")
    keyed = RunRequest(FLOW, source_path="s3://bucket/y", idempotency_key="shared-key-1")
    clash = RunRequest(FLOW, source_path="s3://bucket/z", idempotency_key="shared-key-1")
    with anyio.fail_after(STUCK):
        outcomes = await lume.runs.create_many([*ok, unknown, keyed, clash], concurrency=2)
        assert [o.ok for o in outcomes] == [True] * 6 + [False, True, False]
        assert type(outcomes[6].error) is NotFoundError
        assert isinstance(outcomes[8].error, InvalidRequestError)
        assert outcomes[8].error.code == "idempotency_key_reused"
        # The single create with an item's key is the same request: replayed.
        alone = await lume.runs.create(FLOW, "s3://bucket/y", idempotency_key="shared-key-1")
        assert alone.id == outcomes[7].value.id
        await lume.runs.wait_all([o.value for o in outcomes[:6]], timeout=600)
        done = await lume.runs.create_many(
            [
                RunRequest(FLOW, source_path=f"synthetic://item-{i}?rows=1&duration=1")
                for i in range(6)
            ]
            * 2,
            concurrency=1,
        )
    assert all(isinstance(o.error, DuplicateRunError) for o in done)
    assert {o.error.existing_run_id for o in done if isinstance(o.error, DuplicateRunError)} == {
        o.value.id for o in outcomes[:6]
    }


@pytest.fixture
async def emulated() -> AsyncIterator[tuple[Emulator, AsyncLume]]:
    clock = VirtualClock()
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        yield emu, lume


@pytest.mark.anyio
async def test_at_most_eight_batches_are_in_flight_whatever_the_concurrency(
    service: tuple[ScriptedServer, KeyedService], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = service
    in_flight = peak = 0
    async with AsyncLume(api_key="k", base_url=server.url, clock=VirtualClock()) as lume:
        core = lume.runs._core
        real = core.create_batch

        async def counting(requests: Any, body: Any) -> Any:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                for _ in range(3):
                    await anyio.lowlevel.checkpoint()
                return await real(requests, body)
            finally:
                in_flight -= 1

        monkeypatch.setattr(core, "create_batch", counting)
        with anyio.fail_after(STUCK):
            outcomes = await lume.runs.create_many(_requests(2000), concurrency=64)
    assert all(o.ok for o in outcomes)
    assert peak == 8
    assert len(posts(server, BATCH)) == 20
