"""LumeRunSensor in real DAG runs: it waits for a run started elsewhere, in either mode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk import DAG, task

from lume_airflow import LumeRunOperator, LumeRunSensor

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)
RUN_ID = "{{ ti.xcom_pull(task_ids='start')['run_id'] }}"


def sensor_dag(
    dag_id: str, source_path: str, results: list[Any], errors: list[str], **sensor: Any
) -> DAG:
    """start (wait=False) >> wait (the sensor, on start's run) >> collect."""

    def record(context: Any) -> None:
        errors.append(str(context["exception"]))

    with DAG(dag_id, schedule=None, start_date=START) as dag:
        start = LumeRunOperator(
            task_id="start", flow_version="customer_cleaner:v1", source_path=source_path, wait=False
        )
        wait = LumeRunSensor(
            task_id="wait", run_id=RUN_ID, poke_interval=0.05, on_failure_callback=record, **sensor
        )

        @task
        def collect(value: Any) -> None:
            results.append(value)

        start >> wait
        collect(wait.output)
    return dag


def wait_state(dag_run: Any) -> str:
    [ti] = [ti for ti in dag_run.get_task_instances() if ti.task_id == "wait"]
    return str(ti.state)


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "poking"])
def test_the_sensor_waits_for_an_existing_run_and_returns_its_summary(
    run_dag: Any, emu: Any, deferrable: bool
) -> None:
    results: list[Any] = []
    errors: list[str] = []
    dag = sensor_dag(
        "lume_sensor", "synthetic://x?rows=40&duration=5", results, errors, deferrable=deferrable
    )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success", errors
    [summary] = results
    assert (summary["status"], summary["mapped_rows"], summary["rejected_rows"]) == (
        "SUCCEEDED",
        40,
        0,
    )
    assert emu.stats()["runs_created"] == 1


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "poking"])
def test_the_sensor_fails_when_the_run_failed(run_dag: Any, deferrable: bool) -> None:
    results: list[Any] = []
    errors: list[str] = []
    dag = sensor_dag(
        "lume_sensor_failed", "synthetic://x?outcome=FAILED", results, errors, deferrable=deferrable
    )

    dag_run = run_dag(dag, logical_date=DAY)

    assert wait_state(dag_run) == "failed"
    assert "ended FAILED" in errors[0]
    assert results == []


def test_with_fail_on_partial_the_sensor_fails_on_a_partially_failed_run(run_dag: Any) -> None:
    results: list[Any] = []
    errors: list[str] = []
    dag = sensor_dag(
        "lume_sensor_partial",
        "synthetic://x?rows=100&reject_rate=0.2",
        results,
        errors,
        deferrable=True,
        fail_on_partial=True,
    )

    dag_run = run_dag(dag, logical_date=DAY)

    assert wait_state(dag_run) == "failed"
    assert "PARTIAL_FAILED with 20 rejected rows" in errors[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"lume_conn_id": ""}, ValueError, "lume_conn_id"),
        ({"fail_on_partial": "no"}, TypeError, "fail_on_partial"),
        ({"deferrable": 1}, TypeError, "deferrable"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        LumeRunSensor(task_id="wait", run_id="run_01HZZZZZZZZZZZZZZZZZZZZZZZ", **kwargs)
