"""Answers from a newer, honest service: statuses and timestamp forms this client has not met.

A real HTTP service on the test's loop answers from a script. A status this SDK does not know is
read case-insensitively, as the known ones are, so two spellings of one status are one status and
a wait on it goes on until its deadline. Every form of timestamp RFC 3339 allows (a lower-case
``t`` or ``z``, a leap second) reads on every path that carries one: a run fetched alone, a
listing, a log page, a webhook event, and the fast decoder and cattrs read each the same.
"""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from lume_async import AsyncLume, RunStatus, RunTimeoutError, webhooks
from lume_async import _converter as conv
from lume_async._run_decoder import run_from_json
from lume_async._wire import WireValueError, parse_datetime
from lume_async.models import RunData
from lume_async.testing import VirtualClock

from ..core._scripted import Answer, ScriptedServer, run_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SECRET = "whsec_c2VjcmV0c2VjcmV0"


def _both(body: dict[str, Any]) -> tuple[RunData, RunData]:
    """The run as the fast decoder reads it, and as cattrs' detailed hooks do."""
    fast = run_from_json(orjson.loads(orjson.dumps(body)), conv.PARSED)
    detailed = conv._detailed_run(orjson.loads(orjson.dumps(body)), RunData)
    return fast, detailed


# -- unknown statuses, in any case -----------------------------------------------------------------


def test_an_unknown_status_is_one_status_in_any_case_as_a_known_one_is() -> None:
    assert RunStatus("succeeded") is RunStatus("SUCCEEDED")
    lower, upper, mixed = RunStatus("archived_x"), RunStatus("ARCHIVED_X"), RunStatus("Archived_X")
    assert lower == upper == mixed
    assert lower.value == str(lower) == "ARCHIVED_X"
    assert not lower.is_terminal and not lower.is_known
    assert pickle.loads(pickle.dumps(lower)) == upper
    fast, detailed = _both(run_json(status="on_review"))
    assert fast.status == detailed.status == RunStatus("ON_REVIEW")


async def test_a_run_whose_unknown_status_changes_case_is_the_same_and_a_wait_times_out(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(Answer(200, run_json(status="quarantined")))
    scripted.default = Answer(200, {"items": [run_json(status="QUARANTINED")], "missing": []})
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        run = await lume.runs.get(run_json()["id"])
        first = run.status
        assert first == RunStatus("QUARANTINED")
        assert not run.is_terminal
        with pytest.raises(RunTimeoutError, match="still QUARANTINED"):
            await run.wait(timeout=30, poll_interval=1)
        assert run.status == first
        assert not run.is_terminal


# -- timestamps in every RFC 3339 form -------------------------------------------------------------

LOWER = "2026-01-01t00:00:00.123456789z"
LEAP = "2016-12-31T23:59:60Z"


@pytest.mark.parametrize("stamp", [LOWER, "2026-01-01T01:00:00.5z", LEAP, "2016-12-31t23:59:60.5z"])
def test_both_decoders_read_every_rfc3339_form_alike(stamp: str) -> None:
    body = run_json(status="SUCCEEDED") | {"created_at": stamp, "updated_at": stamp}
    body["metadata"] = {
        "run": {"run_id": body["id"], "status": "succeeded", "started_at": stamp},
        "pipeline": {"created_at": stamp, "completed_at": stamp, "duration_seconds": 1},
    }
    fast, detailed = _both(body)
    assert fast == detailed
    assert fast.created_at.tzinfo is not None
    compact = conv.decode_run(orjson.dumps(body), compact=True)
    assert compact == fast
    assert compact.metadata is not None and compact.metadata.pipeline is not None
    assert compact.metadata.pipeline.completed_at == fast.created_at


def test_a_leap_second_reads_as_the_next_minute() -> None:
    fast, _ = _both(run_json() | {"created_at": LEAP, "updated_at": LEAP})
    assert fast.created_at == datetime(2017, 1, 1, tzinfo=UTC)


def test_a_leap_second_past_the_last_representable_minute_is_a_wire_error() -> None:
    with pytest.raises(WireValueError, match="not an ISO-8601 timestamp"):
        parse_datetime("9999-12-31T23:59:60Z")


async def test_lower_case_timestamps_read_in_runs_listings_and_logs(
    scripted: ScriptedServer,
) -> None:
    item = run_json(status="SUCCEEDED") | {"created_at": LOWER, "updated_at": LOWER}
    log = {"time": LOWER, "level": "TRACE2", "code": None, "message": "m", "details": None}
    scripted.then(
        Answer(200, item),
        Answer(200, {"items": [item], "next_cursor": None}),
        Answer(200, {"items": [log], "total": 1, "page": 1, "size": 100, "pages": 1}),
    )
    expected = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    async with AsyncLume(api_key="k", base_url=scripted.url, max_retries=0) as lume:
        run = await lume.runs.get(item["id"])
        assert run.created_at == expected
        listed = await lume.runs.list().collect()
        assert [r.updated_at for r in listed] == [expected]
        logs = await run.logs().collect()
        assert [(e.time, e.level) for e in logs] == [(expected, "TRACE2")]


def test_a_webhook_event_with_a_lower_case_created_at_verifies() -> None:
    now = time.time()
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dt%H:%M:%S.%fz")
    event = {
        "id": "evt_1",
        "type": "run.archived",
        "created_at": stamp,
        "data": {"run_id": "run_1", "status": "archived", "region": "eu"},
        "attempt": 2,
    }
    body = orjson.dumps(event)
    headers = webhooks.sign(body, SECRET)
    only_body = {"X-Lume-Signature-256": headers["X-Lume-Signature-256"]}
    for signed in (headers, only_body):
        verified = webhooks.verify(body, signed, SECRET, now=now)
        assert verified.type == "run.archived"
        assert verified.data.status == RunStatus("ARCHIVED")
        assert not verified.data.status.is_terminal
