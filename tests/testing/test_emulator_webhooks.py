from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook as StandardWebhook

from lume_async.testing import Emulator
from lume_async.testing._webhooks import sign_headers

from .conftest import CUSTOMERS, ManualClock, call

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook endpoint that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            return web.Response(status=500)
        self.received.append((await request.read(), dict(request.headers)))
        self.got.set()
        return web.Response(status=204)


@pytest.fixture
async def receiver_url() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield receiver, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def _subscribe(api: aiohttp.ClientSession, url: str, **extra: Any) -> dict[str, Any]:
    status, hook = await call(api, "POST", "/v1/webhooks", json={"url": url, **extra})
    assert status == 201
    return hook


async def test_terminal_run_is_delivered_with_both_valid_signatures(
    emu: Emulator, api: aiohttp.ClientSession, receiver_url: tuple[Receiver, str]
) -> None:
    receiver, url = receiver_url
    hook = await _subscribe(api, url)
    assert hook["id"].startswith("wh_")
    assert hook["secret"].startswith("whsec_")
    assert len(hook["events"]) == 5
    _, run = await call(
        api,
        "POST",
        "/v1/runs",
        json={"flow_version": CUSTOMERS, "source_path": "w", "run_metadata": {"k": 1}},
    )
    emu.advance(5)  # no read: the scheduler notices the completion by itself
    await asyncio.wait_for(receiver.got.wait(), 5)
    body, headers = receiver.received[0]
    event = StandardWebhook(hook["secret"]).verify(body, headers)
    assert event["type"] == "run.succeeded"
    assert event["id"] == headers["webhook-id"]
    assert event["id"].startswith("evt_")
    assert event["data"] == {
        "run_id": run["id"],
        "status": "SUCCEEDED",
        "flow_version": CUSTOMERS,
        "source_path": "w",
        "run_metadata": {"k": 1},
    }
    expected = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Lume-Signature-256"] == f"sha256={expected}"


async def test_failed_deliveries_are_retried_with_the_same_event_id(
    emu: Emulator, api: aiohttp.ClientSession, receiver_url: tuple[Receiver, str]
) -> None:
    receiver, url = receiver_url
    receiver.failures = 2
    await _subscribe(api, url, events=["run.canceled"])
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "c"}
    )
    await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    await asyncio.wait_for(receiver.got.wait(), 5)
    assert receiver.attempts == 3
    stats = emu.stats()["webhook_deliveries"]
    assert stats == {"attempted": 3, "succeeded": 1}


async def test_retries_wait_on_the_emulators_clock_and_sign_its_time(
    clock: ManualClock, receiver_url: tuple[Receiver, str]
) -> None:
    receiver, url = receiver_url
    receiver.failures = 1
    async with (
        Emulator(clock=clock, webhook_retry_base=30) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        await _subscribe(api, url, events=["run.canceled"])
        _, run = await call(
            api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "c"}
        )
        await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
        await clock.wait_for_sleepers(2)  # the run's scheduled end, and the delivery's backoff
        assert receiver.attempts == 1
        await clock.pass_time(29.9)
        assert receiver.attempts == 1
        await clock.pass_time(0.1)
        await asyncio.wait_for(receiver.got.wait(), 5)
    body, headers = receiver.received[0]
    assert headers["webhook-timestamp"] == str(int(clock.time()))
    event = orjson.loads(body)
    assert event["created_at"] == run["created_at"]  # canceled at once, on this clock


async def test_events_filter_what_is_sent(
    emu: Emulator, api: aiohttp.ClientSession, receiver_url: tuple[Receiver, str]
) -> None:
    receiver, url = receiver_url
    await _subscribe(api, url, events=["run.failed"])
    await call(api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "ok"})
    emu.advance(5)
    await asyncio.sleep(0.05)
    assert receiver.attempts == 0


async def test_webhooks_can_be_listed_read_and_deleted(api: aiohttp.ClientSession) -> None:
    hook = await _subscribe(api, "http://127.0.0.1:9/x", secret="whsec_QUJDREVGR0hJSktMTU5PUA==")
    _, listed = await call(api, "GET", "/v1/webhooks")
    assert [h["id"] for h in listed["items"]] == [hook["id"]]
    status, one = await call(api, "GET", f"/v1/webhooks/{hook['id']}")
    assert (status, one) == (200, hook)
    status, _ = await call(api, "DELETE", f"/v1/webhooks/{hook['id']}")
    assert status == 204
    status, _ = await call(api, "GET", f"/v1/webhooks/{hook['id']}")
    assert status == 404


def test_standard_signature_matches_the_reference_implementation() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"id":"evt_1","type":"run.succeeded"}'
    headers = sign_headers(secret, "evt_1", 1_700_000_000, body)
    reference = StandardWebhook(secret).sign("evt_1", _dt(1_700_000_000), body.decode())
    assert headers["webhook-signature"] == reference


def _dt(ts: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)
