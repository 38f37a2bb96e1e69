"""Run permissions in the emulator, over HTTP: principals, the rules that hide and refuse runs,
duplicates and idempotency per tenant, webhooks per principal, and the control plane.

(The whole role x operation matrix, through both SDKs, is tests/test_run_permissions.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async.testing import Emulator

from .._profiles import examples
from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio

PATH = "synthetic://p?rows=10&duration=2"


@asynccontextmanager
async def as_key(emu: Emulator, key: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": key}) as session:
        yield session


async def create(session: aiohttp.ClientSession, path: str = PATH, **fields: Any) -> Any:
    status, body = await call(
        session, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path, **fields}
    )
    assert status == 201, body
    return body


# -- principals ----------------------------------------------------------------------------------


async def test_a_run_is_its_creators_unless_another_owner_is_named(emu: Emulator) -> None:
    ana = emu.add_principal("ana@example.com")
    async with as_key(emu, ana) as s:
        mine = await create(s, "s3://a")
        given_away = await create(s, "s3://b", run_owner="bo@example.com")
    assert (mine["created_by"], mine["run_owner"]) == ("ana@example.com", "ana@example.com")
    assert (given_away["created_by"], given_away["run_owner"]) == (
        "ana@example.com",
        "bo@example.com",
    )
    for name in ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups"):
        assert mine[name] == []


async def test_the_default_key_is_a_tenant_admin_that_sees_every_run(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as ana:
        run = await create(ana)
    status, _ = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert status == 200
    status, cancelled = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, cancelled["status"]) == (200, "CANCELED")


async def test_a_run_with_no_lists_is_hidden_from_everyone_but_its_owner_and_admins(
    emu: Emulator,
) -> None:
    owner = emu.add_principal("ana@example.com", groups=["analysts"])
    peer = emu.add_principal("bo@example.com", groups=["analysts"])
    admin = emu.add_principal("root@example.com", admin=True)
    async with as_key(emu, owner) as s:
        run = await create(s)
    async with as_key(emu, peer) as s:
        status, body = await call(s, "GET", f"/v1/runs/{run['id']}")
        assert (status, body["code"]) == (404, "not_found")
        _, listed = await call(s, "GET", "/v1/runs")
        assert listed["items"] == []
        _, batch = await call(s, "POST", "/v1/runs/batch-get", json={"ids": [run["id"]]})
        assert batch == {"items": [], "missing": [run["id"]]}
    async with as_key(emu, admin) as s:
        status, _ = await call(s, "GET", f"/v1/runs/{run['id']}")
        assert status == 200


async def test_a_stranger_cannot_tell_a_hidden_run_from_one_that_does_not_exist(
    emu: Emulator,
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s)
    ghost = "run_01HY0000000000000000000000"
    async with as_key(emu, emu.add_principal("bo@example.com")) as s:
        for suffix, method in (("", "GET"), ("", "PATCH"), ("/cancel", "POST"), ("/logs", "GET")):
            answers = []
            for run_id in (run["id"], ghost):
                kwargs = {"json": {"label": "x"}} if method == "PATCH" else {}
                status, body = await call(s, method, f"/v1/runs/{run_id}{suffix}", **kwargs)
                answers.append((status, body["code"], body["detail"].replace(run_id, "ID")))
            assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("body", "operation"),
    [
        ({"label": "mine now"}, "update"),
        ({"tags": ["x"]}, "update"),
        ({"monitoring_by": []}, "update_permissions"),
        ({"run_owner": "cy@example.com"}, "update_permissions"),
    ],
)
async def test_a_monitor_may_read_but_a_change_is_403_naming_the_operation(
    emu: Emulator, body: dict[str, Any], operation: str
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s, monitoring_groups=["analysts"])
    async with as_key(emu, emu.add_principal("bo@example.com", groups=["analysts"])) as s:
        status, _ = await call(s, "GET", f"/v1/runs/{run['id']}")
        assert status == 200
        status, error = await call(s, "PATCH", f"/v1/runs/{run['id']}", json=body)
        assert (status, error["code"], error["operation"]) == (403, "permission_denied", operation)
        status, error = await call(s, "POST", f"/v1/runs/{run['id']}/cancel")
        assert (status, error["operation"]) == (403, "cancel")
        _, unchanged = await call(s, "GET", f"/v1/runs/{run['id']}")
    assert unchanged["status"] != "CANCELED"
    assert unchanged["label"] is None


async def test_a_manager_may_change_the_lists_and_so_take_a_monitors_access_away(
    emu: Emulator,
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s, monitoring_by=["cy@example.com"], managing_groups=["ops"])
    cy = emu.add_principal("cy@example.com")
    async with as_key(emu, emu.add_principal("bo@example.com", groups=["ops"])) as s:
        status, changed = await call(
            s, "PATCH", f"/v1/runs/{run['id']}", json={"monitoring_by": [], "label": "ops'"}
        )
    assert (status, changed["monitoring_by"], changed["label"]) == (200, [], "ops'")
    async with as_key(emu, cy) as s:
        status, _ = await call(s, "GET", f"/v1/runs/{run['id']}")
    assert status == 404


async def test_handing_a_run_to_another_owner_moves_who_may_manage_it(emu: Emulator) -> None:
    ana, bo = emu.add_principal("ana@example.com"), emu.add_principal("bo@example.com")
    async with as_key(emu, ana) as s:
        run = await create(s, monitoring_by=["ana@example.com"])
        status, changed = await call(
            s, "PATCH", f"/v1/runs/{run['id']}", json={"run_owner": "bo@example.com"}
        )
        assert (status, changed["run_owner"], changed["created_by"]) == (
            200,
            "bo@example.com",
            "ana@example.com",
        )
        status, _ = await call(s, "POST", f"/v1/runs/{run['id']}/cancel")
        assert status == 403  # ana still monitors it, no more
    async with as_key(emu, bo) as s:
        status, _ = await call(s, "POST", f"/v1/runs/{run['id']}/cancel")
    assert status == 200


async def test_lists_are_kept_once_per_name_in_the_order_given(emu: Emulator) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s, monitoring_by=["b@x", "a@x", "b@x"], managing_groups=["g", "g"])
    assert run["monitoring_by"] == ["b@x", "a@x"]
    assert run["managing_groups"] == ["g"]


@pytest.mark.parametrize(
    "fields",
    [
        {"run_owner": ""},
        {"monitoring_by": "ana@example.com"},
        {"managing_groups": [""]},
        {"monitoring_groups": [3]},
        {"managing_by": ["x" * 255]},
    ],
)
async def test_malformed_permission_fields_are_422(
    api: aiohttp.ClientSession, fields: dict[str, Any]
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://x", **fields}
    status, error = await call(api, "POST", "/v1/runs", json=body)
    assert (status, error["code"]) == (422, "validation_error")
    assert error["detail"][0]["loc"][:2] == ["body", next(iter(fields))]


# -- duplicates and idempotency, per tenant --------------------------------------------------------


async def test_a_duplicate_names_the_existing_run_only_to_those_who_may_read_it(
    emu: Emulator,
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s, monitoring_by=["cy@example.com"])
    emu.advance(10)
    body = {"flow_version": CUSTOMERS, "source_path": PATH}
    async with as_key(emu, emu.add_principal("cy@example.com")) as s:
        status, error = await call(s, "POST", "/v1/runs", json=body)
    assert (status, error["code"], error["existing_run_id"]) == (
        409,
        "duplicate_source_path",
        run["id"],
    )
    async with as_key(emu, emu.add_principal("bo@example.com")) as s:
        status, error = await call(s, "POST", "/v1/runs", json=body)
    assert (status, error["code"]) == (409, "duplicate_source_path")
    assert "existing_run_id" not in error
    assert run["id"] not in error["detail"]


async def test_a_pair_in_flight_is_that_run_to_a_reader_and_a_nameless_409_to_a_stranger(
    emu: Emulator,
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        run = await create(s, monitoring_groups=["analysts"])
    body = {"flow_version": CUSTOMERS, "source_path": PATH}
    async with as_key(emu, emu.add_principal("cy@example.com", groups=["analysts"])) as s:
        status, same = await call(s, "POST", "/v1/runs", json=body)
    assert (status, same["id"]) == (200, run["id"])
    async with as_key(emu, emu.add_principal("bo@example.com")) as s:
        status, error = await call(s, "POST", "/v1/runs", json={**body, "force_rerun": True})
    assert (status, error["code"]) == (409, "duplicate_source_path")
    assert "existing_run_id" not in error
    assert run["id"] not in error["detail"]


async def test_an_idempotency_key_replays_for_its_principal_and_is_422_for_another(
    emu: Emulator,
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://idem"}
    headers = {"Idempotency-Key": "shared-key-1"}
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        status, first = await call(s, "POST", "/v1/runs", json=body, headers=headers)
        assert status == 201
        status, again = await call(s, "POST", "/v1/runs", json=body, headers=headers)
        assert (status, again["id"]) == (201, first["id"])
    async with as_key(emu, emu.add_principal("bo@example.com")) as s:
        status, error = await call(s, "POST", "/v1/runs", json=body, headers=headers)
    assert (status, error["code"]) == (422, "idempotency_key_reused")
    assert first["id"] not in str(error)


# -- webhooks --------------------------------------------------------------------------------------


async def test_a_principals_webhook_hears_only_of_runs_it_may_read(emu: Emulator) -> None:
    heard: list[str] = []
    got = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        heard.append((await request.json())["data"]["run_id"])
        got.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with as_key(emu, emu.add_principal("cy@example.com", groups=["analysts"])) as s:
            status, _ = await call(s, "POST", "/v1/webhooks", json={"url": url})
            assert status == 201
        async with as_key(emu, emu.add_principal("ana@example.com")) as s:
            private = await create(s, "synthetic://private?rows=5&duration=1")
            shared = await create(
                s, "synthetic://shared?rows=5&duration=2", monitoring_groups=["analysts"]
            )
        emu.advance(1.5)  # the private run ends first: its event, were it sent, would lead
        emu.advance(1)
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await runner.cleanup()
    assert heard == [shared["id"]]
    assert private["id"] not in heard
    assert emu.stats()["webhook_deliveries"]["attempted"] == 1


async def test_webhooks_are_seen_by_their_creator_and_admins_only(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    async with as_key(emu, emu.add_principal("ana@example.com")) as s:
        _, hook = await call(s, "POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/h"})
    async with as_key(emu, emu.add_principal("bo@example.com")) as s:
        _, listed = await call(s, "GET", "/v1/webhooks")
        assert listed["items"] == []
        status, _ = await call(s, "GET", f"/v1/webhooks/{hook['id']}")
        assert status == 404
        status, _ = await call(s, "DELETE", f"/v1/webhooks/{hook['id']}")
        assert status == 404
    _, listed = await call(api, "GET", "/v1/webhooks")
    assert [h["id"] for h in listed["items"]] == [hook["id"]]


# -- control plane ---------------------------------------------------------------------------------


async def test_the_control_plane_adds_a_principal_to_a_tenant(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    other_tenant = emu.add_tenant()
    status, made = await call(
        api,
        "POST",
        "/_emulator/principals",
        json={"tenant_key": other_tenant, "principal": "ana@example.com", "groups": ["g"]},
    )
    assert status == 201
    async with as_key(emu, other_tenant) as admin:
        run = await create(admin, monitoring_groups=["g"])
    async with as_key(emu, made["api_key"]) as s:
        status, seen = await call(s, "GET", f"/v1/runs/{run['id']}")
    assert (status, seen["id"]) == (200, run["id"])
    status, _ = await call(api, "GET", f"/v1/runs/{run['id']}")
    assert status == 404  # another tenant's run, even to this tenant's admin


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "principal"),
        ({"principal": ""}, "principal"),
        ({"principal": 3}, "principal"),
        ({"principal": "a", "groups": "g"}, "groups"),
        ({"principal": "a", "groups": [""]}, "groups"),
        ({"principal": "a", "admin": "yes"}, "admin"),
        ({"principal": "a", "tenant_key": "nope"}, "tenant_key"),
        ({"principal": "a", "role": "x"}, "role"),
    ],
)
async def test_a_malformed_principal_request_is_422_naming_the_field(
    api: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    status, error = await call(api, "POST", "/_emulator/principals", json=body)
    assert (status, error["code"]) == (422, "validation_error")
    assert error["detail"][0]["loc"] == ["body", field]
    assert "nope" not in str(error)  # a key, even a wrong one, is not echoed


@settings(max_examples=examples(40), deadline=None)
@given(
    principal=st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.text())),
    groups=st.one_of(st.text(max_size=2), st.integers(), st.lists(st.one_of(st.text(), st.none()))),
    admin=st.one_of(st.booleans(), st.integers(), st.none()),
)
def test_add_principal_refuses_bad_arguments_with_type_or_value_errors(
    principal: Any, groups: Any, admin: Any
) -> None:
    emu = Emulator()  # not started: plain methods run in place
    valid = (
        isinstance(principal, str)
        and principal.strip() != ""
        and isinstance(groups, list)
        and all(isinstance(g, str) and g.strip() for g in groups)
        and isinstance(admin, bool)
    )
    if valid:
        assert emu.add_principal(principal, groups=groups, admin=admin).startswith("lume_test_")
        return
    with pytest.raises((TypeError, ValueError), match=r"principal|groups|admin"):
        emu.add_principal(principal, groups=groups, admin=admin)
