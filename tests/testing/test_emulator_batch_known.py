"""``batch-get`` with ``known``: runs still at the ``updated_at`` the caller holds are not sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio

BATCH_GET = "/v1/runs/batch-get"


async def created(api: aiohttp.ClientSession, n: int) -> list[dict[str, Any]]:
    runs = []
    for i in range(n):
        status, body = await call(
            api,
            "POST",
            "/v1/runs",
            json={"flow_version": CUSTOMERS, "source_path": f"synthetic://k{i}?duration=100000"},
        )
        assert status == 201, body
        runs.append(body)
    return runs


async def batch(api: aiohttp.ClientSession, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await call(api, "POST", BATCH_GET, json=body)
    assert status == 200, answer
    return dict(answer)


def same_instant_elsewhere(updated_at: str) -> str:
    """``updated_at`` written with another offset (and without the ``Z``)."""
    at = datetime.fromisoformat(updated_at).astimezone(timezone(timedelta(hours=5, minutes=30)))
    return at.isoformat()


async def test_runs_at_the_known_instant_are_named_unchanged_and_others_sent(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    a, b, c, d = await created(api, 4)
    ids = [a["id"], b["id"], c["id"], d["id"], "run_00000000000000000000000000"]

    answer = await batch(
        api,
        {
            "ids": ids,
            "known": {
                a["id"]: a["updated_at"],  # as the service wrote it
                b["id"]: same_instant_elsewhere(b["updated_at"]),  # the same instant
                c["id"]: "2020-01-01T00:00:00Z",  # an older state
                "run_00000000000000000000000000": a["updated_at"],  # no such run
            },
        },
    )

    assert sorted(answer["unchanged"]) == sorted([a["id"], b["id"]])
    assert [item["id"] for item in answer["items"]] == [c["id"], d["id"]]
    assert answer["missing"] == ["run_00000000000000000000000000"]


async def test_a_run_that_moved_since_its_known_instant_is_sent(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    (run,) = await created(api, 1)
    status, patched = await call(api, "PATCH", f"/v1/runs/{run['id']}", json={"label": "moved"})
    assert status == 200 and patched["updated_at"] != run["updated_at"]

    answer = await batch(api, {"ids": [run["id"]], "known": {run["id"]: run["updated_at"]}})

    assert answer["unchanged"] == []
    assert [item["label"] for item in answer["items"]] == ["moved"]


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-45T99:99:99Z", "x" * 64])
async def test_a_known_value_that_is_no_timestamp_just_sends_the_run(
    emu: Emulator, api: aiohttp.ClientSession, value: str
) -> None:
    (run,) = await created(api, 1)

    answer = await batch(api, {"ids": [run["id"]], "known": {run["id"]: value}})

    assert (answer["unchanged"], len(answer["items"])) == ([], 1)


async def test_known_entries_for_runs_not_asked_about_are_ignored(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    a, b = await created(api, 2)

    answer = await batch(api, {"ids": [a["id"]], "known": {b["id"]: b["updated_at"]}})

    assert (answer["unchanged"], [item["id"] for item in answer["items"]]) == ([], [a["id"]])


async def test_an_answer_to_a_request_without_known_has_no_unchanged(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    (run,) = await created(api, 1)

    assert sorted(await batch(api, {"ids": [run["id"]]})) == ["items", "missing"]


@pytest.mark.parametrize("known", [[], "x", {"run_a": 1}, {"run_a": None}, {"run_a": "x" * 65}])
async def test_a_known_of_the_wrong_shape_is_refused(
    emu: Emulator, api: aiohttp.ClientSession, known: Any
) -> None:
    status, body = await call(api, "POST", BATCH_GET, json={"ids": ["run_a"], "known": known})

    assert (status, body["code"]) == (422, "validation_error")
    assert any(issue["loc"][:2] == ["body", "known"] for issue in body["detail"])
