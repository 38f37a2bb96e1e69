from __future__ import annotations

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio


async def test_new_run_reads_created_then_moves_through_the_stages(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    status, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "s3://b/1"}
    )
    assert status == 201
    assert run["status"] == "CREATED"
    assert run["id"].startswith("run_")
    assert len(run["id"]) == 30
    seen = []
    for step in (0.15, 0.4, 0.8, 0.8):  # default path runs take 2 virtual seconds
        emu.advance(step)
        _, now = await call(api, "GET", f"/v1/runs/{run['id']}")
        seen.append(now["status"])
    assert seen == ["PENDING", "SYNCING_SOURCE", "TRANSFORMING", "SUCCEEDED"]


async def test_metadata_is_null_until_known_and_complete_once_terminal(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    path = "synthetic://m?rows=200&duration=10&reject_rate=0.25"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    assert run["metadata"]["results"]["input_rows"] is None
    assert run["metadata"]["pipeline"]["completed_at"] is None
    emu.advance(10)
    _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
    meta = done["metadata"]
    assert done["status"] == "PARTIAL_FAILED"
    assert meta["results"]["input_rows"] == 200
    assert meta["results"]["mapped_rows"] + meta["results"]["rejected_rows"] == 200
    assert meta["results"]["rejected_rows"] == 50
    assert meta["pipeline"]["duration_seconds"] == 10.0
    stages = meta["pipeline"]["stages"]
    assert sum(stages.values()) == pytest.approx(9.0)
    assert sum(e["count"] for e in meta["validation"]["top_errors"]) == 50
    # error_rate is failed tests over tests run: 4 field checks per row, one failing per reject.
    validation = meta["validation"]
    assert (validation["tests_executed"], validation["tests_failed"]) == (800, 50)
    assert validation["error_rate"] == 50 / 800
    assert done["updated_at"] > done["created_at"]


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
async def test_forced_outcome_ends_the_run_with_an_error(
    emu: Emulator, api: aiohttp.ClientSession, outcome: str
) -> None:
    path = f"synthetic://f?rows=10&duration=1&outcome={outcome}"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    emu.advance(1)
    _, done = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert done["status"] == outcome
    assert done["error"]["code"]
    assert done["metadata"]["errors"]


async def test_time_scale_speeds_up_the_clock() -> None:
    async with (
        Emulator(time_scale=1000) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        body = {"flow_version": CUSTOMERS, "source_path": "synthetic://t?duration=5"}
        _, run = await call(api, "POST", "/v1/runs", json=body)
        _, now = await call(api, "GET", f"/v1/runs/{run['id']}")
        assert now["status"] != "CREATED"


async def test_cancel_stops_a_running_run_and_a_repeat_answers_the_same(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "x"}
    )
    status, canceled = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, canceled["status"]) == (200, "CANCELED")
    emu.advance(100)
    _, later = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert later["status"] == "CANCELED"
    status, again = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, again) == (200, later)


@pytest.mark.parametrize(
    ("path", "ended"),
    [
        ("synthetic://ok", "SUCCEEDED"),
        ("synthetic://half?reject_rate=0.5", "PARTIAL_FAILED"),
        ("synthetic://f?outcome=FAILED", "FAILED"),
        ("synthetic://c?outcome=CRASHED", "CRASHED"),
    ],
)
async def test_cancel_of_a_run_that_ended_otherwise_is_409_with_its_status(
    emu: Emulator, api: aiohttp.ClientSession, path: str, ended: str
) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    emu.advance(5)
    status, err = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, err["code"], err["status"]) == (409, "run_already_finished", ended)
    _, after = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert after["status"] == ended


async def test_results_are_409_until_terminal_then_mapped_for_real(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    rows = [
        {
            "name": "  Ada Lovelace ",
            "email": "ADA@Example.com",
            "age": "36",
            "signup_date": "2024-02-03",
        },
        {"name": "Bob", "email": "no-at-sign", "age": 20},
        {"name": "Cy", "email": "cy@x.io", "age": 300},
    ]
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_data": rows}
    )
    assert run["source_path"] is None
    status, body = await call(api, "GET", f"/v1/runs/{run['id']}/results")
    assert (status, body["code"]) == (409, "run_not_finished")
    emu.advance(1)
    _, results = await call(api, "GET", f"/v1/runs/{run['id']}/results")
    assert results["items"] == [
        {
            "full_name": "Ada Lovelace",
            "email": "ada@example.com",
            "age": 36,
            "signup_date": "2024-02-03",
        }
    ]
    _, rejects = await call(api, "GET", f"/v1/runs/{run['id']}/rejects")
    assert [(r["index"], r["errors"][0]["error_code"]) for r in rejects["items"]] == [
        (1, "invalid_email"),
        (2, "out_of_range"),
    ]
    _, logs = await call(api, "GET", f"/v1/runs/{run['id']}/logs")
    assert {"time", "level", "code", "message", "details"} <= set(logs["items"][0])
    assert logs["items"][-1]["code"] == "run.partial_failed"


async def test_patch_changes_label_and_tags(emu: Emulator, api: aiohttp.ClientSession) -> None:
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "p"}
    )
    status, patched = await call(
        api, "PATCH", f"/v1/runs/{run['id']}", json={"label": "nightly", "tags": ["a", "b"]}
    )
    assert (status, patched["label"], patched["tags"]) == (200, "nightly", ["a", "b"])


async def test_bad_bodies_are_422_with_loc_msg_type(api: aiohttp.ClientSession) -> None:
    status, body = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_data": [1]}
    )
    assert (status, body["code"]) == (422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "source_data", 0]
    assert {"loc", "msg", "type"} == set(body["detail"][0])
    status, body = await call(api, "POST", "/v1/runs", data=b"{nope")
    assert status == 422


async def test_unknown_flow_version_is_404(api: aiohttp.ClientSession) -> None:
    status, body = await call(
        api, "POST", "/v1/runs", json={"flow_version": "nope:v1", "source_path": "x"}
    )
    assert (status, body["code"]) == (404, "not_found")


async def test_flows_are_seeded(api: aiohttp.ClientSession) -> None:
    _, flows = await call(api, "GET", "/v1/flows")
    assert [f["name"] for f in flows["items"]] == ["customer_cleaner", "invoice_mapper"]
    _, flow = await call(api, "GET", "/v1/flows/customer_cleaner")
    assert [v["id"] for v in flow["versions"]] == ["customer_cleaner:v1", "customer_cleaner:v2"]
