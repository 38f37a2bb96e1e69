"""What an Airflow deployment meets that a happy path does not: bad connections, failing first
looks shared by many triggers, and how each of them ends the task."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from lume_airflow import LumeHook, LumeRunOperator, LumeRunSensor, LumeRunTrigger
from lume_async.testing import FaultProfile

CONN = "lume_adversarial"
RUN_ID = "run_01HZZZZZZZZZZZZZZZZZZZZZZZ"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def connection() -> Iterator[Callable[[dict[str, Any] | str], str]]:
    """Define ``lume_adversarial`` from a JSON object or a URI for the length of the test."""

    def define(value: dict[str, Any] | str) -> str:
        os.environ["AIRFLOW_CONN_LUME_ADVERSARIAL"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
        return CONN

    yield define
    os.environ.pop("AIRFLOW_CONN_LUME_ADVERSARIAL", None)


def operator() -> LumeRunOperator:
    return LumeRunOperator(
        task_id="clean", flow_version="customer_cleaner:v1", source_path="s3://a"
    )


# -- a connection that cannot give a client ends the wait with an event ---------------------------


@pytest.mark.parametrize(
    "definition",
    [
        pytest.param(None, id="not defined"),
        pytest.param(
            {"conn_type": "lume", "host": "https://exa mple.com", "password": "k"}, id="host"
        ),
        pytest.param(
            {"conn_type": "lume", "host": "https://a.example", "password": " k"}, id="key"
        ),
    ],
)
def test_a_connection_the_trigger_cannot_use_fails_the_task_with_its_reason(
    connection: Callable[[dict[str, Any] | str], str], definition: dict[str, Any] | None
) -> None:
    conn_id = connection(definition) if definition is not None else "lume_nowhere"

    event = asyncio.run(LumeRunTrigger(RUN_ID, conn_id, 0.05, 60).wait())

    assert event["run_id"] == RUN_ID
    assert event["status"] is None
    assert event["message"]
    json.dumps(event)  # a TriggerEvent's payload goes through JSON
    with pytest.raises(AirflowException, match=RUN_ID) as failed:
        operator().execute_complete({}, event)  # type: ignore[arg-type]
    assert event["message"] in str(failed.value)


# -- a connection URI's path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "base_url"),
    [
        ("lume://:k@gw.example.com/lume", "https://gw.example.com/lume"),
        ("lume://https://:k@gw.example.com:8443/lume/v2/", "https://gw.example.com:8443/lume/v2"),
        ("lume://http://:k@127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ],
)
def test_the_path_of_a_connection_uri_stays_in_the_base_url(
    connection: Callable[[dict[str, Any] | str], str], uri: str, base_url: str
) -> None:
    with LumeHook(connection(uri)).get_client() as lume:
        assert lume.base_url == base_url


# -- a PARTIAL_FAILED run with fail_on_partial ----------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_fail_on_partial_fails_the_task_without_retries_that_would_find_the_same_run(
    run_dag: Any, emu: Any, deferrable: bool
) -> None:
    retried: list[int] = []
    with DAG("lume_partial_retries", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version="customer_cleaner:v1",
            source_path="synthetic://some_bad?rows=200&reject_rate=0.1",
            deferrable=deferrable,
            poll_interval=0.05,
            fail_on_partial=True,
            retries=2,
            retry_delay=timedelta(0),
            on_retry_callback=lambda context: retried.append(context["ti"].try_number),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()} == {"clean": "failed"}
    assert retried == []
    assert emu.stats()["runs_created"] == 1


# -- an outage that outlasts the trigger's timeout ------------------------------------------------


@pytest.mark.anyio
async def test_an_outage_that_outlasts_a_deferred_sensors_timeout_is_its_timeout(
    emu: Any, lume: Any, triggerer_on_virtual_time: None
) -> None:
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before", retry_after=1))
    try:
        event = await asyncio.wait_for(
            LumeRunTrigger(run.id, poll_interval=0.05, timeout=0.2).wait(), timeout=30
        )
    finally:
        emu.set_faults(None)
    sensor = LumeRunSensor(task_id="wait", run_id=run.id, deferrable=True, poke_interval=0.05)

    assert event["timed_out"] is True
    assert "ServerError" in event["message"]
    with pytest.raises(AirflowSensorTimeout, match=run.id):  # no retries, as a timeout
        sensor.execute_complete({}, event)  # type: ignore[arg-type]


def test_a_deferred_sensor_whose_connection_the_triggerer_lacks_fails_saying_so(
    run_dag: Any, emu: Any, lume: Any
) -> None:
    # The sensor reads no connection before it defers: the triggerer is the first to miss it.
    run = lume.run("customer_cleaner:v1", "synthetic://slow?duration=3600")
    errors: list[str] = []
    with DAG("lume_sensor_no_connection", schedule=None, start_date=START) as dag:
        LumeRunSensor(
            task_id="wait",
            run_id=run.id,
            lume_conn_id="lume_nowhere",
            deferrable=True,
            poke_interval=0.05,
            on_failure_callback=lambda context: errors.append(str(context["exception"])),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "failed"
    assert len(errors) == 1
    assert "lume_nowhere" in errors[0] and run.id in errors[0]
