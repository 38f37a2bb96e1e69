"""LumeRunOperator in real DAG runs (``dag.test()``) against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk import DAG, task

from lume_airflow import LumeRunOperator

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)
FLOW = "customer_cleaner:v1"
# What dag.test() logs when it runs the trigger of a deferred task.
TRIGGER_RAN = "running trigger in line"


def states(dag_run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def failures(into: list[str]) -> Callable[[Any], None]:
    """An on_failure_callback that keeps the task's exception message."""

    def record(context: Any) -> None:
        into.append(str(context["exception"]))

    return record


def test_a_mapped_deferrable_operator_runs_twelve_batches_to_success(
    run_dag: Any, emu: Any, lume: Any, caplog: pytest.LogCaptureFixture
) -> None:
    results: list[dict[str, Any]] = []
    with DAG("lume_fanout", schedule=None, start_date=START) as dag:
        clean = LumeRunOperator.partial(
            task_id="clean",
            flow_version=FLOW,
            deferrable=True,
            poll_interval=0.05,
            label="nightly {{ ds }}",
            tags=["nightly", "{{ dag.dag_id }}"],
            run_metadata={"batch": "{{ ti.map_index }}"},
        ).expand(source_path=[f"s3://acme/{{{{ ds }}}}/batch_{i:02d}" for i in range(12)])

        @task
        def collect(values: Any) -> None:
            results.extend(values)

        collect(clean.output)

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success"
    assert set(states(dag_run).values()) == {"success"}
    assert caplog.text.count(TRIGGER_RAN) == 12  # every map index deferred to the trigger
    assert len(results) == 12
    assert {r["status"] for r in results} == {"SUCCEEDED"}
    assert all(r["mapped_rows"] == 100 and r["rejected_rows"] == 0 for r in results)
    assert all(r["target_locations"]["mapped"] for r in results)
    runs = {run.id: run for run in lume.runs.list().collect()}
    assert set(runs) == {r["run_id"] for r in results}
    assert sorted(run.source_path for run in runs.values()) == [
        f"s3://acme/2026-06-01/batch_{i:02d}" for i in range(12)
    ]
    assert {run.label for run in runs.values()} == {"nightly 2026-06-01"}
    assert {run.tags for run in runs.values()} == {("nightly", "lume_fanout")}
    assert sorted(int(run.run_metadata["batch"]) for run in runs.values()) == list(range(12))
    assert emu.stats()["requests"].get("GET /v1/runs/{run_id}") is None  # waits went by batch


def test_a_retry_of_a_timed_out_wait_finds_the_same_run(run_dag: Any, emu: Any) -> None:
    tries: list[int] = []

    def finish_the_run(context: Any) -> None:
        tries.append(context["ti"].try_number)
        emu.advance(3600)  # the run finishes between the two tries

    with DAG("lume_retry", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="synthetic://slow?duration=3600",
            deferrable=True,
            timeout=0,  # the first try's wait gives up at once
            retries=1,
            retry_delay=timedelta(0),
            on_retry_callback=finish_the_run,
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success"
    assert tries == [1]
    stats = emu.stats()
    assert stats["runs_created"] == 1
    assert stats["idempotent_replays"] == 1


def test_running_a_succeeded_task_instance_again_finds_its_run_instead_of_a_duplicate(
    run_dag: Any, emu: Any, lume: Any
) -> None:
    results: list[dict[str, Any]] = []
    with DAG("lume_rerun", schedule=None, start_date=START) as dag:
        clean = LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="s3://acme/batch_once",
            deferrable=True,
            poll_interval=0.05,
        )

        @task
        def collect(value: Any) -> None:
            results.append(value)

        collect(clean.output)

    # The same DAG run twice: its task instances are cleared and run again (try 2).
    first = run_dag(dag, logical_date=DAY, run_after=DAY)
    second = run_dag(dag, logical_date=DAY, run_after=DAY)

    assert first.run_id == second.run_id
    assert str(second.state) == "success"
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert results[0]["run_id"] == results[1]["run_id"]
    stats = emu.stats()
    assert stats["runs_created"] == 1
    assert stats["duplicate_creates_refused"] == 0
    assert len(lume.runs.list().collect()) == 1


