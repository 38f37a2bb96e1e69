from __future__ import annotations

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio


async def test_requests_without_a_valid_key_are_401(emu: Emulator) -> None:
    async with aiohttp.ClientSession(emu.url) as anon:
        status, body = await call(anon, "GET", "/v1/runs")
        assert (status, body["code"]) == (401, "unauthorized")
        status, _ = await call(anon, "GET", "/v1/runs", headers={"lume-api-key": "wrong"})
        assert status == 401


async def test_bearer_authorization_is_accepted(emu: Emulator) -> None:
    async with aiohttp.ClientSession(emu.url) as s:
        status, _ = await call(
            s, "GET", "/v1/runs", headers={"Authorization": f"Bearer {emu.api_key}"}
        )
        assert status == 200


async def test_every_response_carries_a_request_id(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    async with api.get("/v1/runs/run_01HY0000000000000000000000") as resp:
        assert resp.status == 404
        assert resp.headers["x-request-id"]
    async with aiohttp.ClientSession(emu.url) as anon, anon.get("/v1/runs") as resp:
        assert resp.headers["x-request-id"]


async def test_another_tenants_runs_are_not_found_and_missing(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, mine = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "x"}
    )
    other_key = emu.add_tenant()
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": other_key}) as other:
        status, body = await call(other, "GET", f"/v1/runs/{mine['id']}")
        assert (status, body["code"]) == (404, "not_found")
        _, listed = await call(other, "GET", "/v1/runs")
        assert listed["items"] == []
        _, batch = await call(other, "POST", "/v1/runs/batch-get", json={"ids": [mine["id"]]})
        assert batch == {"items": [], "missing": [mine["id"]]}
        status, _ = await call(other, "POST", f"/v1/runs/{mine['id']}/cancel")
        assert status == 404
        # The duplicate rule is per tenant too.
        status, _ = await call(
            other, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "x"}
        )
        assert status == 201


async def test_batch_get_returns_items_and_missing(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    _, a = await call(api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "a"})
    ghost = "run_01HY0000000000000000000000"
    status, batch = await call(api, "POST", "/v1/runs/batch-get", json={"ids": [a["id"], ghost]})
    assert status == 200
    assert [r["id"] for r in batch["items"]] == [a["id"]]
    assert batch["missing"] == [ghost]
    status, _ = await call(api, "POST", "/v1/runs/batch-get", json={"ids": ["x"] * 101})
    assert status == 422


async def test_control_plane_reset_keeps_tenants(emu: Emulator, api: aiohttp.ClientSession) -> None:
    await call(api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "a"})
    status, _ = await call(api, "POST", "/_emulator/reset")
    assert status == 200
    _, listed = await call(api, "GET", "/v1/runs")
    assert listed["items"] == []
    _, stats = await call(api, "GET", "/_emulator/stats")
    assert stats["runs_created"] == 0
    # Counting restarts with the reset request itself.
    assert stats["requests"] == {"POST /_emulator/reset": {"200": 1}, "GET /v1/runs": {"200": 1}}
