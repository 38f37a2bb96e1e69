"""What a run reports and serves follows from how it ended (seed 002's metadata schema)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio

BAD_ROWS = [
    {"name": "Bob", "email": "no-at-sign", "age": 20},
    {"name": "Cy", "email": "cy@x.io", "age": 300},
    {"name": " ", "email": "nobody", "age": "old"},
]


async def _finished(emu: Emulator, api: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    _, run = await call(api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, **body})
    emu.advance(10)
    _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
    return dict(done)


async def _all(api: aiohttp.ClientSession, path: str) -> list[Any]:
    items: list[Any] = []
    page = 1
    while True:
        status, body = await call(api, "GET", path, params={"page": page})
        assert status == 200
        items += body["items"]
        if page >= body["pages"]:
            return items
        page += 1


@pytest.mark.parametrize(
    "path",
    [
        "synthetic://ok?rows=7",
        "synthetic://p?rows=50&reject_rate=0.2",
        "synthetic://f?outcome=FAILED",
        "synthetic://c?outcome=CRASHED",
        "synthetic://r?reject_rate=1",
    ],
)
async def test_metadata_run_status_is_the_runs_status(
    emu: Emulator, api: aiohttp.ClientSession, path: str
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    assert run["metadata"]["run"]["status"] == run["status"] == "CREATED"
    emu.advance(0.5)
    _, mid = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert mid["metadata"]["run"]["status"] == mid["status"]
    emu.advance(10)
    _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert done["metadata"]["run"]["status"] == done["status"]


async def test_a_run_whose_every_row_is_rejected_fails_but_keeps_its_rejects(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    done = await _finished(emu, api, source_data=BAD_ROWS)
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "all_rows_rejected"
    assert "invalid_email" in done["error"]["message"]
    results, validation = done["metadata"]["results"], done["metadata"]["validation"]
    assert (results["input_rows"], results["mapped_rows"], results["rejected_rows"]) == (3, 0, 3)
    assert results["target_locations"]["mapped"] is None
    assert results["target_locations"]["rejects"].endswith("/rejects")
    assert validation["tests_executed"] == 3 * 4
    assert validation["tests_failed"] == 5  # Cy fails one check, the others two each
    assert {e["error_code"] for e in validation["top_errors"]} >= {"invalid_email"}
    rejects = await _all(api, f"/v1/runs/{done['id']}/rejects")
    assert [r["index"] for r in rejects] == [0, 1, 2]
    assert [r["source_record"] for r in rejects] == BAD_ROWS
    assert await _all(api, f"/v1/runs/{done['id']}/results") == []


async def test_a_synthetic_source_with_every_row_rejected_serves_them_all(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    done = await _finished(emu, api, source_path="synthetic://all-bad?rows=130&reject_rate=1")
    assert (done["status"], done["metadata"]["results"]["rejected_rows"]) == ("FAILED", 130)
    assert len(await _all(api, f"/v1/runs/{done['id']}/rejects")) == 130


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
async def test_failed_and_crashed_runs_report_and_serve_no_rows(
    emu: Emulator, api: aiohttp.ClientSession, outcome: str
) -> None:
    path = f"synthetic://x?rows=500&reject_rate=0.1&outcome={outcome}"
    done = await _finished(emu, api, source_path=path)
    assert done["status"] == outcome
    results, validation = done["metadata"]["results"], done["metadata"]["validation"]
    assert (results["input_rows"], results["mapped_rows"], results["rejected_rows"]) == (0, 0, 0)
    assert results["target_locations"] is None
    assert (validation["tests_executed"], validation["tests_failed"]) == (0, 0)
    assert validation["error_rate"] == 0.0
    assert done["metadata"]["errors"][0]["error_code"] == done["error"]["code"]
    for route in ("results", "rejects"):
        _, page = await call(api, "GET", f"/v1/runs/{done['id']}/{route}")
        assert (page["total"], page["items"]) == (0, [])
    _, logs = await call(api, "GET", f"/v1/runs/{done['id']}/logs")
    assert "Read 500 rows" in [entry["message"] for entry in logs["items"]]


async def test_a_canceled_run_reports_and_serves_no_rows(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "synthetic://s"}
    )
    emu.advance(1.7)  # syncing the target
    await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
    results = done["metadata"]["results"]
    assert (done["status"], results["input_rows"], results["mapped_rows"]) == ("CANCELED", 0, 0)
    _, page = await call(api, "GET", f"/v1/runs/{run['id']}/results")
    assert page["total"] == 0


async def test_counts_are_null_until_the_run_ends(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "synthetic://n"}
    )
    for _ in range(4):
        _, now = await call(api, "GET", f"/v1/runs/{run['id']}")
        assert set(now["metadata"]["results"].values()) == {None}
        assert now["metadata"]["validation"]["error_rate"] is None
        emu.advance(0.45)


async def test_an_empty_source_succeeds_with_zero_rows_and_error_rate_zero(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    done = await _finished(emu, api, source_data=[])
    validation = done["metadata"]["validation"]
    assert done["status"] == "SUCCEEDED"
    assert (validation["tests_executed"], validation["error_rate"]) == (0, 0.0)


async def test_inline_input_reads_back_as_sent_at_once(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    rows = [{"name": f"n{i}", "email": f"{i}@x.io", "age": i} for i in range(130)]
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_data": rows}
    )
    assert await _all(api, f"/v1/runs/{run['id']}/input") == rows
    _, page = await call(api, "GET", f"/v1/runs/{run['id']}/input", params={"page": 2, "size": 50})
    assert (page["total"], page["pages"], page["items"]) == (130, 3, rows[50:100])


async def test_a_path_runs_input_is_readable_once_its_source_was_read(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    path = "synthetic://in?rows=40&reject_rate=0.25&duration=10"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    status, err = await call(api, "GET", f"/v1/runs/{run['id']}/input")
    assert (status, err["code"]) == (409, "input_not_read")
    assert err["status"] in ("CREATED", "PENDING")
    emu.advance(4)  # transforming: the source was read
    records = await _all(api, f"/v1/runs/{run['id']}/input")
    assert len(records) == 40
    emu.advance(10)
    rejects = await _all(api, f"/v1/runs/{run['id']}/rejects")
    assert [records[r["index"]] for r in rejects] == [r["source_record"] for r in rejects]


async def test_a_run_canceled_before_reading_its_source_has_no_input(
    api: aiohttp.ClientSession,
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "early"}
    )
    await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    status, err = await call(api, "GET", f"/v1/runs/{run['id']}/input")
    assert (status, err["code"], err["status"]) == (409, "input_not_read", "CANCELED")


async def test_flow_versions_carry_the_target_schema_of_their_rows(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, flow = await call(api, "GET", "/v1/flows/customer_cleaner")
    schemas = {v["id"]: v["target_schema"] for v in flow["versions"]}
    assert schemas["customer_cleaner:v1"]["age"]["type"] == "integer"
    assert "country" in schemas["customer_cleaner:v2"]
    done = await _finished(emu, api, source_path="synthetic://schema?rows=5")
    rows = await _all(api, f"/v1/runs/{done['id']}/results")
    assert all(set(row) == set(schemas[CUSTOMERS]) for row in rows)
