"""Polls name the state held of each run, and the service sends again only the runs that moved.

The poller asks ``batch-get`` with ``known``: the ``updated_at`` its handles hold. The service
names the runs still at that instant in ``unchanged`` instead of sending them, so a run that sits
in one status for a hundred polls costs a hundred ids, not a hundred run bodies. A service that
predates ``known`` either ignores it (and sends every run) or refuses it; both still end every
wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from lume_async import AsyncLume, ResponseValidationError, RunRequest, RunStatus, RunTimeoutError
from lume_async._batch_get import RunsAnswer
from lume_async._converter import run_from_obj
from lume_async._responses import Response
from lume_async._runs_core import RunCell
from lume_async._watches import Watches
from lume_async.testing import Emulator

from ._scripted import run_json

pytestmark = pytest.mark.anyio

BATCH_GET = "/v1/runs/batch-get"
FLOW = "customer_cleaner:v1"


class Relay:
    """Passes every request on to the emulator, keeping each ``batch-get`` and its answer.

    ``refuse_known``: answer 422 to a ``batch-get`` that carries ``known``, as a strict service
    that predates it would. ``ignore_known``: drop ``known`` on the way, so every run is sent.
    """

    def __init__(self, target: str, *, refuse_known: bool = False, ignore_known: bool = False):
        self.target = target
        self.refuse_known = refuse_known
        self.ignore_known = ignore_known
        self.exchanges: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sent = orjson.loads(body) if request.path == BATCH_GET else None
        if sent is not None and "known" in sent:
            if self.refuse_known:
                answer = {"detail": "extra inputs are not permitted", "code": "validation_error"}
                self.exchanges.append((sent, 422, answer))
                return web.json_response(answer, status=422, headers={"x-request-id": "req_r"})
            if self.ignore_known:
                body = orjson.dumps({"ids": sent["ids"]})
        dropped = {"host", "content-length"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        async with self._session.request(
            request.method, self.target + request.path_qs, data=body, headers=headers
        ) as answer:
            raw = await answer.read()
            if sent is not None:
                self.exchanges.append((sent, answer.status, orjson.loads(raw)))
            kept = {"content-type", "x-request-id", "retry-after"}
            return web.Response(
                status=answer.status,
                body=raw,
                headers={k: v for k, v in answer.headers.items() if k.lower() in kept},
            )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with aiohttp.ClientSession() as self._session:
                yield self
        finally:
            await runner.cleanup()


@asynccontextmanager
async def relayed(**flags: bool) -> AsyncIterator[tuple[Emulator, Relay, AsyncLume]]:
    """An emulator, a relay in front of it, and a client that talks to the relay."""
    async with Emulator(time_scale=100) as emu, Relay(emu.url, **flags).running() as relay:
        lume = AsyncLume(api_key=emu.api_key, base_url=relay.url)
        async with lume:
            yield emu, relay, lume


async def start(lume: AsyncLume, name: str, duration: float) -> Any:
    return await lume.runs.create(
        "customer_cleaner:v1", source_path=f"synthetic://{name}?rows=3&duration={duration}"
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_polls_name_the_state_held_and_runs_that_did_not_move_are_not_sent_again() -> None:
    async with relayed() as (_, relay, lume):
        stuck = [await start(lume, f"stuck-{i}", duration=1_000_000) for i in range(3)]
        quick = await start(lume, "quick", duration=2)
        with pytest.raises(RunTimeoutError):
            await lume.runs.wait_all([*stuck, quick], poll_interval=0.01, timeout=1.0)
        assert quick.status is RunStatus.SUCCEEDED
        fresh = {run.id: await lume.runs.get(run.id) for run in stuck}

    assert len(relay.exchanges) >= 5
    quiet = 0
    for sent, status, answer in relay.exchanges:
        assert status == 200
        known = sent["known"]
        assert sorted(known) == sorted(sent["ids"])  # every run asked about, with its state
        sent_again = {item["id"]: item for item in answer["items"]}
        assert set(answer["unchanged"]) | set(sent_again) == set(sent["ids"])
        assert not set(answer["unchanged"]) & set(sent_again)
        for run_id, item in sent_again.items():
            assert at(item["updated_at"]) != at(known[run_id])  # only runs that moved
        quiet += not sent_again
    assert quiet >= 2  # most polls of runs that sit in one status carry no run at all
    for run in stuck:  # and the handles still say what the service says
        assert (run.status, run.updated_at) == (fresh[run.id].status, fresh[run.id].updated_at)


@pytest.mark.parametrize("n", [3, 250])  # 250: the first sweep's three requests all refused
async def test_a_service_that_refuses_known_is_asked_without_it_from_then_on(n: int) -> None:
    async with relayed(refuse_known=True) as (_, relay, lume):
        runs = await lume.runs.create_many(
            [
                RunRequest(FLOW, source_path=f"synthetic://strict-{i}?rows=1&duration=100")
                for i in range(n)
            ]
        )
        done = await lume.runs.wait_all([o.unwrap() for o in runs], poll_interval=0.01, timeout=30)

    assert all(run.status is RunStatus.SUCCEEDED for run in done)
    statuses = [(status, "known" in sent) for sent, status, _ in relay.exchanges]
    first = -(-n // 100)  # the first sweep's requests, sent together
    assert statuses[:first] == [(422, True)] * first
    assert len(statuses) > 2 * first and all(s == (200, False) for s in statuses[first:])


async def test_a_service_that_ignores_known_still_ends_every_wait() -> None:
    async with relayed(ignore_known=True) as (_, relay, lume):
        runs = [await start(lume, f"old-{i}", duration=5 + i) for i in range(3)]
        done = await lume.runs.wait_all(runs, poll_interval=0.01, timeout=30)

    assert all(run.status is RunStatus.SUCCEEDED for run in done)
    assert all(run.metadata is not None for run in done)
    assert all("unchanged" not in answer for _, _, answer in relay.exchanges)


async def test_get_many_always_asks_for_every_run_in_full() -> None:
    async with relayed() as (_, relay, lume):
        runs = [await start(lume, f"many-{i}", duration=1_000_000) for i in range(3)]
        got = await lume.runs.get_many([run.id for run in runs])

    assert [outcome.unwrap().id for outcome in got] == [run.id for run in runs]
    assert [sent for sent, _, _ in relay.exchanges] == [{"ids": [run.id for run in runs]}]


# -- reading an answer ----------------------------------------------------------------------------


def answer_of(body: dict[str, Any], known: set[str]) -> RunsAnswer:
    """A ``batch-get`` answer as it comes off the wire, to a request that named ``known``."""
    headers = CIMultiDictProxy(CIMultiDict({"x-request-id": "req_1"}))
    response = Response(status=200, headers=headers, body=orjson.dumps(body))
    return RunsAnswer(response, response.request_id, known=known)


def test_only_the_runs_asked_about_with_a_state_can_be_unchanged() -> None:
    answer = answer_of(
        {"items": [run_json("run_c")], "missing": [], "unchanged": ["run_a", "run_b", "run_x"]},
        known={"run_a", "run_c"},
    )

    items, unchanged = answer.read()

    assert list(items) == ["run_c"]
    assert set(unchanged) == {"run_a"}


def test_runs_named_unchanged_without_a_state_asked_about_are_found_missing() -> None:
    cells = {i: RunCell(run_from_obj(run_json(i, "TRANSFORMING"))) for i in ("run_a", "run_b")}
    watches = Watches(on_idle=lambda: None)
    watches.add(list(cells.values()), itself, 1.0, ignore, ignore)
    answer = answer_of({"items": [], "missing": [], "unchanged": ["run_a", "run_b"]}, {"run_a"})
    missing: list[str] = []

    changed = watches.take(["run_a", "run_b"], answer, missing)

    assert not changed
    assert missing == ["run_b"]  # checked by a direct GET, never taken on the answer's word


@pytest.mark.parametrize("unchanged", [{"run_a": 1}, "run_a", [1], [None], ["run_a", ["run_b"]]])
def test_an_unchanged_that_is_not_a_list_of_ids_is_a_malformed_answer(unchanged: Any) -> None:
    answer = answer_of({"items": [], "missing": [], "unchanged": unchanged}, {"run_a"})

    with pytest.raises(ResponseValidationError, match="unchanged"):
        answer.read()


def test_an_answer_without_unchanged_sends_every_run() -> None:
    answer = answer_of({"items": [run_json("run_a")], "missing": []}, {"run_a"})

    items, unchanged = answer.read()

    assert list(items) == ["run_a"] and not unchanged


# -- what a poll names ------------------------------------------------------------------------


def itself(cell: RunCell) -> RunCell:
    return cell


def ignore(_: object) -> None:
    return None


def cell_at(run_id: str, updated_at: str) -> RunCell:
    return RunCell(run_from_obj({**run_json(run_id, "TRANSFORMING"), "updated_at": updated_at}))


def test_a_run_is_named_with_its_state_only_when_every_handle_of_it_holds_the_same() -> None:
    watches = Watches(on_idle=lambda: None)
    same = [cell_at("run_same", "2026-01-01T00:00:05Z") for _ in range(2)]
    apart = [cell_at("run_apart", f"2026-01-01T00:00:0{s}Z") for s in (5, 9)]
    alone = cell_at("run_alone", "2026-01-01T00:00:07Z")
    watches.add([same[0], apart[0]], itself, 1.0, ignore, ignore)  # one handle each, a watch each
    watches.add([same[1], apart[1]], itself, 1.0, ignore, ignore)
    watches.add([alone, alone], itself, 1.0, ignore, ignore)  # one watch naming a run twice

    known = watches.known(["run_same", "run_apart", "run_alone", "run_unwatched"])

    assert known == {
        "run_same": datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC),
        "run_alone": datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
    }
