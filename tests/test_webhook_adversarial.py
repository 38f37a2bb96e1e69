"""Webhook deliveries from outside the happy path: header bytes a server could not decode, the
header objects other web frameworks hand over, secrets that are not text, a signed time of 0,
an event stream closed while full, and a receiver judging freshness on the emulator's clock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import io
import threading
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lume_async import AsyncLume
from lume_async._exceptions import WebhookVerificationError
from lume_async.models import WebhookEvent
from lume_async.testing import Emulator, VirtualClock
from lume_async.webhooks import ReplayGuard, WebhookReceiver, new_secret, sign, verify
from lume_async.webhooks._signatures import ReplayedDeliveryError

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
KEY = b"k" * 24
NOW = 1_714_557_600
# Seconds the tests allow in real time for what takes no virtual time.
REAL = 30


def event_body(event_id: str = "evt_1", created_at: float = NOW) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": "run.succeeded",
            "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(),
            "data": {"run_id": "run_01", "status": "SUCCEEDED"},
        }
    )


def standard(body: bytes, ts_text: str, msg_id: str = "msg_1") -> dict[str, str]:
    """Standard Webhooks headers signing exactly ``msg_id`` and ``ts_text``."""
    mac = hmac.digest(KEY, f"{msg_id}.{ts_text}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts_text,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


# --- header bytes that are not UTF-8 ----------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_webhook_id_that_is_not_utf8_text_is_a_verification_error() -> None:
    # What aiohttp (and other servers) make of the raw bytes b"msg_\xff": surrogateescape.
    body = event_body()
    headers = {**standard(body, str(NOW)), "webhook-id": "msg_\udcff"}
    with pytest.raises(WebhookVerificationError, match="webhook-id"):
        verify(body, headers, SECRET, now=NOW)


async def post_raw(url: str, head: bytes, body: bytes) -> bytes:
    """POST ``body`` to a served receiver with headers as raw bytes; the answer's status."""
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % path.encode()
            + b"Content-Length: %d\r\n" % len(body)
            + head
            + b"\r\n"
            + body
        )
        return (await reader.readline()).split()[1]
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_the_receiver_answers_401_to_a_webhook_id_that_is_not_utf8() -> None:
    receiver = WebhookReceiver(SECRET)
    seen: list[WebhookEvent] = []
    receiver.add_listener(seen.append)
    body = event_body(created_at=int(datetime.now(UTC).timestamp()))
    signed = {k: v for k, v in sign(body, SECRET).items() if k != "webhook-id"}
    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in signed.items())
    with anyio.fail_after(REAL):
        async with receiver.serve() as url:
            status = await post_raw(url, head + b"webhook-id: msg_\xff\r\n", body)
    assert status == b"401"
    assert seen == []


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_the_receiver_answers_400_to_a_body_its_content_encoding_cannot_decode() -> None:
    receiver = WebhookReceiver(SECRET)
    body = b"not gzip at all"
    head = b"Content-Encoding: gzip\r\n" + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in sign(body, SECRET).items()
    )
    with anyio.fail_after(REAL):
        async with receiver.serve() as url:
            assert await post_raw(url, head, body) == b"400"


# --- headers as web frameworks hold them --------------------------------------------------------


@pytest.mark.timeout(10)
def test_verify_takes_the_headers_of_http_client_and_the_standard_library_servers() -> None:
    body = event_body()
    raw = "".join(f"{k}: {v}\r\n" for k, v in sign(body, SECRET, timestamp=NOW).items())
    message = http.client.parse_headers(io.BytesIO(raw.encode() + b"\r\n"))
    assert verify(body, message, SECRET, now=NOW).id == "evt_1"


@pytest.mark.timeout(10)
def test_verify_takes_werkzeug_headers_as_flask_hands_them_over() -> None:
    datastructures = pytest.importorskip("werkzeug.datastructures")
    body = event_body()
    headers = datastructures.Headers(list(sign(body, SECRET, timestamp=NOW).items()))
    assert verify(body, headers, SECRET, now=NOW).id == "evt_1"


@pytest.mark.timeout(10)
def test_headers_whose_items_are_not_name_value_pairs_are_a_type_error() -> None:
    class Odd:
        def items(self) -> list[Any]:
            return ["webhook-id"]

    with pytest.raises(TypeError, match="headers"):
        verify(event_body(), Odd(), SECRET, now=NOW)  # type: ignore[arg-type]


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("secret", ["abc\ud800def", "whsec_\udcff" + "A" * 16])
def test_a_secret_utf8_cannot_encode_is_a_value_error_that_does_not_quote_it(secret: str) -> None:
    for make in (lambda: WebhookReceiver(secret), lambda: verify(b"{}", {}, secret)):
        with pytest.raises(ValueError, match="secret") as caught:
            make()
        assert type(caught.value) is ValueError
        assert "\ud800" not in str(caught.value) and "\udcff" not in str(caught.value)


