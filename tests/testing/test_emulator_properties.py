"""Invariants of every run the emulator makes, over random sources, outcomes and cancels.

For any source (synthetic parameters or inline rows) and any cancel point, once the run ends:
mapped + rejected = input; the rejects (and results) served are as many as reported; error_rate is
tests_failed / tests_executed (0.0 when no test ran); and along the way metadata.run.status is
the status, no timestamp is in the future or before created_at, and updated_at moves exactly when
the status does. Run time is skipped with ``advance()``; nothing sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async.testing import Emulator

from .._profiles import examples

FLOWS = ("customer_cleaner:v1", "customer_cleaner:v2", "invoice_mapper:v1")
_paths = itertools.count()


class Api:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.headers["lume-api-key"] = emu.api_key

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        resp = self.session.request(method, self.emu.url + path, timeout=10, **kwargs)
        return resp.status_code, resp.json()

    def all_items(self, path: str) -> list[Any]:
        items: list[Any] = []
        page = 1
        while True:
            status, body = self.call("GET", path, params={"page": page})
            assert status == 200, body
            items += body["items"]
            if page >= body["pages"]:
                return items
            page += 1


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with Emulator() as emu:
        client = Api(emu)
        yield client
        client.session.close()


field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 300),
    st.text(max_size=12),
    st.sampled_from(["ada@example.com", "  Ada  ", "2024-02-30", "2024-02-03", "US", "eur", "1.5"]),
)
records = st.dictionaries(
    st.sampled_from(
        [
            *("name", "full_name", "email", "age", "signup_date", "country"),
            *("invoice_id", "id", "amount", "currency", "issued_at", "extra"),
        ]
    ),
    field_values,
    max_size=7,
)
synthetic = st.builds(
    lambda rows, rate, outcome, duration: "synthetic://p{}?{}".format(
        next(_paths),
        urlencode(
            {"rows": rows, "reject_rate": rate, "duration": duration}
            | ({"outcome": outcome} if outcome else {})
        ),
    ),
    st.integers(0, 400),
    st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
    st.sampled_from([None, None, None, "FAILED", "CRASHED", "SUCCEEDED"]),
    st.sampled_from([0.0, 0.5, 2.0]) | st.floats(0.01, 600),
)
sources = st.one_of(
    synthetic.map(lambda path: {"source_path": path}),
    st.lists(records, max_size=40).map(lambda rows: {"source_data": rows}),
)
# Where to cancel, as a fraction of the run's duration (None: let it end on its own).
cancels = st.one_of(st.none(), st.floats(0, 1.2))


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _stamps(run: dict[str, Any]) -> list[str]:
    meta = run["metadata"]
    found = [run["created_at"], run["updated_at"], meta["pipeline"]["created_at"]]
    found += [meta["pipeline"]["completed_at"], meta["run"]["started_at"]]
    found.append(meta["run"]["finished_at"])
    return [s for s in found if s is not None]


class Watch:
    """Reads of one run, checking what must hold at every read."""

    def __init__(self, api: Api, run: dict[str, Any]) -> None:
        self.api = api
        self.id = run["id"]
        self.created = _at(run["created_at"])
        self.last = run
        self.check(run)

    def check(self, run: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        assert run["metadata"]["run"]["status"] == run["status"]
        for stamp in _stamps(run):
            assert self.created <= _at(stamp) <= now, stamp
        before = self.last
        if run["status"] != before["status"]:
            assert _at(run["updated_at"]) > _at(before["updated_at"])
        elif run["label"] == before["label"]:
            assert run["updated_at"] == before["updated_at"]
        self.last = run

    def read(self) -> dict[str, Any]:
        status, run = self.api.call("GET", f"/v1/runs/{self.id}")
        assert status == 200
        self.check(run)
        return dict(run)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=st.sampled_from(FLOWS), source=sources, cancel=cancels, steps=st.integers(1, 5))
def test_every_run_tells_the_truth(
    api: Api, flow: str, source: dict[str, Any], cancel: float | None, steps: int
) -> None:
    status, created = api.call("POST", "/v1/runs", json={"flow_version": flow, **source})
    assert status == 201, created
    watch = Watch(api, created)
    duration = 2.0 if "source_path" in source else 1.0
    if "source_path" in source and "duration=" in source["source_path"]:
        duration = float(source["source_path"].split("duration=")[1].split("&")[0])
    end = duration * 1.01 + 0.01
    stop_at = end if cancel is None else duration * cancel
    for _ in range(steps):
        api.emu.advance(stop_at / steps)
        watch.read()
    if cancel is not None:
        status, _ = api.call("POST", f"/v1/runs/{watch.id}/cancel")
        assert status in (200, 409)
        watch.read()
    api.emu.advance(end)
    run = watch.read()
    assert run["status"] in ("SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED", "CANCELED")

    results = run["metadata"]["results"]
    validation = run["metadata"]["validation"]
    assert results["mapped_rows"] + results["rejected_rows"] == results["input_rows"]
    if "source_data" in source and run["status"] not in ("CANCELED",):
        assert results["input_rows"] == len(source["source_data"])
    rejects = api.all_items(f"/v1/runs/{watch.id}/rejects")
    assert len(rejects) == results["rejected_rows"]
    assert len(api.all_items(f"/v1/runs/{watch.id}/results")) == results["mapped_rows"]
    executed, failed = validation["tests_executed"], validation["tests_failed"]
    assert 0 <= failed <= executed
    assert validation["error_rate"] == (failed / executed if executed else 0.0)
    assert sum(e["count"] for e in validation["top_errors"]) <= failed
    if run["status"] in ("FAILED", "CRASHED", "CANCELED"):
        assert results["mapped_rows"] == 0
    if run["status"] == "FAILED" and results["rejected_rows"]:
        assert run["error"]["code"] == "all_rows_rejected"
        assert results["rejected_rows"] == results["input_rows"]
    for entry in api.all_items(f"/v1/runs/{watch.id}/logs"):
        assert watch.created <= _at(entry["time"]) <= datetime.now(UTC)
