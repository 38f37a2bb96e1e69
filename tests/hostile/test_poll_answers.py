"""A service that answers the poller's ``batch-get`` badly: every wait still ends, and ends right.

A real HTTP service on the test's loop answers each ``batch-get`` from a script: the same run
twice, a run both sent and missing, runs never asked about, runs going back along their
lifecycle, ``unchanged`` for runs it was never asked about with a state, nothing at all, items
that are not runs. The client runs on a virtual clock, so its polls and deadlines take no real
time. Whatever is heard, a wait ends with the run's last terminal state or one of the SDK's
errors by its deadline, a handle never shows a status behind one it already showed, and the
poller forgets every wait once it is over. A handle ended by its own call (``cancel()``,
``refresh()``) while a wait on it is polling ends that wait at once; those run on the emulator.
"""

from __future__ import annotations

import inspect
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from aiohttp import web

from lume_async import (
    AsyncLume,
    AsyncRun,
    ResponseValidationError,
    RunNotFoundError,
    RunStatus,
    RunTimeoutError,
)
from lume_async.testing import Emulator, VirtualClock

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

FLOW = "customer_cleaner:v1"
ORDER = ["CREATED", "PENDING", "SYNCING_SOURCE", "TRANSFORMING", "SYNCING_TARGET"]

Body = dict[str, Any]
Batch = Callable[[list[str], dict[str, str]], Any]


def rid(n: int) -> str:
    return f"run_01HY{n:022d}"


A, B = rid(1), rid(2)


