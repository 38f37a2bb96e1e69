"""The emulator against its own OpenAPI document, with every schemathesis check, seeded.

Positive and negative data, every check, and stateful sequences that follow the document's links
from a created run (or webhook) to the routes that read, change and cancel it. Two things no JSON
Schema can say are arranged per request, and only for schema-valid (positive) cases: each
Idempotency-Key names one logical request (reusing one with another body is a 422 by design), and
a run-list ``cursor`` is opaque, valid only as handed out in ``next_cursor`` (tests of real cursors
live in test_emulator_listing.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

import lume_async.testing
from lume_async.testing import Emulator

SPEC = Path(lume_async.testing.__file__).with_name("openapi.json")
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261128,
        "generation": {"deterministic": True, "database": "none", "max-examples": 40},
    }
)
schema = schemathesis.openapi.from_path(str(SPEC), config=CONFIG)
_keys = itertools.count()


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    # Fast runs, so that linked reads see runs finish; one delivery attempt per webhook event.
    with Emulator(time_scale=1000.0, webhook_max_attempts=1, webhook_retry_base=0.01) as emu:
        yield emu


def _one_logical_request(case: Any) -> None:
    """Give a schema-valid case its own Idempotency-Key, and drop a generated cursor."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f"contract-{next(_keys)}"
    if case.query and "cursor" in case.query:
        del case.query["cursor"]


@schema.parametrize()
def test_every_answer_is_documented(case: Any, running: Emulator) -> None:
    _one_logical_request(case)
    case.call_and_validate(base_url=running.url, headers={"lume-api-key": running.api_key})


def test_linked_sequences_reach_real_runs(running: Emulator) -> None:
    base = schema.as_state_machine()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def before_call(self, case: Any) -> None:
            _one_logical_request(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": running.url, "headers": {"lume-api-key": running.api_key}}

    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    created = running.stats()["requests"].get("POST /v1/runs", {})
    assert created.get("201", 0) > 0
    reads = running.stats()["requests"].get("GET /v1/runs/{run_id}", {})
    assert reads.get("200", 0) > 0  # links led to runs that exist
