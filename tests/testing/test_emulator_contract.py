"""The emulator against its own OpenAPI document, with every schemathesis check, seeded.

Positive and negative data, every check, and stateful sequences that follow the document's links
from a created run (or webhook) to the routes that read, change and cancel it. Two things no JSON
Schema can say are arranged per request, and only for schema-valid (positive) cases: each
Idempotency-Key names one logical request (reusing one with another body is a 422 by design), and
a run-list ``cursor`` is opaque, valid only as handed out in ``next_cursor`` (tests of real cursors
live in test_emulator_listing.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

import lume_async.testing
from lume_async.testing import Emulator

from .._profiles import examples

ROOT = Path(__file__).parents[2]
SPEC = Path(lume_async.testing.__file__).with_name("openapi.json")
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261128,
        "generation": {"deterministic": True, "database": "none", "max-examples": examples(20)},
    }
)
# Loaded from a fixture as the tests run, not at collection: building an operation's test
# (its coverage cases included) costs ~0.1 s, which every xdist worker paid at collection
# for the tests only one of them runs.
schema = schemathesis.pytest.from_fixture("contract_schema")
_keys = itertools.count()


class StepClock:
    """Run time moves only by ``advance()``, so answers depend on the requests alone, not on
    how fast they are sent; timestamps still read the wall clock."""

    def monotonic(self) -> float:
        return 0.0

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.get_running_loop().create_future()  # advance() wakes the scheduler


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    with Emulator(clock=StepClock(), webhook_max_attempts=1) as emu:
        yield emu


def local_session() -> requests.Session:
    """One connection pool for every case sent to the emulator (schemathesis's own probes, such
    as the ones without credentials, still go on sessions of their own). It reads no proxy or
    netrc settings from the environment: the emulator is on this machine, and ``requests``
    would otherwise scan the whole environment on every request."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with local_session() as session:
        yield session


def _one_logical_request(case: Any) -> None:
    """Give a schema-valid case its own Idempotency-Key, and drop a generated cursor."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f"contract-{next(_keys)}"
    if case.query and "cursor" in case.query:
        del case.query["cursor"]


@pytest.fixture(scope="module")
def contract_schema() -> Any:
    return schemathesis.openapi.from_path(str(SPEC), config=CONFIG)


@pytest.fixture
def node_id_as_schemathesis_reads_it(request: pytest.FixtureRequest) -> None:
    """schemathesis's lazy loader (4.32) reads a test's node id as ``node._nodeid``, which
    pytest 9.2 no longer sets; it only reads it back to name the operations' subtests."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def documented(case: Any, running: Emulator, session: requests.Session) -> None:
    _one_logical_request(case)
    case.call_and_validate(
        base_url=running.url, session=session, headers={"lume-api-key": running.api_key}
    )


# One subtest per operation; the document's operations are split over two tests (between them,
# every operation) so that two workers can share them.
@pytest.mark.timeout(180)
@schema.include(path_regex=r"^/v1/runs").parametrize()
@pytest.mark.usefixtures("node_id_as_schemathesis_reads_it")
def test_every_run_answer_is_documented(
    case: Any, running: Emulator, session: requests.Session
) -> None:
    documented(case, running, session)


@pytest.mark.timeout(180)
@schema.exclude(path_regex=r"^/v1/runs").parametrize()
@pytest.mark.usefixtures("node_id_as_schemathesis_reads_it")
def test_every_other_answer_is_documented(
    case: Any, running: Emulator, session: requests.Session
) -> None:
    documented(case, running, session)


def linked_sequences(
    running: Emulator, path_regex: str, sequences: int
) -> Counter[tuple[str, int]]:
    """Run the stateful test over the operations whose path matches; count the answers seen.

    One slice of the document at a time: over the whole of it, the links from a created run are
    one choice among many and a sequence seldom follows them to a run that has ended. A schema
    of its own: schemathesis feeds values from the answers a schema has seen into later cases.
    """
    fresh = schemathesis.openapi.from_path(str(SPEC), config=CONFIG)
    base = fresh.include(path_regex=path_regex).as_state_machine()
    seen: Counter[tuple[str, int]] = Counter()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            running.reset()  # each sequence starts from an empty service

        def before_call(self, case: Any) -> None:
            _one_logical_request(case)
            running.advance(0.7)  # runs move on between steps: later reads find them ended

        def after_call(self, response: Any, case: Any) -> None:
            seen[(case.operation.label, response.status_code)] += 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": running.url, "headers": {"lume-api-key": running.api_key}}

    Workflow.run(
        settings=settings(
            max_examples=examples(sequences),
            stateful_step_count=10,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    return seen


def sequences_seen(path_regex: str, sequences: int) -> list[tuple[str, int, int]]:
    """``linked_sequences`` on an emulator of its own: (operation, status, times seen)."""
    with Emulator(clock=StepClock(), webhook_max_attempts=1) as emu:
        seen = linked_sequences(emu, path_regex, sequences)
    return [(label, status, count) for (label, status), count in seen.items()]


# Hypothesis also draws constants it reads out of the modules of the project under test, so any
# string or number added anywhere in lume_async changed the sequences a seed makes (and which
# links they reached). Left out, the sequences depend on the seed and the schema alone.
_NO_LOCAL_CONSTANTS = (
    "import hypothesis.internal.conjecture.providers as p\n"
    "if hasattr(p, '_get_local_constants'):\n"
    "    p._get_local_constants = lambda: p._local_constants"
)


def in_a_fresh_process(path_regex: str, sequences: int) -> Counter[tuple[str, int]]:
    """``sequences_seen`` in an interpreter of its own.

    Which links the derandomized sequences follow depends on more than their seed: in a worker
    that had run other tests first, the same sequences never followed a created run's links
    (every one of a full suite's runs alike, while the test alone always did). A fresh
    interpreter makes them the same wherever the test runs.
    """
    code = (
        f"{_NO_LOCAL_CONSTANTS}\n"
        "import json, sys; from tests.testing.test_emulator_contract import sequences_seen; "
        f"json.dump(sequences_seen({path_regex!r}, {sequences}), sys.stdout)"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Counter({(label, status): count for label, status, count in json.loads(done.stdout)})


@pytest.mark.timeout(180)
def test_linked_sequences_reach_real_runs() -> None:
    seen = in_a_fresh_process(r"^/v1/runs", 15)

    assert seen[("POST /v1/runs", 201)] > 0, seen
    assert seen[("GET /v1/runs/{run_id}", 200)] > 0, seen  # links led to runs that exist
    assert seen[("GET /v1/runs/{run_id}/results", 200)] > 0, seen  # ... and some had ended
    assert seen[("PATCH /v1/runs/{run_id}", 200)] > 0, seen


@pytest.mark.timeout(180)
def test_linked_sequences_reach_real_webhooks() -> None:
    seen = in_a_fresh_process(r"^/v1/webhooks", 8)

    assert seen[("POST /v1/webhooks", 201)] > 0, seen
    assert seen[("GET /v1/webhooks/{webhook_id}", 200)] > 0, seen
    assert seen[("DELETE /v1/webhooks/{webhook_id}", 204)] > 0, seen
