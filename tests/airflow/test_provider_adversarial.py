"""Edges of the provider: a create still being handled on retry, a sensor that cannot defer."""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk.exceptions import AirflowException, AirflowFailException

import lume_sync
from lume_airflow import LumeRunOperator, LumeRunSensor
from lume_airflow._operator import idempotency_namespace
from lume_async.testing import FaultProfile, VirtualClock

from ._instances import task_instance as instance_of

FLOW = "customer_cleaner:v1"
SLOW = "synthetic://slow?duration=3600"
RUN_ID = "run_01HZZZZZZZZZZZZZZZZZZZZZZZ"


def task_instance(**changes: Any) -> Any:
    return instance_of("lume_adversarial", **changes)


@pytest.fixture
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's clients wait out their retries in virtual time."""
    monkeypatch.setattr(lume_sync, "Lume", functools.partial(lume_sync.Lume, clock=VirtualClock()))


def test_a_retry_whose_first_create_is_still_being_handled_may_be_retried_again(
    emu: Any, lume: Any, instant_retries: None
) -> None:
    # The first try's create reached the service, which is still handling it (the worker was
    # lost meanwhile); the retry sends the same create, with the same key.
    ti = task_instance(try_number=2)
    emu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=1.0))
    handled = threading.Event()
    made: list[str] = []

    def first_try() -> None:
        run = lume.runs.create(FLOW, SLOW, idempotency_namespace=idempotency_namespace(ti))
        made.append(run.id)
        handled.set()

    thread = threading.Thread(target=first_try)
    thread.start()
    try:
        # The run is made; the answer is held back, its key still being handled.
        while emu.stats()["runs_created"] == 0 and not handled.is_set():
            handled.wait(0.005)
        operator = LumeRunOperator(task_id="clean", flow_version=FLOW, source_path=SLOW, wait=False)
        with pytest.raises(AirflowException) as raised:
            operator.execute({"ti": ti})
    finally:
        thread.join(timeout=30)
        emu.set_faults(None)

    assert not isinstance(raised.value, AirflowFailException)  # Airflow may retry: not final
    assert "still being handled" in str(raised.value)
    # Airflow's next try finds the run the first try's create made.
    again = operator.execute({"ti": task_instance(try_number=3)})
    assert [again["run_id"]] == made
    assert emu.stats()["runs_created"] == 1


def test_a_deferrable_sensor_that_cannot_defer_is_refused_when_the_dag_is_defined() -> None:
    # Poking every 0 s is Airflow's to allow; a trigger needs a pause between its looks.
    with pytest.raises(ValueError, match="poke_interval"):
        LumeRunSensor(task_id="wait", run_id=RUN_ID, deferrable=True, poke_interval=0)

    poking = LumeRunSensor(task_id="wait", run_id=RUN_ID, deferrable=False, poke_interval=0)
    assert poking.poke_interval == 0
