from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from lume_async._exceptions import WebhookVerificationError
from lume_async.models import RunStatus, WebhookEvent
from lume_async.webhooks import ReplayGuard, WebhookReceiver, sign, verify

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
NOW = 1_714_557_600


def event_body(
    event_id: str = "evt_1", status: str = "SUCCEEDED", created_at: float = NOW
) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": f"run.{status.lower()}",
            "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(),
            "data": {
                "run_id": "run_01",
                "status": status,
                "flow_version": "customer_cleaner:v1",
                "source_path": "s3://b/x",
                "run_metadata": None,
            },
        }
    )


def standard_only(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("webhook-")}


def lume_only(headers: dict[str, str]) -> dict[str, str]:
    return {"X-Lume-Signature-256": headers["X-Lume-Signature-256"]}


# --- verify ---------------------------------------------------------------------------------------


def test_valid_delivery_returns_the_event() -> None:
    body = event_body()
    event = verify(body, sign(body, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert isinstance(event, WebhookEvent)
    assert event.id == "evt_1"
    assert event.data.status is RunStatus.SUCCEEDED


def test_header_names_are_case_insensitive() -> None:
    body = event_body()
    headers = {k.upper(): v for k, v in sign(body, SECRET, timestamp=NOW).items()}
    assert verify(body, headers, SECRET, now=NOW).id == "evt_1"


def test_tampered_body_is_refused() -> None:
    headers = sign(event_body(), SECRET, timestamp=NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(event_body(status="FAILED"), headers, SECRET, now=NOW)


def test_wrong_secret_is_refused() -> None:
    body = event_body()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(body, sign(body, SECRET, timestamp=NOW), OTHER_SECRET, now=NOW)


def test_stale_timestamp_is_refused() -> None:
    body = event_body()
    headers = sign(body, SECRET, timestamp=NOW - 301)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(body, headers, SECRET, now=NOW)


def test_future_timestamp_is_refused() -> None:
    body = event_body()
    headers = sign(body, SECRET, timestamp=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(body, headers, SECRET, now=NOW)


def test_timestamp_within_tolerance_either_way_passes() -> None:
    body = event_body()
    for ts in (NOW - 299, NOW + 299):
        assert verify(body, sign(body, SECRET, timestamp=ts), SECRET, now=NOW).id == "evt_1"


def test_tolerance_is_configurable() -> None:
    body = event_body()
    headers = sign(body, SECRET, timestamp=NOW - 20)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(body, headers, SECRET, now=NOW, tolerance=10)


def test_malformed_timestamp_is_refused() -> None:
    body = event_body()
    headers = {**sign(body, SECRET, timestamp=NOW), "webhook-timestamp": "yesterday"}
    with pytest.raises(WebhookVerificationError, match="malformed webhook-timestamp"):
        verify(body, standard_only(headers), SECRET, now=NOW)


def test_replayed_delivery_is_refused() -> None:
    body = event_body()
    headers = sign(body, SECRET, timestamp=NOW, msg_id="msg_1")
    guard = ReplayGuard()
    verify(body, headers, SECRET, now=NOW, seen=guard)
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify(body, headers, SECRET, now=NOW + 1, seen=guard)


def test_refused_delivery_does_not_poison_the_replay_guard() -> None:
    body = event_body()
    guard = ReplayGuard()
    forged = sign(body, OTHER_SECRET, timestamp=NOW, msg_id="msg_1")
    with pytest.raises(WebhookVerificationError):
        verify(body, forged, SECRET, now=NOW, seen=guard)
    verify(body, sign(body, SECRET, timestamp=NOW, msg_id="msg_1"), SECRET, now=NOW, seen=guard)


def test_rotated_secrets_any_one_verifies() -> None:
    body = event_body()
    headers = sign(body, OTHER_SECRET, timestamp=NOW)
    assert verify(body, headers, [SECRET, OTHER_SECRET], now=NOW).id == "evt_1"
    assert verify(body, lume_only(headers), (OTHER_SECRET, SECRET), now=NOW).id == "evt_1"


def test_several_signatures_one_matching_verifies() -> None:
    body = event_body()
    old = sign(body, OTHER_SECRET, timestamp=NOW, msg_id="msg_1")["webhook-signature"]
    new = sign(body, SECRET, timestamp=NOW, msg_id="msg_1")["webhook-signature"]
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": f"v1a,ignored {old} {new}",
    }
    assert verify(body, headers, SECRET, now=NOW).id == "evt_1"


def test_signature_header_without_v1_entry_is_refused() -> None:
    body = event_body()
    headers = {**sign(body, SECRET, timestamp=NOW), "webhook-signature": "v2,abc"}
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify(body, standard_only(headers), SECRET, now=NOW)


def test_standard_scheme_alone_verifies() -> None:
    body = event_body()
    headers = standard_only(sign(body, SECRET, timestamp=NOW))
    assert verify(body, headers, SECRET, now=NOW).id == "evt_1"


def test_lume_scheme_alone_verifies_with_or_without_prefix() -> None:
    body = event_body()
    headers = lume_only(sign(body, SECRET))
    assert verify(body, headers, SECRET, now=NOW).id == "evt_1"
    bare = headers["X-Lume-Signature-256"].removeprefix("sha256=")
    assert verify(body, {"x-lume-signature-256": bare.upper()}, SECRET, now=NOW).id == "evt_1"


def test_lume_scheme_is_hmac_of_the_body_with_the_secret_bytes() -> None:
    body = event_body()
    digest = hmac.new(b"plain-secret", body, hashlib.sha256).hexdigest()
    headers = {"X-Lume-Signature-256": f"sha256={digest}"}
    assert verify(body, headers, "plain-secret", now=NOW).id == "evt_1"


def test_lume_scheme_with_tampered_body_is_refused() -> None:
    headers = lume_only(sign(event_body(), SECRET))
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(event_body("evt_2"), headers, SECRET)


def test_lume_scheme_replay_is_refused_by_event_id() -> None:
    body = event_body()
    headers = lume_only(sign(body, SECRET))
    guard = ReplayGuard()
    verify(body, headers, SECRET, now=NOW, seen=guard)
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify(body, headers, SECRET, now=NOW, seen=guard)


def test_malformed_lume_signature_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="malformed X-Lume-Signature-256"):
        verify(event_body(), {"X-Lume-Signature-256": "sha256=zz"}, SECRET)


def test_missing_headers_are_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="missing signature headers"):
        verify(event_body(), {"content-type": "application/json"}, SECRET)


def test_partial_standard_headers_name_what_is_missing() -> None:
    body = event_body()
    headers = standard_only(sign(body, SECRET, timestamp=NOW))
    del headers["webhook-timestamp"]
    with pytest.raises(
        WebhookVerificationError, match=r"missing webhook header.*webhook-timestamp"
    ):
        verify(body, headers, SECRET, now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "evt_1"}'])
def test_signed_but_malformed_body_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError, match="malformed webhook body"):
        verify(body, sign(body, SECRET, timestamp=NOW), SECRET, now=NOW)


