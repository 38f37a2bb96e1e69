"""Fan-out: create_many, get_many and cancel_many against the emulator over real sockets.

Bounded workers, outcomes in input order, one failure never aborts the others, and cancelling the
caller stops everything it started.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any

import anyio
import pytest

from lume_async import (
    AsyncLume,
    AsyncRun,
    BatchOutcome,
    NotFoundError,
    RunNotFoundError,
    RunRequest,
    RunStatus,
)
from lume_async.testing import Emulator

pytestmark = pytest.mark.anyio

BATCH_GET = "POST /v1/runs/batch-get"
CREATE = "POST /v1/runs"


def requests(n: int, *, prefix: str = "fan", duration: float = 3600) -> list[RunRequest]:
    return [
        RunRequest(
            "customer_cleaner:v1",
            source_path=f"synthetic://{prefix}-{i}?rows=5&duration={duration}",
            label=f"item-{i}",
        )
        for i in range(n)
    ]


def ok_values(outcomes: list[BatchOutcome[AsyncRun]]) -> list[AsyncRun]:
    values = []
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        assert outcome.value is not None
        values.append(outcome.value)
    return values


def requests_to(emu: Emulator, route: str) -> int:
    return sum(emu.stats()["requests"].get(route, {}).values())


@pytest.fixture
async def threaded_emu() -> AsyncIterator[Emulator]:
    """An emulator on its own thread and loop, so this loop's tasks are the client's alone."""
    with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.fixture
async def threaded_lume(threaded_emu: Emulator) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(api_key=threaded_emu.api_key, base_url=threaded_emu.url) as client:
        yield client


# -- create_many ------------------------------------------------------------------------------


async def test_create_many_returns_one_outcome_per_request_in_input_order(
    lume: AsyncLume,
) -> None:
    outcomes = await lume.runs.create_many(requests(60), concurrency=7)

    assert [outcome.index for outcome in outcomes] == list(range(60))
    assert [run.label for run in ok_values(outcomes)] == [f"item-{i}" for i in range(60)]
    assert len({run.id for run in ok_values(outcomes)}) == 60


async def test_create_many_accepts_plain_dicts(lume: AsyncLume) -> None:
    outcomes = await lume.runs.create_many(
        [{"flow_version": "invoice_mapper:v1", "source_path": "s3://b/dict", "tags": ["x"]}]
    )
    (run,) = ok_values(outcomes)
    assert (run.flow_version, run.tags) == ("invoice_mapper:v1", ("x",))


async def test_a_failed_item_never_aborts_the_others(lume: AsyncLume) -> None:
    items: list[RunRequest | dict[str, Any]] = [*requests(10)]
    items[2] = RunRequest("no_such_flow:v9", source_path="s3://b/unknown-version")
    items[5] = {"flow_version": "", "source_path": "s3://b/empty-version"}
    items[7] = {"flow_version": "customer_cleaner:v1", "source_path": "s3://b/x", "nope": 1}

    outcomes = await lume.runs.create_many(items, concurrency=3)

    assert [outcome.ok for outcome in outcomes] == [i not in (2, 5, 7) for i in range(10)]
    assert isinstance(outcomes[2].error, NotFoundError)
    assert isinstance(outcomes[5].error, ValueError)
    assert isinstance(outcomes[7].error, TypeError)
    assert [o.value.label for o in outcomes if o.value is not None] == [
        f"item-{i}" for i in range(10) if i not in (2, 5, 7)
    ]


async def test_on_progress_counts_done_total_and_failed(lume: AsyncLume) -> None:
    items: list[RunRequest | dict[str, Any]] = [*requests(12)]
    items[0] = {"flow_version": ""}
    items[11] = {"flow_version": "no_such_flow:v1", "source_path": "s3://b/p"}
    calls: list[tuple[int, int, int]] = []

    await lume.runs.create_many(items, concurrency=4, on_progress=lambda *args: calls.append(args))

    assert [done for done, _, _ in calls] == list(range(1, 13))
    assert {total for _, total, _ in calls} == {12}
    assert calls[-1] == (12, 12, 2)
    assert [failed for _, _, failed in calls] == sorted(failed for _, _, failed in calls)


async def test_an_exception_in_on_progress_stops_the_batch_and_propagates(
    lume: AsyncLume,
) -> None:
    def explode(done: int, total: int, failed: int) -> None:
        if done == 3:
            raise RuntimeError("progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        await lume.runs.create_many(requests(40), concurrency=2, on_progress=explode)


@pytest.mark.parametrize(
    ("concurrency", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)],
)
async def test_concurrency_must_be_a_positive_int(
    lume: AsyncLume, concurrency: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="concurrency"):
        await lume.runs.create_many(requests(1), concurrency=concurrency)


async def test_an_empty_batch_sends_nothing(lume: AsyncLume, emu: Emulator) -> None:
    assert await lume.runs.create_many([]) == []
    assert await lume.runs.get_many([]) == []
    assert await lume.runs.cancel_many([]) == []
    assert emu.stats()["requests"] == {}


async def test_cancelling_create_many_midway_leaves_no_task_behind(
    threaded_lume: AsyncLume, threaded_emu: Emulator
) -> None:
    await threaded_lume.runs.create(
        "customer_cleaner:v1", "s3://b/warm-up"
    )  # opens the pool, so only the batch's own tasks are compared
    before = asyncio.all_tasks()
    halfway = anyio.Event()

    def progress(done: int, total: int, failed: int) -> None:
        if done >= 100:
            halfway.set()

    async with anyio.create_task_group() as tg:

        async def create() -> None:
            await threaded_lume.runs.create_many(
                requests(3000), concurrency=16, on_progress=progress
            )
            pytest.fail("create_many finished although it was cancelled")

        tg.start_soon(create)
        with anyio.fail_after(5):
            await halfway.wait()
        tg.cancel_scope.cancel()

    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    created = threaded_emu.stats()["runs_created"]
    assert 100 < created < 3000
    await asyncio.sleep(0.05)
    # Nothing keeps creating once the caller is cancelled (at most the requests already sent
    # land: eight batches of 100).
    assert threaded_emu.stats()["runs_created"] <= created + 800


async def test_create_many_runs_a_fixed_number_of_workers_not_one_task_per_item(
    threaded_lume: AsyncLume,
) -> None:
    await threaded_lume.runs.create("customer_cleaner:v1", "s3://b/warm-up")
    loop = asyncio.get_running_loop()
    created: list[str] = []
    previous = loop.get_task_factory()

    def counting_factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        code = getattr(coro, "cr_code", None)
        # aiohttp writes each request body from a short task of its own; raw aiohttp does the
        # same, so it is the HTTP library's cost per request, not the batch's.
        if code is None or "/aiohttp/" not in code.co_filename:
            created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting_factory)
    try:
        # A thousand items: fifty times the tasks allowed, were there a task per item, or even
        # one per fifty.
        outcomes = await threaded_lume.runs.create_many(
            requests(1000, prefix="many"), concurrency=16
        )
    finally:
        loop.set_task_factory(previous)

    assert sum(outcome.ok for outcome in outcomes) == 1000
    assert len(created) <= 16 + 4, created[:40]


# -- get_many ---------------------------------------------------------------------------------


async def test_get_many_folds_ids_into_batch_gets_and_keeps_input_order(
    lume: AsyncLume, emu: Emulator
) -> None:
    runs = ok_values(await lume.runs.create_many(requests(250), concurrency=32))
    ids: list[Any] = [run.id for run in reversed(runs)]
    ids.insert(10, "run_01HY0000000000000000000000")  # well formed, unknown
    ids.insert(200, "not a run id!")
    batch_gets = requests_to(emu, BATCH_GET)
    progress: list[tuple[int, int, int]] = []

    outcomes = await lume.runs.get_many(
        ids, concurrency=2, on_progress=lambda *args: progress.append(args)
    )

    assert [outcome.index for outcome in outcomes] == list(range(252))
    assert isinstance(outcomes[10].error, RunNotFoundError)
    assert isinstance(outcomes[200].error, ValueError)
    found = [o.value.id for o in outcomes if o.value is not None]
    assert found == [run.id for run in reversed(runs)]
    assert requests_to(emu, BATCH_GET) - batch_gets == math.ceil(252 / 100)
    assert requests_to(emu, "GET /v1/runs/{run_id}") == 0
    assert progress[-1] == (252, 252, 2)


async def test_get_many_of_a_failed_request_fails_only_that_requests_ids(
    lume: AsyncLume, emu: Emulator
) -> None:
    runs = ok_values(await lume.runs.create_many(requests(150), concurrency=32))
    other = emu.add_tenant()
    async with AsyncLume(api_key=other, base_url=emu.url) as stranger:
        outcomes = await stranger.runs.get_many([run.id for run in runs])
    assert all(isinstance(outcome.error, RunNotFoundError) for outcome in outcomes)


async def test_an_exception_in_get_many_on_progress_propagates(lume: AsyncLume) -> None:
    def explode(done: int, total: int, failed: int) -> None:
        raise RuntimeError("progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        await lume.runs.get_many(["run_01HY0000000000000000000000"], on_progress=explode)


# -- cancel_many ------------------------------------------------------------------------------


async def test_cancel_many_cancels_each_run_and_reports_unknown_ones(lume: AsyncLume) -> None:
    runs = ok_values(await lume.runs.create_many(requests(30), concurrency=8))
    ids = [run.id for run in runs]
    ids.insert(4, "run_01HY0000000000000000000000")

    outcomes = await lume.runs.cancel_many(ids, concurrency=5)

    assert [outcome.index for outcome in outcomes] == list(range(31))
    assert isinstance(outcomes[4].error, RunNotFoundError)
    cancelled = [o.value for o in outcomes if o.value is not None]
    assert [run.id for run in cancelled] == [run.id for run in runs]
    assert {run.status for run in cancelled} == {RunStatus.CANCELED}
