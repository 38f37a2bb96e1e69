"""The emulator as a product in users' test suites: answers to what a test may send it.

A body over the size limit is a 4xx in the documented shape, not an internal error; a control
plane request that is refused changes nothing; a skip of run time the emulator cannot keep is
refused, not half kept; a ``truncate`` fault on an answer without a body still loses the answer.
"""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from lume_async import APIConnectionError, AsyncLume
from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, call

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

TOO_BIG = 64 * 1024 * 1024 + 1024  # over the emulator's request body limit (64 MiB)


def _oversized_body() -> io.BytesIO:
    filler = b"x" * (TOO_BIG - 64)
    return io.BytesIO(b'{"flow_version": "customer_cleaner:v1", "source_path": "' + filler + b'"}')


# -- a body over the size limit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/runs/batch-create", {}),
        ("/v1/runs", {"Idempotency-Key": "too-big-1"}),
        ("/_emulator/faults", {}),
    ],
    ids=["batch-create", "with-idempotency-key", "control-plane"],
)
async def test_a_body_over_the_size_limit_is_a_413_in_the_documented_shape(
    emu: Emulator, path: str, headers: dict[str, str]
) -> None:
    sent = {"lume-api-key": emu.api_key, "content-type": "application/json", **headers}
    async with (
        aiohttp.ClientSession(emu.url) as session,
        session.post(path, data=_oversized_body(), headers=sent) as resp,
    ):
        status, content_type = resp.status, resp.content_type
        request_id = resp.headers.get("x-request-id")
        body: Any = await resp.json() if content_type == "application/json" else await resp.text()
    # A 5xx would be retried by clients (the same huge body again), and the SDK's batch create
    # falls back to single creates only on a refusal such as 413.
    assert (status, content_type) == (413, "application/json"), body
    assert body["code"] == "payload_too_large"
    assert "error_id" in body and body["detail"]
    assert request_id
    route = f"POST {path}" if path != "/v1/runs" else "POST /v1/runs"
    assert emu.stats()["requests"][route] == {"413": 1}
    assert emu.stats()["runs_created"] == 0


# -- the control plane: a refused body changes nothing -----------------------------------------


async def test_a_refused_config_body_changes_nothing(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    status, error = await call(
        api, "POST", "/_emulator/config", json={"rate_limit": 1, "rate_burst": 0}
    )
    assert status == 422, error
    assert error["detail"][0]["loc"] == ["body", "rate_burst"]
    status, settings = await call(api, "POST", "/_emulator/config", json={})
    assert (status, settings) == (200, {"rate_limit": None, "rate_burst": None})
    answers = [(await call(api, "GET", "/v1/flows"))[0] for _ in range(5)]
    assert answers == [200] * 5  # no rate limit was armed by the refused request


async def test_a_refused_config_body_keeps_a_limit_in_force(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_rate_limit(1000.0, 1000)
    status, _ = await call(api, "POST", "/_emulator/config", json={"rate_limit": None, "x": 1})
    assert status == 422
    status, _ = await call(
        api, "POST", "/_emulator/config", json={"rate_limit": None, "rate_burst": True}
    )
    assert status == 422
    status, settings = await call(api, "POST", "/_emulator/config", json={})
    assert (status, settings) == (200, {"rate_limit": 1000.0, "rate_burst": 1000})


# -- skipping run time ---------------------------------------------------------------------------


async def _new_run(session: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    status, run = await call(
        session,
        "POST",
        "/v1/runs",
        json={"flow_version": CUSTOMERS, "source_path": f"synthetic://{name}?duration=60"},
    )
    assert status == 201, run
    return dict(run)


async def test_advance_past_the_run_time_the_emulator_keeps_is_refused(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    manual.advance(365 * 86400.0)  # a year is fine
    with pytest.raises(ValueError, match="seconds"):
        manual.advance(1e300)
    status, error = await call(manual_api, "POST", "/_emulator/advance", json={"seconds": 1e300})
    assert status == 422, error
    assert error["detail"][0]["loc"] == ["body", "seconds"]
    # Nothing was skipped: a run of 60 s of run time is still at its start, on a clock that
    # stands still, and its stages are 60 s apart, not collapsed into one instant.
    run = await _new_run(manual_api, "after-refused-advance")
    assert run["status"] == "CREATED", run
    manual.advance(30)
    status, again = await call(manual_api, "GET", f"/v1/runs/{run['id']}")
    assert (status, again["status"]) == (200, "TRANSFORMING"), again


async def test_repeated_large_advances_never_leave_runs_ending_as_they_start(
    manual: Emulator, manual_api: aiohttp.ClientSession
) -> None:
    refused = 0
    for _ in range(3):
        try:
            manual.advance(1e18)
        except ValueError:
            refused += 1
    assert refused == 3
    run = await _new_run(manual_api, "after-large-advances")
    assert run["status"] == "CREATED", run


# -- faults on answers without a body ------------------------------------------------------------


async def test_a_truncate_fault_on_a_bodiless_answer_loses_the_answer(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, max_retries=0) as lume:
        hook = await lume.webhook_endpoints.create("http://127.0.0.1:9/hook")
        emu.set_faults(FaultProfile(rate=1.0, kinds=("truncate",), phase="after", seed=1))
        # The emulator counts the answer as cut short; the client must not have got it whole.
        with pytest.raises(APIConnectionError):
            await lume.webhook_endpoints.delete(hook.id)
        emu.set_faults(None)
    assert emu.stats()["requests"]["DELETE /v1/webhooks/{webhook_id}"] == {"truncate": 1}