def run(run_id: str, status: str, at: int, **extra: Any) -> Body:
    """A run as the service sends it, last changed ``at`` seconds past midnight."""
    return {
        "id": run_id,
        "status": status,
        "flow_version": FLOW,
        "source_path": f"s3://bucket/{run_id}",
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": f"2026-01-01T00:{at // 60:02d}:{at % 60:02d}Z",
        "metadata": None,
        "error": None,
        **extra,
    }


def answer(*items: Any, missing: tuple[str, ...] = (), **extra: Any) -> Batch:
    """A ``batch-get`` answer that is the same whatever is asked."""
    return lambda _ids, _known: {"items": list(items), "missing": list(missing), **extra}


class Service:
    """Runs by id (the truth a direct GET tells), and ``batch-get`` answered from ``script``,
    then honestly. ``asked`` keeps each ``batch-get``'s ids and ``known``; ``shown`` what each
    of ``watched`` showed as each ``batch-get`` came in (what the previous answers did)."""

    def __init__(self, *runs: Body) -> None:
        self.runs = {r["id"]: r for r in runs}
        self.script: deque[Batch] = deque()
        self.asked: list[tuple[list[str], dict[str, str]]] = []
        self.gets = 0
        self.watched: list[AsyncRun] = []
        self.shown: list[list[str]] = []

    def honest(self, ids: list[str], known: dict[str, str]) -> Body:
        items, unchanged, missing = [], [], []
        for run_id in ids:
            found = self.runs.get(run_id)
            if found is None:
                missing.append(run_id)
            elif known.get(run_id, "").replace(".000", "") == found["updated_at"]:
                unchanged.append(run_id)
            else:
                items.append(found)
        return {"items": items, "missing": missing, "unchanged": unchanged}

    async def handle(self, request: web.Request) -> web.Response:
        doc: Any
        if request.path == "/v1/runs/batch-get":
            sent = orjson.loads(await request.read())
            ids, known = sent["ids"], sent.get("known", {})
            self.asked.append((ids, known))
            self.shown.append([handle.status.value for handle in self.watched])
            doc = (self.script.popleft() if self.script else self.honest)(ids, known)
            if inspect.isawaitable(doc):
                doc = await doc
        elif (found := re.fullmatch(r"/v1/runs/(run_\w+)(?:/cancel)?", request.path)) is not None:
            self.gets += 1
            doc = self.runs.get(found[1])
            if doc is None:
                doc = {"detail": "no such run", "code": "not_found", "error_id": "e"}
                return web.json_response(doc, status=404, headers={"x-request-id": "req_h"})
        else:
            return web.json_response({"detail": "?", "code": "not_found"}, status=404)
        headers = {"x-request-id": "req_h", "content-type": "application/json"}
        return web.Response(body=orjson.dumps(doc), headers=headers)


@asynccontextmanager
async def client_of(service: Service) -> AsyncIterator[AsyncLume]:
    """A client of ``service`` over a real socket, on a virtual clock."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with AsyncLume(api_key="k" * 16, base_url=url, clock=VirtualClock()) as lume:
            yield lume
    finally:
        await runner.cleanup()


def forgets_every_wait(lume: AsyncLume) -> bool:
    """The poller holds nothing of waits that are over."""
    watches = lume._core.waiting._watches  # type: ignore[attr-defined]
    return not (watches._by_run or watches._live or watches._intervals or watches._hot)


def rank(status: str) -> int:
    return ORDER.index(status) if status in ORDER else len(ORDER)


# -- answers that move a run back ---------------------------------------------------------------


BACKWARDS: dict[str, list[Body]] = {
    "a stale stage": [
        run(A, "TRANSFORMING", 10),
        run(A, "PENDING", 5),
        run(A, "SYNCING_SOURCE", 7),
        run(A, "SUCCEEDED", 20),
    ],
    "ended, then running again": [run(A, "SUCCEEDED", 20), run(A, "TRANSFORMING", 10)],
    "ended, then ended otherwise": [run(A, "SUCCEEDED", 20), run(A, "FAILED", 21)],
}


@pytest.mark.parametrize("sent", list(BACKWARDS), ids=list(BACKWARDS))
async def test_no_answer_moves_a_handle_back_along_the_lifecycle(sent: str) -> None:
    answers = BACKWARDS[sent]
    service = Service(run(A, "PENDING", 1))
    service.script.extend(answer(item) for item in answers)
    async with client_of(service) as lume:
        handle = await lume.runs.get(A)
        service.watched.append(handle)
        await handle.wait(timeout=60, poll_interval=1)
        assert forgets_every_wait(lume)

    shown = [statuses[0] for statuses in service.shown] + [handle.status.value]
    assert [rank(s) for s in shown] == sorted(rank(s) for s in shown), shown
    terminal = [item for item in answers if RunStatus(item["status"]).is_terminal]
    assert handle.status == terminal[0]["status"]  # the wait ends with the first end it hears


SENT_TWICE: dict[str, tuple[list[Body], str]] = {
    "ended, then an older state": (
        [run(A, "SUCCEEDED", 20), run(A, "TRANSFORMING", 10)],
        "SUCCEEDED",
    ),
    "an older state, then ended": (
        [run(A, "TRANSFORMING", 10), run(A, "FAILED", 20)],
        "FAILED",
    ),
    "ended twice": ([run(A, "SUCCEEDED", 20), run(A, "CRASHED", 21)], "CRASHED"),
    "a stage, then an earlier one": (
        [run(A, "SYNCING_TARGET", 12), run(A, "PENDING", 5), run(A, "PENDING", 5)],
        "SYNCING_TARGET",
    ),
}


@pytest.mark.parametrize("sent", list(SENT_TWICE), ids=list(SENT_TWICE))
async def test_a_run_sent_twice_in_one_answer_counts_as_its_latest_state(sent: str) -> None:
    items, expected = SENT_TWICE[sent]
    # After the answer, a replica that lags behind says the run is still TRANSFORMING.
    service = Service(run(A, "TRANSFORMING", 10))
    service.script.append(answer(*items))
    async with client_of(service) as lume:
        handle = await lume.runs.get(A)
        if RunStatus(expected).is_terminal:
            await handle.wait(timeout=60, poll_interval=1)
        else:
            with pytest.raises(RunTimeoutError):
                await handle.wait(timeout=5, poll_interval=1)
        assert forgets_every_wait(lume)

    assert handle.status == expected


# -- answers about other runs, or about none --------------------------------------------------


ODD_ANSWERS: dict[str, Batch] = {
    "sent and missing": answer(run(A, "SUCCEEDED", 20), missing=(A,)),
    "missing and unchanged at once": answer(run(B, "PENDING", 1), missing=(A,), unchanged=[A]),
    "other ids only": answer(*(run(f" {A}", "FAILED", 30), run(A.upper(), "FAILED", 30))),
    "left out": answer(run(B, "FAILED", 30)),
    "unchanged, for one never asked about": answer(unchanged=[B, " " + A]),
}


@pytest.mark.parametrize("odd", list(ODD_ANSWERS), ids=list(ODD_ANSWERS))
async def test_answers_about_other_runs_neither_end_nor_fail_a_wait(odd: str) -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle, other = await lume.runs.get(A), await lume.runs.get(B)
        service.runs[A] = run(A, "SUCCEEDED", 20)  # what a direct GET says
        service.script.append(ODD_ANSWERS[odd])
        service.script.append(answer())  # then nothing at all: found by a GET again
        async for ended in lume.runs.as_completed([handle], timeout=60, poll_interval=1):
            assert ended is handle
        assert forgets_every_wait(lume)

    assert handle.status is RunStatus.SUCCEEDED
    assert (handle.id, other.status) == (A, RunStatus.TRANSFORMING)  # never another run's
    assert all(ids == [A] for ids, _ in service.asked)


async def test_a_hundred_runs_answered_with_nothing_time_out_without_spinning() -> None:
    ids = [rid(n) for n in range(100)]
    service = Service(*(run(run_id, "TRANSFORMING", 10) for run_id in ids))
    async with client_of(service) as lume:
        handles = [outcome.unwrap() for outcome in await lume.runs.get_many(ids)]
        service.script.extend(answer() for _ in range(1000))
        with pytest.raises(RunTimeoutError, match="100 of 100 runs"):
            await lume.runs.wait_all(handles, timeout=120, poll_interval=1)
        assert forgets_every_wait(lume)
        polls, gets = len(service.asked) - 1, service.gets  # get_many asked once

        # And once a direct GET cannot find them either, every wait fails at once.
        service.runs.clear()
        with pytest.raises(RunNotFoundError):
            await lume.runs.wait_all(handles, timeout=None, poll_interval=1)
        assert forgets_every_wait(lume)

    assert 5 <= polls <= 30  # backed off, not a poll per turn of the loop
    assert gets == 100 * polls  # each run looked up once per poll that left it out


MALFORMED: dict[str, Batch] = {
    "an item that is not an object": answer(run(A, "SUCCEEDED", 20), [A]),
    "an item without an id": answer({k: v for k, v in run(A, "FAILED", 20).items() if k != "id"}),
    "an id that is not a string": answer(run(A, "SUCCEEDED", 20), run(A, "FAILED", 20, id=1)),
    "items that are not a list": lambda _ids, _known: {"items": {A: run(A, "FAILED", 20)}},
    "unchanged that is not a list": answer(unchanged={A: 1}),
}


NOT_A_RUN: dict[str, Body] = {
    "a date that is not one": run(A, "SUCCEEDED", 20, created_at="yesterday"),
    "a status that is not text": run(A, 3, 20),
    "tags that are not a list": run(A, "FAILED", 20, tags="x"),
}


@pytest.mark.parametrize("bad", list(NOT_A_RUN), ids=list(NOT_A_RUN))
async def test_an_item_that_is_not_a_run_ends_only_the_waits_on_that_run(bad: str) -> None:
    ids = [rid(n) for n in range(1, 5)]
    service = Service(*(run(r, "TRANSFORMING", 10) for r in ids))
    async with client_of(service) as lume:
        handles = [await lume.runs.get(r) for r in ids]
        first_answer = [NOT_A_RUN[bad], *(run(r, "PENDING", 12) for r in ids[1:])]
        service.script.append(answer(*first_answer))
        for r in ids:  # what the service says from the second look on
            service.runs[r] = run(r, "SUCCEEDED", 30)
        errors: dict[str, BaseException | None] = {}

        async def wait(name: str, call: Callable[[], Any]) -> None:
            errors[name] = await outcome(call)

        wait_all = lume.runs.wait_all
        async with anyio.create_task_group() as tg:
            # A alone, A among others, and waits on other runs only (one handle, and a fan-out).
            tg.start_soon(wait, "A", lambda: handles[0].wait(timeout=60, poll_interval=1))
            tg.start_soon(wait, "A+C", lambda: wait_all(handles[::2], timeout=60, poll_interval=1))
            tg.start_soon(wait, "B", lambda: handles[1].wait(timeout=60, poll_interval=1))
            tg.start_soon(wait, "C+D", lambda: wait_all(handles[2:], timeout=60, poll_interval=1))
        assert forgets_every_wait(lume)

    assert isinstance(errors["A"], ResponseValidationError), errors
    assert isinstance(errors["A+C"], ResponseValidationError), errors
    assert any(A in note for note in errors["A"].__notes__)
    assert errors["B"] is None and errors["C+D"] is None, errors
    assert [h.status for h in handles[1:]] == [RunStatus.SUCCEEDED] * 3
    assert handles[0].status is RunStatus.TRANSFORMING


@pytest.mark.parametrize("bad", list(NOT_A_RUN), ids=list(NOT_A_RUN))
async def test_get_many_fails_only_the_run_whose_item_is_not_a_run(bad: str) -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    service.script.append(answer(NOT_A_RUN[bad], run(B, "SUCCEEDED", 20)))
    async with client_of(service) as lume:
        outcomes = await lume.runs.get_many([A, B, rid(3)])
    first, second, third = outcomes
    assert isinstance(first.error, ResponseValidationError), first
    assert any(A in note for note in first.error.__notes__)
    assert second.ok and second.value.status is RunStatus.SUCCEEDED
    assert isinstance(third.error, RunNotFoundError)


async def test_a_direct_look_that_is_not_a_run_ends_only_the_waits_on_that_run() -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle, other = await lume.runs.get(A), await lume.runs.get(B)
        service.runs[A] = run(A, "SUCCEEDED", 20, updated_at="soon")  # what a direct GET says
        service.script.append(answer(run(B, "PENDING", 12)))  # A left out: looked up alone
        errors: list[BaseException | None] = []

        async def wait(call: Callable[[], Any]) -> None:
            errors.append(await outcome(call))
            service.runs[B] = run(B, "FAILED", 30)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, lambda: handle.wait(timeout=60, poll_interval=1))
            tg.start_soon(wait, lambda: other.wait(timeout=60, poll_interval=1))
        assert forgets_every_wait(lume)

    assert isinstance(errors[0], ResponseValidationError) and errors[1] is None, errors
    assert (handle.status, other.status) == (RunStatus.TRANSFORMING, RunStatus.FAILED)


async def first(runs: Any) -> AsyncRun:
    async with aclosing(runs):
        return await anext(runs)


async def outcome(wait: Callable[[], Any]) -> BaseException | None:
    try:
        await wait()
    except Exception as exc:
        return exc
    return None


@pytest.mark.parametrize("bad", list(MALFORMED), ids=list(MALFORMED))
async def test_a_malformed_answer_ends_every_wait_with_a_response_validation_error(
    bad: str,
) -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle, other = await lume.runs.get(A), await lume.runs.get(B)
        service.script.append(MALFORMED[bad])
        errors: list[BaseException | None] = []

        async def wait(call: Callable[[], Any]) -> None:
            errors.append(await outcome(call))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, lambda: handle.wait(timeout=60, poll_interval=1))
            tg.start_soon(wait, lambda: lume.runs.wait_all([other], timeout=60, poll_interval=1))
        assert forgets_every_wait(lume)

    assert [type(error) for error in errors] == [ResponseValidationError] * 2, errors
    assert handle.status is other.status is RunStatus.TRANSFORMING


async def test_a_huge_answer_full_of_repeats_and_strangers_still_ends_the_wait() -> None:
    service = Service(run(A, "TRANSFORMING", 10))
    repeats = [run(A, "SYNCING_TARGET", 11 + n % 40, label="x" * 100) for n in range(3000)]
    strangers = [run(rid(1000 + n), "FAILED", 30) for n in range(10_000)]
    absurd = ["run_" + "x" * 10_000] * 1000  # never asked about: nothing to do with them
    last = run(A, "PARTIAL_FAILED", 59)
    service.script.append(answer(*repeats[:1500], *strangers, last, unchanged=absurd))
    service.script.append(answer(*repeats))  # and a lagging replica
    async with client_of(service) as lume:
        handle = await lume.runs.get(A)
        await handle.wait(timeout=60, poll_interval=1)
        assert forgets_every_wait(lume)

    assert handle.status is RunStatus.PARTIAL_FAILED
    assert len(service.asked) == 1


# -- several waits on one run -------------------------------------------------------------------


async def test_waits_sharing_a_run_end_together_and_one_leaving_spares_the_others() -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle, same, other = [await lume.runs.get(run_id) for run_id in (A, A, B)]
        clock = lume._core.waiting._clock  # type: ignore[attr-defined]
        errors: dict[str, BaseException | None] = {}

        async def wait(name: str, call: Callable[[], Any]) -> None:
            errors[name] = await outcome(call)

        async with anyio.create_task_group() as tg:
            leaving = anyio.CancelScope()

            async def leaves() -> None:
                with leaving:
                    await lume.runs.wait_all([handle, other], timeout=None, poll_interval=1)

            tg.start_soon(leaves)
            tg.start_soon(wait, "handle", lambda: handle.wait(timeout=60, poll_interval=2))
            tg.start_soon(wait, "all", lambda: lume.runs.wait_all([same, handle, same]))
            tg.start_soon(wait, "other", lambda: other.wait(timeout=60, poll_interval=1))
            await clock.sleep(3.5)
            # A ends at the service as the wait naming it with B is cancelled, in the same turn.
            service.runs[A] = run(A, "CANCELED", 30)
            leaving.cancel()
            await clock.sleep(10)
            service.runs[B] = run(B, "SUCCEEDED", 40)
        assert forgets_every_wait(lume)

    assert errors == {"handle": None, "all": None, "other": None}
    assert handle.status is same.status is RunStatus.CANCELED
    assert other.status is RunStatus.SUCCEEDED


async def test_an_answer_that_comes_after_its_waiter_left_harms_no_other_wait() -> None:
    service = Service(run(A, "TRANSFORMING", 10), run(B, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle, other = await lume.runs.get(A), await lume.runs.get(B)
        held, released = anyio.Event(), anyio.Event()

        async def late(ids: list[str], known: dict[str, str]) -> Body:
            held.set()
            await released.wait()
            return {"items": [run(A, "FAILED", 30), run(B, "PENDING", 5)], "missing": []}

        service.script.append(late)
        errors: list[BaseException | None] = []
        async with anyio.create_task_group() as tg:
            leaving = anyio.CancelScope()

            async def leaves() -> None:
                with leaving:
                    await handle.wait(timeout=60, poll_interval=1)

            async def waits() -> None:
                errors.append(await outcome(lambda: other.wait(timeout=60, poll_interval=1)))

            tg.start_soon(leaves)
            tg.start_soon(waits)
            await held.wait()  # the poller's first request, about both runs, is in flight
            leaving.cancel()
            await anyio.lowlevel.checkpoint()
            released.set()
            service.runs[B] = run(B, "SUCCEEDED", 40)
        assert forgets_every_wait(lume)

    assert errors == [None]
    assert other.status is RunStatus.SUCCEEDED
    assert handle.status in (RunStatus.TRANSFORMING, RunStatus.FAILED)


# -- a handle ended by its own call while a wait on it polls --------------------------------------


def waiting(
    lume: AsyncLume,
    handle: AsyncRun,
    waiter: str,
    clock: VirtualClock,
    errors: list[BaseException | None],
    ended_at: list[float],
) -> Callable[[], Any]:
    """A task that waits on ``handle`` with ``waiter`` (polling once a minute), then records
    how the wait ended and when."""
    waits: dict[str, Callable[[], Any]] = {
        "wait": lambda: handle.wait(timeout=600, poll_interval=60),
        "wait_all": lambda: lume.runs.wait_all([handle], poll_interval=60),  # no timeout
        "as_completed": lambda: first(lume.runs.as_completed([handle], poll_interval=60)),
    }

    async def wait() -> None:
        errors.append(await outcome(waits[waiter]))
        ended_at.append(clock.monotonic())

    return wait


ENDS = ["cancel", "refresh"]


@pytest.mark.parametrize("waiter", ["wait", "wait_all", "as_completed"])
@pytest.mark.parametrize("how", ENDS)
async def test_a_handle_ended_by_its_own_call_ends_the_wait_on_it(how: str, waiter: str) -> None:
    clock = VirtualClock()
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        # Polls at 0 and at 54-60 s (a tenth of jitter): the run ends between the two, at 20.
        duration = 1_000_000 if how == "cancel" else 20
        handle = await lume.run(FLOW, f"synthetic://{how}-{waiter}?rows=3&duration={duration}")
        errors: list[BaseException | None] = []
        ended_at: list[float] = []
        wait = waiting(lume, handle, waiter, clock, errors, ended_at)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await clock.sleep(22)
            await (handle.cancel() if how == "cancel" else handle.refresh())
            assert handle.is_terminal
            changed = clock.monotonic()
            await clock.sleep(120)  # a wait still going then goes on for ever
            tg.cancel_scope.cancel()
        assert forgets_every_wait(lume)

    assert errors == [None]
    assert ended_at == [changed]  # at once: no poll needs to bring the news


@pytest.mark.parametrize("waiter", ["wait", "wait_all", "as_completed"])
async def test_a_handle_whose_followed_logs_reach_the_end_ends_the_wait_on_it(waiter: str) -> None:
    clock = VirtualClock()
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        handle = await lume.run(FLOW, f"synthetic://logs-{waiter}?rows=3&duration=20")
        errors: list[BaseException | None] = []
        ended_at: list[float] = []
        wait = waiting(lume, handle, waiter, clock, errors, ended_at)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await clock.sleep(22)  # the run ended at 20, between the polls at 0 and 54-60
            started = clock.monotonic()
            async for _ in handle.logs(follow=True, poll_interval=60):
                pass
            assert handle.is_terminal
            followed = clock.monotonic()
            await clock.sleep(120)  # a wait still going then goes on for ever
            tg.cancel_scope.cancel()
        assert forgets_every_wait(lume)

    assert errors == [None]
    assert started <= ended_at[0] <= followed  # with the follow: no poll needs to bring the news


@pytest.mark.parametrize("handles", [1, 2])
async def test_a_handle_refreshed_to_its_end_ends_its_waits_while_the_polls_lag(
    handles: int,
) -> None:
    stale = run(A, "TRANSFORMING", 10)
    service = Service(stale)
    service.script.extend(answer(stale) for _ in range(1000))  # batch-get lags behind for ever
    async with client_of(service) as lume:
        handle, twin = await lume.runs.get(A), await lume.runs.get(A)
        clock = lume._core.waiting._clock  # type: ignore[attr-defined]
        watched = [handle, twin][:handles]
        errors: list[BaseException | None] = []

        async def waits() -> None:
            errors.append(await outcome(lambda: lume.runs.wait_all(watched, poll_interval=1)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waits)
            await clock.sleep(5)
            service.runs[A] = run(A, "SUCCEEDED", 20)  # what a direct GET says
            await handle.refresh()
            await clock.sleep(30)  # polls back off to a few seconds apart
            tg.cancel_scope.cancel()
        assert forgets_every_wait(lume)

    assert errors == [None]
    assert [h.status for h in watched] == [RunStatus.SUCCEEDED] * handles


# -- a direct answer about another run ------------------------------------------------------------


CALLS: dict[str, Callable[[AsyncLume, AsyncRun], Any]] = {
    "runs.get": lambda lume, handle: lume.runs.get(handle.id),
    "refresh": lambda lume, handle: handle.refresh(),
    "cancel": lambda lume, handle: handle.cancel(),
    "update": lambda lume, handle: handle.update(label="x"),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_a_direct_answer_about_another_run_is_refused_and_the_handle_keeps_its_run(
    call: str,
) -> None:
    service = Service(run(A, "TRANSFORMING", 10))
    async with client_of(service) as lume:
        handle = await lume.runs.get(A)
        service.runs[A] = run(B, "SUCCEEDED", 20)  # the service now answers for A about B
        with pytest.raises(
            ResponseValidationError, match=f"asked for run '{A}', answered run '{B}'"
        ):
            await CALLS[call](lume, handle)
        assert (handle.id, handle.status) == (A, RunStatus.TRANSFORMING)