def test_reasons_never_quote_the_secret() -> None:
    body = event_body()
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, sign(body, OTHER_SECRET, timestamp=NOW), SECRET, now=NOW)
    assert SECRET not in str(caught.value)
    assert SECRET.removeprefix("whsec_") not in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "error"), [("", ValueError), ([], ValueError), ("whsec_***", ValueError)]
)
def test_unusable_secrets_are_programming_errors(secret: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify(event_body(), {}, secret)


# --- agreement with the standardwebhooks package --------------------------------------------------


def test_standardwebhooks_signature_verifies_here() -> None:
    body = event_body()
    now = int(time.time())
    signature = Webhook(SECRET).sign("msg_42", datetime.fromtimestamp(now, tz=UTC), body.decode())
    headers = {
        "webhook-id": "msg_42",
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
    }
    assert verify(body, headers, SECRET, now=now).id == "evt_1"


def test_our_signature_verifies_with_standardwebhooks() -> None:
    body = event_body()
    headers = standard_only(sign(body, SECRET, msg_id="msg_42"))
    assert Webhook(SECRET).verify(body, headers)["id"] == "evt_1"


# --- ReplayGuard ----------------------------------------------------------------------------------


def test_replay_guard_forgets_after_ttl() -> None:
    guard = ReplayGuard(ttl=10)
    assert guard.check_and_add("a", now=100)
    assert not guard.check_and_add("a", now=105)
    assert guard.check_and_add("a", now=111)


def test_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(ttl=1000, max_entries=3)
    for key in "abcd":
        guard.check_and_add(key, now=1)
    assert len(guard) == 3
    assert guard.check_and_add("a", now=2)


def test_replay_guard_admits_each_id_once_across_threads() -> None:
    guard = ReplayGuard()
    admitted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for i in range(200):
            result = guard.check_and_add(f"id{i}", now=1)
            with lock:
                admitted.append(result)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 200


# --- WebhookReceiver ------------------------------------------------------------------------------


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


@pytest.mark.anyio
async def test_receiver_accepts_and_notifies_listeners_once() -> None:
    receiver = WebhookReceiver(SECRET)
    received: list[WebhookEvent] = []
    receiver.add_listener(received.append)
    body = event_body()
    async with receiver.serve() as url:
        assert url.endswith("/lume/webhooks")
        assert await post(url, body, sign(body, SECRET)) == (200, {"status": "accepted"})
        # The sender retries with a new timestamp and signature: 200 again, no second notice.
        assert await post(url, body, sign(body, SECRET)) == (200, {"status": "duplicate"})
    assert [e.id for e in received] == ["evt_1"]


@pytest.mark.anyio
async def test_receiver_refuses_a_bad_signature_with_401() -> None:
    receiver = WebhookReceiver(SECRET)
    received: list[WebhookEvent] = []
    receiver.add_listener(received.append)
    body = event_body()
    async with receiver.serve() as url:
        status, answer = await post(url, body, sign(body, OTHER_SECRET))
    assert status == 401
    assert answer == {"error": "invalid signature"}
    assert received == []


@pytest.mark.anyio
async def test_receiver_refuses_a_signed_non_event_with_400() -> None:
    receiver = WebhookReceiver(SECRET)
    async with receiver.serve() as url:
        status, _ = await post(url, b"[1]", sign(b"[1]", SECRET))
    assert status == 400


@pytest.mark.anyio
async def test_receiver_accepts_the_lume_scheme_alone() -> None:
    receiver = WebhookReceiver([OTHER_SECRET, SECRET])
    body = event_body(created_at=time.time())
    async with receiver.serve() as url:
        assert (await post(url, body, lume_only(sign(body, SECRET))))[0] == 200


@pytest.mark.anyio
async def test_a_failing_listener_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = WebhookReceiver(SECRET)
    received: list[str] = []

    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("listener bug")

    receiver.add_listener(broken)
    receiver.add_listener(lambda e: received.append(e.id))
    body = event_body()
    with caplog.at_level(logging.ERROR, logger="lume_async.webhooks"):
        async with receiver.serve() as url:
            assert (await post(url, body, sign(body, SECRET)))[0] == 200
    assert received == ["evt_1"]
    assert "listener bug" in caplog.text


@pytest.mark.anyio
async def test_unsubscribed_listener_is_not_called() -> None:
    receiver = WebhookReceiver(SECRET)
    received: list[WebhookEvent] = []
    unsubscribe = receiver.add_listener(received.append)
    unsubscribe()
    unsubscribe()
    body = event_body()
    async with receiver.serve() as url:
        await post(url, body, sign(body, SECRET))
    assert received == []


@pytest.mark.anyio
async def test_events_stream_yields_each_new_event() -> None:
    receiver = WebhookReceiver(SECRET)
    async with receiver.serve() as url, receiver.events() as stream:
        for event_id in ("evt_1", "evt_2", "evt_1"):
            body = event_body(event_id)
            await post(url, body, sign(body, SECRET))
        assert (await anext(stream)).id == "evt_1"
        assert (await anext(stream)).id == "evt_2"


@pytest.mark.anyio
async def test_events_stream_drops_the_oldest_when_full() -> None:
    receiver = WebhookReceiver(SECRET)
    async with receiver.serve() as url, receiver.events(max_queue=1) as stream:
        for event_id in ("evt_1", "evt_2"):
            body = event_body(event_id)
            await post(url, body, sign(body, SECRET))
        assert (await anext(stream)).id == "evt_2"


@pytest.mark.anyio
async def test_receiver_app_can_be_mounted_in_a_test_server() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    receiver = WebhookReceiver(SECRET, path="/hooks")
    body = event_body()
    async with TestClient(TestServer(receiver.app)) as client:
        response = await client.post("/hooks", data=body, headers=sign(body, SECRET))
        assert response.status == 200
        assert (await client.get("/hooks")).status == 405
