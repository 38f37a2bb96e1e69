"""Triggers on one event loop share one client per connection, and give it back however they end."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk.exceptions import AirflowNotFoundException

from lume_airflow import LumeRunTrigger
from lume_airflow._shared import SharedClient, borrowers, shared_client

pytestmark = pytest.mark.anyio

CONN = "lume_default"


async def event_of(trigger: LumeRunTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def start(triggers: list[LumeRunTrigger]) -> list[asyncio.Task[dict[str, Any]]]:
    return [asyncio.get_running_loop().create_task(event_of(t)) for t in triggers]


def long_runs(lume: Any, n: int) -> list[str]:
    outcomes = lume.runs.create_many(
        [
            {
                "flow_version": "customer_cleaner:v1",
                "source_path": f"synthetic://b{i}?duration=3600",
            }
            for i in range(n)
        ]
    )
    return [outcome.unwrap().id for outcome in outcomes]


def status_requests(emu: Any) -> tuple[int, int]:
    """(batch-get requests, single GETs) the emulator has answered."""
    requests = emu.stats()["requests"]
    batch = sum(requests.get("POST /v1/runs/batch-get", {}).values())
    single = sum(requests.get("GET /v1/runs/{run_id}", {}).values())
    return batch, single


@pytest.fixture
async def no_task_left() -> AsyncIterator[None]:
    """Fails the test if a task of the SDK (sweeper, lookups, connect, close) outlives it."""
    yield
    assert [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("lume")] == []


@pytest.fixture
def other_connection(emu: Any) -> Iterator[str]:
    os.environ["AIRFLOW_CONN_LUME_OTHER"] = json.dumps(
        {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
    )
    try:
        yield "lume_other"
    finally:
        del os.environ["AIRFLOW_CONN_LUME_OTHER"]


async def test_triggers_on_one_loop_wait_through_one_client_closed_after_the_last(
    emu: Any, lume: Any, no_task_left: None
) -> None:
    run_ids = long_runs(lume, 40)
    async with shared_client(CONN) as mine:
        tasks = start([LumeRunTrigger(run_id, poll_interval=0.05) for run_id in run_ids])
        await asyncio.sleep(0)  # every trigger has borrowed by now
        assert borrowers(CONN) == 41
        await mine.get(run_ids[-1])  # after the triggers' first looks: they are waiting now
        emu.advance(3600)

        events = await asyncio.gather(*tasks)

        assert {event["status"] for event in events} == {"SUCCEEDED"}
        assert borrowers(CONN) == 1
        assert not mine.client.is_closed
    assert mine.client.is_closed
    assert borrowers(CONN) == 0
    batch, single = status_requests(emu)
    assert single == 0
    # One request asks about all 40 runs: the first looks, then one per sweep. Forty clients
    # would have made at least 40 first looks alone.
    assert batch < 40


async def test_the_first_looks_of_many_triggers_are_gathered_into_batch_gets(
    emu: Any, lume: Any, no_task_left: None
) -> None:
    run_ids = long_runs(lume, 250)
    emu.advance(3600)  # all finished: each trigger's first look ends its wait

    events = await asyncio.gather(*start([LumeRunTrigger(r) for r in run_ids]))

    assert [event["run_id"] for event in events] == run_ids
    assert {event["status"] for event in events} == {"SUCCEEDED"}
    assert status_requests(emu) == (3, 0)  # 250 ids, 100 per request


async def test_cancelled_triggers_give_the_client_back_and_leave_no_task_behind(
    emu: Any, lume: Any, no_task_left: None
) -> None:
    run_ids = long_runs(lume, 30)
    async with shared_client(CONN) as mine:
        tasks = start([LumeRunTrigger(run_id, poll_interval=0.05) for run_id in run_ids])
        await mine.get(run_ids[-1])  # the triggers are in their waits

        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)

        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert borrowers(CONN) == 1
        assert not mine.client.is_closed
    assert mine.client.is_closed


async def test_the_last_trigger_cancelled_closes_the_client(emu: Any, lume: Any) -> None:
    [run_id] = long_runs(lume, 1)
    seen: list[SharedClient] = []

    async def borrow_and_wait() -> None:
        async with shared_client(CONN) as shared:
            seen.append(shared)
            await shared.get(run_id)
            await LumeRunTrigger(run_id).wait()

    task = asyncio.get_running_loop().create_task(borrow_and_wait())
    for _ in range(100):
        await asyncio.sleep(0.01)
        if seen:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert seen[0].client.is_closed
    assert borrowers(CONN) == 0


async def test_a_trigger_cancelled_while_the_client_is_made_does_not_fail_the_others(
    emu: Any, lume: Any, no_task_left: None
) -> None:
    run_ids = long_runs(lume, 10)
    emu.advance(3600)
    tasks = start([LumeRunTrigger(run_id) for run_id in run_ids])
    await asyncio.sleep(0)  # all are waiting for the connection to be looked up

    for task in tasks[:5]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in results[:5])
    assert [r["status"] for r in results[5:]] == ["SUCCEEDED"] * 5  # type: ignore[index]
    assert borrowers(CONN) == 0


async def test_every_trigger_cancelled_while_the_client_is_made_leaves_nothing(
    emu: Any, lume: Any, no_task_left: None
) -> None:
    run_ids = long_runs(lume, 5)
    tasks = start([LumeRunTrigger(run_id) for run_id in run_ids])
    await asyncio.sleep(0)

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    assert borrowers(CONN) == 0
    assert status_requests(emu) == (0, 0)


async def test_each_connection_has_its_own_client(emu: Any, other_connection: str) -> None:
    async with (
        shared_client(CONN) as a,
        shared_client(other_connection) as b,
        shared_client(CONN) as a_again,
    ):
        assert a_again is a
        assert b is not a
        assert (borrowers(CONN), borrowers(other_connection)) == (2, 1)
    assert a.client.is_closed and b.client.is_closed


async def test_each_event_loop_has_its_own_client(emu: Any) -> None:
    theirs: list[SharedClient] = []
    borrowed, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with shared_client(CONN) as shared:
            theirs.append(shared)
            borrowed.set()
            await asyncio.to_thread(release.wait)

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        await asyncio.to_thread(borrowed.wait)
        async with shared_client(CONN) as mine:
            assert mine is not theirs[0]
            assert borrowers(CONN) == 1  # this loop's borrower only
    finally:
        release.set()
        await asyncio.to_thread(thread.join)
    assert theirs[0].client.is_closed and mine.client.is_closed


async def test_a_connection_that_cannot_be_found_is_looked_up_again_next_time(
    emu: Any,
) -> None:
    trigger = LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ", "lume_later")
    missing = await trigger.wait()
    assert missing["message"].startswith(AirflowNotFoundException.__name__)
    assert borrowers("lume_later") == 0

    os.environ["AIRFLOW_CONN_LUME_LATER"] = json.dumps(
        {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
    )
    try:
        event = await trigger.wait()
    finally:
        del os.environ["AIRFLOW_CONN_LUME_LATER"]
    assert event["message"].startswith("RunNotFoundError")
