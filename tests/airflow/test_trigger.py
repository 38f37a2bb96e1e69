"""LumeRunTrigger: what it serializes, and the one event it fires for each way a wait ends."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import anyio
import pytest

pytest.importorskip("airflow")

from airflow.sdk.serde import deserialize, serialize
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_airflow import LumeRunTrigger
from lume_async import RunStatus

pytestmark = pytest.mark.anyio

RUN_ID = st.from_regex(r"run_[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True)
CONN_ID = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=40)
SECONDS = st.floats(min_value=0.001, max_value=1e7, allow_nan=False)


def rebuilt(trigger: LumeRunTrigger) -> LumeRunTrigger:
    """The trigger as the triggerer makes it from what the task sent (Airflow's serde, JSON)."""
    classpath, kwargs = trigger.serialize()
    assert classpath == "lume_airflow.LumeRunTrigger"
    wire = json.loads(json.dumps(serialize(kwargs)))
    return LumeRunTrigger(**deserialize(wire))


async def first_event(trigger: LumeRunTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


@settings(max_examples=60, deadline=None)
@given(
    run_id=RUN_ID,
    conn_id=CONN_ID,
    poll_interval=SECONDS,
    timeout=st.none() | SECONDS,
    cancel_on_kill=st.booleans(),
)
def test_a_trigger_survives_the_round_trip_through_airflows_serialization(
    run_id: str, conn_id: str, poll_interval: float, timeout: float | None, cancel_on_kill: bool
) -> None:
    trigger = LumeRunTrigger(run_id, conn_id, poll_interval, timeout, cancel_on_kill=cancel_on_kill)

    again = rebuilt(trigger)

    assert again.serialize() == trigger.serialize()
    assert rebuilt(again).serialize() == trigger.serialize()


def test_the_deadline_travels_with_the_trigger_so_a_restart_does_not_reset_the_clock() -> None:
    trigger = LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ", timeout=600)
    made = time.time()

    again = rebuilt(trigger)

    assert again.deadline == trigger.deadline
    assert trigger.deadline is not None
    assert made - 5 < trigger.deadline - 600 <= made
    assert LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ", timeout=None).deadline is None


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"run_id": 42}, TypeError, "run_id"),
        ({"run_id": ""}, ValueError, "run_id"),
        ({"run_id": "run_01H/../../x"}, ValueError, "run_id"),
        ({"lume_conn_id": ""}, ValueError, "lume_conn_id"),
        ({"lume_conn_id": None}, TypeError, "lume_conn_id"),
        ({"poll_interval": 0}, ValueError, "poll_interval"),
        ({"poll_interval": math.inf}, ValueError, "poll_interval"),
        ({"poll_interval": "5"}, TypeError, "poll_interval"),
        ({"poll_interval": True}, TypeError, "poll_interval"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": math.nan}, ValueError, "timeout"),
        ({"timeout": "1h"}, TypeError, "timeout"),
        ({"cancel_on_kill": "yes"}, TypeError, "cancel_on_kill"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    arguments: dict[str, Any] = {"run_id": "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", **kwargs}
    with pytest.raises(error, match=names):
        LumeRunTrigger(**arguments)


async def test_the_event_of_a_finished_run_carries_its_summary(emu: Any, lume: Any) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://p?rows=50&reject_rate=0.1")
    emu.advance(60)

    event = await first_event(LumeRunTrigger(run.id, poll_interval=0.05))

    assert event == {
        "run_id": run.id,
        "status": "PARTIAL_FAILED",
        "mapped_rows": 45,
        "rejected_rows": 5,
        "target_locations": {
            "mapped": f"lume://runs/{run.id}/mapped",
            "rejects": f"lume://runs/{run.id}/rejects",
        },
        "errors": event["errors"],
        "message": None,
    }


async def test_the_event_of_a_failed_run_carries_the_runs_errors(emu: Any, lume: Any) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://bad?outcome=CRASHED")

    event = await first_event(LumeRunTrigger(run.id, poll_interval=0.05))

    assert event["status"] == "CRASHED"
    assert event["errors"]
    assert event["message"] is None
    assert all(isinstance(line, str) and line for line in event["errors"])


async def test_a_trigger_waits_for_a_running_run_to_finish(emu: Any, lume: Any) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")
    trigger = LumeRunTrigger(run.id, poll_interval=0.05)

    async def finish_soon() -> None:
        # Once the trigger has had its first look (the run is RUNNING), the run ends. The
        # condition lives in the emulator's thread: there is no event to await.
        while emu.stats()["requests"].get("POST /v1/runs/batch-get") is None:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        emu.advance(3600)

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_soon)
        event = await first_event(trigger)

    assert event["status"] == "SUCCEEDED"
    assert lume.run_status(run.id).status is RunStatus.SUCCEEDED
    assert emu.stats()["requests"]["POST /v1/runs/batch-get"]["200"] >= 2  # a look, then sweeps


async def test_when_time_is_up_the_event_says_so_and_the_run_goes_on(emu: Any, lume: Any) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")

    event = await first_event(LumeRunTrigger(run.id, poll_interval=0.05, timeout=0))

    assert event["run_id"] == run.id
    assert event["status"] in {"CREATED", "PENDING", "RUNNING", "SYNCING_SOURCE"}
    assert "timeout of 0 s" in event["message"]
    assert not lume.run_status(run.id).is_terminal


async def test_a_run_that_does_not_exist_ends_the_wait_with_a_message(emu: Any) -> None:
    event = await first_event(LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ"))

    assert event["status"] is None
    assert event["message"].startswith("RunNotFoundError")


async def test_on_kill_cancels_the_run_when_the_trigger_started_it(emu: Any, lume: Any) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")

    await LumeRunTrigger(run.id, cancel_on_kill=True).on_kill()

    assert lume.run_status(run.id).status is RunStatus.CANCELED


async def test_on_kill_leaves_the_run_alone_when_it_was_not_the_triggers(
    emu: Any, lume: Any
) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")

    await LumeRunTrigger(run.id).on_kill()

    assert not lume.run_status(run.id).is_terminal
    assert emu.stats()["requests"].get("POST /v1/runs/{run_id}/cancel") is None


@pytest.mark.parametrize("password", [None, "not-the-key"], ids=["no key", "a refused key"])
async def test_a_key_that_does_not_work_ends_the_wait_with_a_message(
    emu: Any, monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    monkeypatch.delenv("LUME_API_KEY", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_LUME_KEYLESS",
        json.dumps({"conn_type": "lume", "host": emu.url, "password": password}),
    )

    event = await first_event(LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ", "lume_keyless"))

    assert event["status"] is None
    assert event["message"].startswith("AuthenticationError")
