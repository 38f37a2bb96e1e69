"""Edges of the provider: runs found in flight, connection URLs, transient errors, sensor limits.

Each test drives the provider against the emulator over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from lume_airflow import LumeHook, LumeRunOperator, LumeRunSensor, LumeRunTrigger
from lume_async import RunStatus
from lume_async.testing import FaultProfile

from ._instances import task_instance as instance_of

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)
FLOW = "customer_cleaner:v1"
SLOW = "synthetic://slow?duration=3600"


def states(dag_run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def recorder(into: list[Any]) -> Callable[[Any], None]:
    """A callback that keeps the try number of each call."""

    def record(context: Any) -> None:
        into.append(context["ti"].try_number)

    return record


def task_instance(**changes: Any) -> Any:
    return instance_of("lume_edges", **changes)


@pytest.fixture
def connection() -> Iterator[Callable[[dict[str, Any] | str], str]]:
    """Define ``lume_edges`` from a JSON object or a URI for the length of the test."""

    def define(value: dict[str, Any] | str) -> str:
        os.environ["AIRFLOW_CONN_LUME_EDGES"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
        return "lume_edges"

    yield define
    os.environ.pop("AIRFLOW_CONN_LUME_EDGES", None)


# -- a run found in flight belongs to whoever started it ------------------------------------------


def test_killing_a_task_leaves_alone_a_run_it_found_in_flight(
    run_dag: Any, emu: Any, lume: Any
) -> None:
    theirs = lume.run(FLOW, SLOW)  # started elsewhere (another DAG, a person, a script)
    with DAG("lume_edges_found_in_flight", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path=SLOW,
            deferrable=False,
            poll_interval=0.05,
            execution_timeout=timedelta(seconds=0.3),  # Airflow kills the task: on_kill
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "failed"
    assert emu.stats()["runs_created"] == 1  # the task used the run in flight
    assert lume.run_status(theirs.id).status is not RunStatus.CANCELED


@pytest.mark.parametrize("found", [True, False], ids=["found in flight", "its own"])
def test_a_deferred_task_killed_cancels_only_a_run_it_started(
    emu: Any, lume: Any, found: bool
) -> None:
    theirs = lume.run(FLOW, SLOW) if found else None
    operator = LumeRunOperator(
        task_id="clean", flow_version=FLOW, source_path=SLOW, deferrable=True
    )

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": task_instance()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LumeRunTrigger)
    asyncio.run(trigger.on_kill())  # the user marks the deferred task failed

    assert emu.stats()["runs_created"] == 1
    assert theirs is None or trigger.run_id == theirs.id
    canceled = lume.run_status(trigger.run_id).status is RunStatus.CANCELED
    assert canceled is not found


# -- the connection's base URL --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("https://gw.example.com/lume", "https://gw.example.com:8443/lume"),
        ("gw.example.com/lume/", "https://gw.example.com:8443/lume"),
    ],
)
def test_a_port_goes_into_the_authority_of_a_host_with_a_path(
    connection: Callable[[dict[str, Any]], str], host: str, base_url: str
) -> None:
    conn_id = connection({"conn_type": "lume", "host": host, "port": 8443, "password": "a-key"})

    with LumeHook(conn_id).get_client() as lume:
        assert lume.base_url == base_url


@pytest.mark.parametrize("password", ["the-key\n", " the-key"], ids=["newline", "leading space"])
def test_a_key_with_whitespace_is_refused_clearly_without_showing_it(
    connection: Callable[[dict[str, Any]], str], password: str
) -> None:
    conn_id = connection(
        {"conn_type": "lume", "host": "https://api.example.com", "password": password}
    )

    with pytest.raises(ValueError, match="api_key") as refused:
        LumeHook(conn_id).get_client()
    assert "the-key" not in str(refused.value)


def test_a_refused_key_is_not_shown_by_the_connection_test_or_the_trigger(
    emu: Any, connection: Callable[[dict[str, Any]], str]
) -> None:
    secret = "lume-secret-0123456789abcdef"
    conn_id = connection({"conn_type": "lume", "host": emu.url, "password": secret})

    ok, message = LumeHook(conn_id).test_connection()
    trigger = LumeRunTrigger("run_01HZZZZZZZZZZZZZZZZZZZZZZZ", conn_id)
    event = asyncio.run(trigger.wait())

    assert not ok
    assert event["message"].startswith("AuthenticationError")
    assert secret not in message
    assert secret not in json.dumps(event)
    assert secret not in repr(trigger)


# -- transient errors while the trigger waits -----------------------------------------------------


@pytest.mark.anyio
async def test_a_trigger_rides_out_an_outage_at_its_first_look(
    emu: Any, lume: Any, triggerer_on_virtual_time: None
) -> None:
    run = lume.run(FLOW, SLOW)
    # The service answers 503 to every status request, as during a short outage; a triggerer
    # (re)started now takes its first look at each deferred run.
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before", retry_after=1))
    task = asyncio.get_running_loop().create_task(
        LumeRunTrigger(run.id, poll_interval=0.05, timeout=None).wait()
    )
    while True:  # the condition lives in the emulator's thread: there is nothing to await
        refused = emu.stats()["requests"].get("POST /v1/runs/batch-get", {}).get("503", 0)
        if refused >= 4 or task.done():  # the first look and its three retries were refused
            break
        await asyncio.sleep(0.01)
    emu.set_faults(None)  # the outage is over, and the run goes on to succeed
    emu.advance(3600)

    event = await asyncio.wait_for(task, timeout=30)

    assert (event["status"], event["message"]) == ("SUCCEEDED", None)


# -- the sensor's timeout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deferrable",
    [
        pytest.param(False, id="poking"),
        pytest.param(True, id="deferred"),
    ],
)
def test_a_sensor_that_times_out_fails_without_retries(
    run_dag: Any, emu: Any, lume: Any, deferrable: bool
) -> None:
    run = lume.run(FLOW, SLOW)
    retried: list[int] = []
    with DAG("lume_edges_sensor_timeout", schedule=None, start_date=START) as dag:
        LumeRunSensor(
            task_id="wait",
            run_id=run.id,
            deferrable=deferrable,
            poke_interval=0.05,
            timeout=0,
            retries=2,
            retry_delay=timedelta(0),
            on_retry_callback=recorder(retried),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert states(dag_run) == {("wait", -1): "failed"}
    assert retried == []  # Airflow's sensor timeout: no retry would wait any better


@pytest.mark.parametrize(
    "sensor",
    [pytest.param({}, id="retries"), pytest.param({"silent_fail": True}, id="silent_fail")],
)
def test_a_sensor_whose_run_failed_fails_at_once_with_the_runs_errors(
    run_dag: Any, emu: Any, lume: Any, sensor: dict[str, Any]
) -> None:
    run = lume.run(FLOW, "synthetic://bad?outcome=FAILED")
    emu.advance(60)
    retried: list[int] = []
    errors: list[str] = []

    def record(context: Any) -> None:
        errors.append(str(context["exception"]))

    with DAG("lume_edges_sensor_failed", schedule=None, start_date=START) as dag:
        LumeRunSensor(
            task_id="wait",
            run_id=run.id,
            poke_interval=0.05,
            timeout=0,
            retries=2,
            retry_delay=timedelta(0),
            on_retry_callback=recorder(retried),
            on_failure_callback=record,
            **sensor,
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert states(dag_run) == {("wait", -1): "failed"}
    assert retried == []  # the run has ended: no retry can change it
    assert len(errors) == 1
    assert "ended FAILED" in errors[0]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["None", "12345", "run-01HZZZ"])
def test_a_trigger_refuses_what_is_not_a_run_id_when_it_is_made(run_id: str) -> None:
    # "None" is what "{{ ti.xcom_pull(...) }}" renders to when there is no such XCom.
    with pytest.raises(ValueError, match="run_id"):
        LumeRunTrigger(run_id)


@pytest.mark.anyio
async def test_a_trigger_given_only_a_deadline_ends_with_a_message_when_it_passes(
    emu: Any, lume: Any
) -> None:
    run = lume.run(FLOW, SLOW)
    trigger = LumeRunTrigger(run.id, timeout=None, deadline=time.time())

    event = await trigger.wait()

    assert event["run_id"] == run.id
    assert event["message"]
    assert not lume.run_status(run.id).is_terminal


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"source_path": "s3://x", "source_data": [{"name": "Ada"}]}, id="two sources"),
        pytest.param({"flow_version": "no_such_flow:v1", "source_path": "s3://x"}, id="no flow"),
    ],
)
def test_a_request_that_cannot_succeed_fails_the_task_without_retries(
    run_dag: Any, emu: Any, request_: dict[str, Any]
) -> None:
    retried: list[int] = []
    with DAG("lume_edges_hopeless", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            **{"flow_version": FLOW, **request_},
            retries=2,
            retry_delay=timedelta(0),
            on_retry_callback=recorder(retried),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert states(dag_run) == {("clean", -1): "failed"}
    assert retried == []
    assert emu.stats()["runs_created"] == 0