# --- replays ------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_replay_is_refused_while_a_delivery_signed_at_time_zero_is_fresh() -> None:
    # Signed at 0, created 250 s before: the delivery is fresh until 300, and so is its replay.
    guard = ReplayGuard(ttl=0.001)
    body = event_body(event_id="evt_zero", created_at=-250)
    headers = standard(body, "0")
    assert verify(body, headers, SECRET, now=10, seen=guard).id == "evt_zero"
    with pytest.raises(ReplayedDeliveryError):
        verify(body, headers, SECRET, now=200, seen=guard)


# --- event streams ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_closing_a_full_event_stream_keeps_every_event_received_before() -> None:
    receiver = WebhookReceiver(SECRET)
    stream = receiver.events(max_queue=2)
    async with TestClient(TestServer(receiver.app)) as http:
        for event_id in ("evt_a", "evt_b"):
            body = event_body(event_id, created_at=datetime.now(UTC).timestamp())
            answer = await http.post(receiver.path, data=body, headers=sign(body, SECRET))
            assert answer.status == 200
    await stream.aclose()
    with anyio.fail_after(5):
        assert [e.id async for e in stream] == ["evt_a", "evt_b"]


def _serve_and_deliver(receiver: WebhookReceiver, bodies: list[bytes]) -> None:
    """On a loop of its own (this thread's): serve ``receiver`` and post it ``bodies``, signed."""

    async def main() -> None:
        async with receiver.serve() as url, aiohttp.ClientSession() as http:
            for body in bodies:
                async with http.post(url, data=body, headers=sign(body, SECRET)) as answer:
                    assert answer.status == 200

    asyncio.run(main())


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_an_event_stream_read_on_another_loop_than_the_receivers_wakes_its_reader() -> None:
    # In debug mode the reader's loop refuses to be touched from another thread (as it must not
    # be: nothing would wake it), so only a thread-safe hand-over brings the event.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(True)
    receiver = WebhookReceiver(SECRET)
    body = event_body("evt_other_loop", created_at=datetime.now(UTC).timestamp())
    try:
        async with receiver.events() as events:
            sender = threading.Thread(target=_serve_and_deliver, args=(receiver, [body]))
            sender.start()
            try:
                with anyio.fail_after(10):
                    event = await anext(events)
            finally:
                sender.join(REAL)
    finally:
        loop.set_debug(debug)
    assert event.id == "evt_other_loop"


# --- the receiver on the emulator's clock -----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_a_receiver_on_the_emulators_virtual_clock_accepts_its_deliveries() -> None:
    # An hour of virtual time passes before the run ends: the emulator signs that time, which a
    # receiver reading the real clock would find an hour in the future, and refuse.
    clock = VirtualClock()
    secret = new_secret()
    receiver = WebhookReceiver(secret, clock=clock)
    with anyio.fail_after(REAL):
        async with (
            Emulator(clock=clock) as emu,
            receiver.serve() as url,
            AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
            receiver.events() as events,
        ):
            await lume.webhook_endpoints.create(url, secret=secret)
            run = await lume.run("customer_cleaner:v1", "synthetic://hour?duration=3600")
            event = await anext(events)
            assert event.data.run_id == run.id


@pytest.mark.timeout(10)
def test_a_receiver_refuses_a_clock_that_is_not_one() -> None:
    with pytest.raises(TypeError, match="clock"):
        WebhookReceiver(SECRET, clock=object())  # type: ignore[arg-type]


# --- the emulator's deliveries --------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(REAL)
async def test_a_2xx_answer_whose_body_never_ends_is_a_delivery_and_is_not_sent_again() -> None:
    posts: list[bytes] = []
    hung_up = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        posts.append(await request.read())
        answer = web.StreamResponse(status=200)
        await answer.prepare(request)
        try:
            while True:
                await answer.write(b"x" * 65536)
        except (ConnectionError, OSError):
            return answer
        finally:  # the sender hung up (the handler is failed or cancelled) once it had the status
            hung_up.set()

    app = web.Application()
    app.router.add_post("/hook", endless)
    with anyio.fail_after(REAL):
        async with (
            TestServer(app) as server,
            Emulator(time_scale=100, webhook_retry_base=0.01) as emu,
            AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume,
        ):
            await lume.webhook_endpoints.create(str(server.make_url("/hook")))
            await lume.run("customer_cleaner:v1", "synthetic://endless?duration=1")
            # Counted as the sender lets the answer go, before this side sees the connection end.
            await hung_up.wait()
            assert emu.stats()["webhook_deliveries"] == {"attempted": 1, "succeeded": 1}
    assert len(posts) == 1
