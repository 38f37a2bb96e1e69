"""Run permissions under inputs the other permission tests leave out: keys that share a
principal's name but not its groups or admin flag, idempotency keys replayed between them, and
batch calls that mix runs the caller may and may not read.
"""

from __future__ import annotations

from typing import Any

import pytest

from lume_async import AsyncLume, PermissionDeniedError, RunNotFoundError, RunRequest
from lume_async.testing import Emulator

from ._direct import call, raw

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
LONG = "duration=1000000"  # emulator seconds: a run that stays in flight for the whole test


# -- idempotency keys replayed by a key of the same name but other rights ------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"groups": ["ops"]}, {}, id="in-a-group-then-in-none"),
        pytest.param({"admin": True}, {}, id="admin-then-not"),
        pytest.param({"groups": ["ops", "eng"]}, {"groups": ["eng"]}, id="two-groups-then-one"),
    ],
)
async def test_a_batch_get_replayed_by_a_namesake_with_fewer_rights_shows_it_nothing(
    emu: Emulator, first: dict[str, Any], second: dict[str, Any]
) -> None:
    strong = emu.add_principal("ana@example.com", **first)
    weak = emu.add_principal("ana@example.com", **second)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as admin:
        run = await admin.run(FLOW, f"synthetic://ops?{LONG}", managing_groups=["ops"])
    body = {"ids": [run.id]}
    headers = {"Idempotency-Key": "status-of-the-ops-run"}
    async with raw(emu, strong) as strong_raw, raw(emu, weak) as weak_raw:
        status, answer = await call(weak_raw, "POST", "/v1/runs/batch-get", json=body)
        assert (status, answer["items"], answer["missing"]) == (200, [], [run.id])
        status, answer = await call(
            strong_raw, "POST", "/v1/runs/batch-get", json=body, headers=headers
        )
        assert status == 200 and [item["id"] for item in answer["items"]] == [run.id]
        status, answer = await call(
            weak_raw, "POST", "/v1/runs/batch-get", json=body, headers=headers
        )
    # Another request, as for any other principal: never the first answer, which shows the run.
    assert status == 422 and answer["code"] == "idempotency_key_reused"
    assert run.id not in str(answer)


async def test_a_create_replayed_by_a_namesake_in_no_group_does_not_name_the_run(
    emu: Emulator,
) -> None:
    in_ops = emu.add_principal("ana@example.com", groups=["ops"])
    outside = emu.add_principal("ana@example.com")
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as admin:
        run = await admin.run(FLOW, f"synthetic://shared?{LONG}", monitoring_groups=["ops"])
    body = {"flow_version": FLOW, "source_path": f"synthetic://shared?{LONG}"}
    headers = {"Idempotency-Key": "join-the-shared-run"}
    async with raw(emu, in_ops) as ops_raw, raw(emu, outside) as outside_raw:
        status, answer = await call(ops_raw, "POST", "/v1/runs", json=body, headers=headers)
        assert (status, answer["id"]) == (200, run.id)  # the run in flight, which ops may read
        status, answer = await call(outside_raw, "POST", "/v1/runs", json=body, headers=headers)
    assert status == 422 and run.id not in str(answer)


async def test_a_batch_create_item_replayed_by_a_namesake_with_fewer_rights_is_refused(
    emu: Emulator,
) -> None:
    admin_ana = emu.add_principal("ana@example.com", admin=True)
    plain_ana = emu.add_principal("ana@example.com")
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as admin:
        run = await admin.run(FLOW, f"synthetic://nightly?{LONG}")  # the admins' alone
    item = {
        "idempotency_key": "nightly-once",
        "run": {"flow_version": FLOW, "source_path": f"synthetic://nightly?{LONG}"},
    }
    path = "/v1/runs/batch-create"
    async with raw(emu, admin_ana) as admin_raw, raw(emu, plain_ana) as plain_raw:
        status, answer = await call(admin_raw, "POST", path, json={"items": [item]})
        assert status == 200 and answer["results"][0]["run"]["id"] == run.id
        status, answer = await call(plain_raw, "POST", path, json={"items": [item]})
    assert status == 200
    [result] = answer["results"]
    assert result["status"] == 422 and run.id not in str(result)


async def test_namesakes_with_the_same_rights_still_share_an_idempotency_key(
    emu: Emulator,
) -> None:
    laptop = emu.add_principal("ana@example.com", groups=["ops", "eng"])
    ci = emu.add_principal("ana@example.com", groups=["eng", "ops", "eng"])
    body = {"flow_version": FLOW, "source_path": "s3://bucket/once"}
    headers = {"Idempotency-Key": "once"}
    async with raw(emu, laptop) as laptop_raw, raw(emu, ci) as ci_raw:
        first = await call(laptop_raw, "POST", "/v1/runs", json=body, headers=headers)
        again = await call(ci_raw, "POST", "/v1/runs", json=body, headers=headers)
    assert first[0] == 201 and again == first
    assert emu.stats()["idempotent_replays"] == 1


# -- batch calls over runs some of which the caller may not read ---------------------------------


async def test_batch_calls_mixing_hidden_monitored_and_own_runs_answer_per_item(
    emu: Emulator,
) -> None:
    bo = AsyncLume(api_key=emu.add_principal("bo@example.com"), base_url=emu.url)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as admin, bo:
        hidden = await admin.run(FLOW, f"synthetic://hidden?{LONG}", label="secret")
        watched = await admin.run(FLOW, f"synthetic://watched?{LONG}", monitoring_by=["bo@x"])
        watched = await admin.runs.update(watched.id, monitoring_by=["bo@example.com"])
        own = await bo.run(FLOW, f"synthetic://own?{LONG}")
        unknown = "run_" + "0" * 26
        ids = [hidden.id, own.id, watched.id, unknown]
        got = await bo.runs.get_many(ids)
        assert [type(o.error).__name__ for o in got] == [
            "RunNotFoundError",
            "NoneType",
            "NoneType",
            "RunNotFoundError",
        ]
        # A hidden run fails exactly as a run that does not exist: same class, same message shape.
        hidden_text = str(got[0].error).replace(hidden.id, "ID").split(" (")[0]
        assert hidden_text == str(got[3].error).replace(unknown, "ID").split(" (")[0]
        assert "secret" not in str(got[0].error)
        canceled = await bo.runs.cancel_many(ids)
        assert isinstance(canceled[0].error, RunNotFoundError)
        assert canceled[1].value is not None and canceled[1].value.status.value == "CANCELED"
        assert isinstance(canceled[2].error, PermissionDeniedError)
        assert canceled[2].error.operation == "cancel"
        assert isinstance(canceled[3].error, RunNotFoundError)
        assert (await admin.runs.get(hidden.id)).status.value != "CANCELED"
        made = await bo.runs.create_many(
            [
                RunRequest(FLOW, source_path=f"synthetic://hidden?{LONG}"),
                RunRequest(FLOW, source_path=f"synthetic://watched?{LONG}"),
            ]
        )
        assert made[0].error is not None and hidden.id not in str(made[0].error)
        assert getattr(made[0].error, "existing_run_id", "absent") is None
        assert made[1].value is not None and made[1].value.id == watched.id