def test_a_retry_after_the_run_succeeded_finds_it_instead_of_a_duplicate(
    run_dag: Any, emu: Any
) -> None:
    tries: list[int] = []

    def lose_the_first_try(context: Any, result: Any) -> None:
        # As if the worker died after the run succeeded but before the task did.
        tries.append(context["ti"].try_number)
        if len(tries) == 1:
            raise RuntimeError("worker lost")

    with DAG("lume_retry_after_success", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="s3://acme/batch_once",
            deferrable=True,
            poll_interval=0.05,
            retries=1,
            retry_delay=timedelta(0),
            post_execute=lose_the_first_try,
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success"
    assert tries == [1, 2]
    stats = emu.stats()
    assert stats["runs_created"] == 1
    assert stats["duplicate_creates_refused"] == 0  # a new create would be refused: it SUCCEEDED


def test_a_failed_run_fails_the_task_with_the_runs_errors(run_dag: Any, emu: Any) -> None:
    errors: list[str] = []
    with DAG("lume_failed", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="synthetic://bad?outcome=FAILED",
            deferrable=True,
            poll_interval=0.05,
            on_failure_callback=failures(errors),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "failed"
    assert states(dag_run) == {("clean", -1): "failed"}
    assert len(errors) == 1
    assert "ended FAILED" in errors[0]
    assert emu.stats()["runs_created"] == 1


def test_each_retry_after_a_failed_run_starts_exactly_one_new_run(
    run_dag: Any, emu: Any, lume: Any
) -> None:
    with DAG("lume_failed_retries", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="synthetic://flaky?outcome=CRASHED",
            deferrable=True,
            poll_interval=0.05,
            retries=2,
            retry_delay=timedelta(0),
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "failed"
    runs = lume.runs.list().collect()
    assert len(runs) == 3  # one per try: a crashed run is not found again by the next try
    assert {run.status.value for run in runs} == {"CRASHED"}
    assert emu.stats()["idempotent_replays"] == 1 + 2  # try 2 replays 1 create, try 3 two


@pytest.mark.parametrize(("fail_on_partial", "task_state"), [(False, "success"), (True, "failed")])
def test_a_partially_failed_run_fails_the_task_only_with_fail_on_partial(
    run_dag: Any, fail_on_partial: bool, task_state: str
) -> None:
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    with DAG("lume_partial", schedule=None, start_date=START) as dag:
        clean = LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="synthetic://some_bad?rows=200&reject_rate=0.1",
            deferrable=True,
            poll_interval=0.05,
            fail_on_partial=fail_on_partial,
            on_failure_callback=failures(errors),
        )

        @task
        def collect(value: Any) -> None:
            results.append(value)

        collect(clean.output)

    dag_run = run_dag(dag, logical_date=DAY)

    assert states(dag_run)[("clean", -1)] == task_state
    if fail_on_partial:
        assert "PARTIAL_FAILED with 20 rejected rows" in errors[0]
        assert results == []
    else:
        assert [(r["status"], r["mapped_rows"], r["rejected_rows"]) for r in results] == [
            ("PARTIAL_FAILED", 180, 20)
        ]


def test_without_deferral_the_worker_waits_through_lume_sync(
    run_dag: Any, emu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    results: list[dict[str, Any]] = []
    with DAG("lume_in_worker", schedule=None, start_date=START) as dag:
        clean = LumeRunOperator.partial(
            task_id="clean", flow_version=FLOW, deferrable=False, poll_interval=0.05
        ).expand(source_path=["s3://acme/a", "s3://acme/b"])

        @task
        def collect(values: Any) -> None:
            results.extend(values)

        collect(clean.output)

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success"
    assert TRIGGER_RAN not in caplog.text
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]


def test_wait_false_returns_as_soon_as_the_run_is_created(run_dag: Any, emu: Any) -> None:
    results: list[dict[str, Any]] = []
    with DAG("lume_no_wait", schedule=None, start_date=START) as dag:
        start = LumeRunOperator(
            task_id="start",
            flow_version=FLOW,
            source_path="synthetic://slow?duration=3600",
            wait=False,
        )

        @task
        def collect(value: Any) -> None:
            results.append(value)

        collect(start.output)

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "success"
    assert results[0]["status"] == "CREATED"
    assert results[0]["mapped_rows"] is None


def test_killing_a_task_that_waits_in_the_worker_cancels_its_run(
    run_dag: Any, emu: Any, lume: Any
) -> None:
    with DAG("lume_killed", schedule=None, start_date=START) as dag:
        LumeRunOperator(
            task_id="clean",
            flow_version=FLOW,
            source_path="synthetic://slow?duration=3600",
            deferrable=False,
            poll_interval=0.05,
            execution_timeout=timedelta(seconds=0.3),  # Airflow kills the task: on_kill
        )

    dag_run = run_dag(dag, logical_date=DAY)

    assert str(dag_run.state) == "failed"
    [run] = lume.runs.list().collect()
    assert run.status.value == "CANCELED"


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"flow_version": 7}, TypeError, "flow_version"),
        ({"poll_interval": 0}, ValueError, "poll_interval"),
        ({"poll_interval": "5"}, TypeError, "poll_interval"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"wait": "yes"}, TypeError, "wait"),
        ({"deferrable": None}, TypeError, "deferrable"),
        ({"force_rerun": 1}, TypeError, "force_rerun"),
        ({"fail_on_partial": "no"}, TypeError, "fail_on_partial"),
        ({"lume_conn_id": ""}, ValueError, "lume_conn_id"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_defined(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    arguments: dict[str, Any] = {"flow_version": FLOW, "source_path": "s3://x", **kwargs}
    with pytest.raises(error, match=name):
        LumeRunOperator(task_id="clean", **arguments)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"source_path": "s3://x", "source_data": [{"name": "Ada"}]}, "source"),
        ({}, "source"),
        ({"flow_version": "no-version", "source_path": "s3://x"}, "flow_version"),
        ({"source_path": "s3://x", "tags": "nightly"}, "tags"),
        ({"source_path": "s3://x", "tags": ["ok", 3]}, "tags"),
        ({"source_path": "s3://x", "run_metadata": {"when": {1, 2}}}, "run_metadata"),
        ({"source_path": "s3://x", "label": 5}, "label"),
    ],
)
def test_a_bad_request_fails_the_task_before_any_request_is_sent(
    run_dag: Any, emu: Any, kwargs: dict[str, Any], name: str
) -> None:
    errors: list[str] = []
    arguments: dict[str, Any] = {"flow_version": FLOW, **kwargs}
    with DAG("lume_bad_request", schedule=None, start_date=START) as dag:
        LumeRunOperator(task_id="clean", on_failure_callback=failures(errors), **arguments)

    dag_run = run_dag(dag, logical_date=DAY)

    assert states(dag_run) == {("clean", -1): "failed"}
    assert name in errors[0]
    assert emu.stats()["requests"] == {}
