"""The create's idempotency key: one per task instance and request, whatever the try.

The operator passes ``idempotency_namespace(ti)`` and the SDK derives the key from it and the
request, so these tests check the key the create is sent with.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("airflow")

from hypothesis import given
from hypothesis import strategies as st

from lume_airflow._operator import idempotency_namespace
from lume_async import RunRequest

KEY = re.compile(r"[!-~]{1,255}")  # what the service accepts: visible ASCII, no spaces
TEXT = st.text(min_size=1, max_size=300)


def ti(**changes: Any) -> Any:
    fields = {
        "dag_id": "nightly",
        "task_id": "clean",
        "run_id": "scheduled__2026-06-01T00:00:00+00:00",
        "map_index": 3,
        "try_number": 1,
    }
    return SimpleNamespace(**{**fields, **changes})


REQUEST = RunRequest("customer_cleaner:v1", source_path="s3://acme/batch_03", label="nightly")


def idempotency_key(ti: Any, request: RunRequest, *, after: str | None = None) -> str:
    """The key the operator's create sends for ``request`` from task instance ``ti``."""
    return request.with_namespace(idempotency_namespace(ti, after=after)).idempotency_key


def test_every_try_of_a_task_instance_gets_the_same_key() -> None:
    keys = {idempotency_key(ti(try_number=n), REQUEST) for n in range(1, 6)}

    assert len(keys) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"dag_id": "weekly"},
        {"task_id": "clean_again"},
        {"run_id": "manual__2026-06-01T00:00:00+00:00"},
        {"map_index": 4},
        {"map_index": -1},
    ],
)
def test_another_task_instance_gets_another_key(changes: dict[str, Any]) -> None:
    assert idempotency_key(ti(**changes), REQUEST) != idempotency_key(ti(), REQUEST)


@pytest.mark.parametrize(
    "request_",
    [
        RunRequest("customer_cleaner:v2", source_path="s3://acme/batch_03", label="nightly"),
        RunRequest("customer_cleaner:v1", source_path="s3://acme/batch_04", label="nightly"),
        RunRequest("customer_cleaner:v1", source_path="s3://acme/batch_03", label="rerun"),
        RunRequest("customer_cleaner:v1", source_path="s3://acme/batch_03", force_rerun=True),
        RunRequest("customer_cleaner:v1", source_data=[{"name": "Ada"}]),
    ],
)
def test_another_request_from_the_same_task_instance_gets_another_key(
    request_: RunRequest,
) -> None:
    assert idempotency_key(ti(), request_) != idempotency_key(ti(), REQUEST)


def test_a_retry_after_a_failed_run_gets_a_key_of_its_own() -> None:
    first = idempotency_key(ti(), REQUEST)
    after_one = idempotency_key(ti(), REQUEST, after="run_01HY0000000000000000000001")
    after_two = idempotency_key(ti(), REQUEST, after="run_01HY0000000000000000000002")

    assert len({first, after_one, after_two}) == 3


def test_the_parts_cannot_be_shifted_into_one_another() -> None:
    assert idempotency_key(ti(dag_id="a", task_id="b.c"), REQUEST) != idempotency_key(
        ti(dag_id="a.b", task_id="c"), REQUEST
    )


@given(dag_id=TEXT, task_id=TEXT, run_id=TEXT, map_index=st.integers(-1, 10**6), after=TEXT)
def test_any_ids_make_a_key_the_service_accepts(
    dag_id: str, task_id: str, run_id: str, map_index: int, after: str
) -> None:
    key = idempotency_key(
        ti(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index), REQUEST, after=after
    )

    assert KEY.fullmatch(key)
    assert RunRequest("customer_cleaner:v1", source_path="s3://x", idempotency_key=key)


def test_every_build_of_the_request_gets_the_same_key() -> None:
    # Each try renders its templates and builds its RunRequest anew.
    again = RunRequest("customer_cleaner:v1", source_path="s3://acme/batch_03", label="nightly")
    assert idempotency_key(ti(try_number=2), again) == idempotency_key(ti(), REQUEST)
