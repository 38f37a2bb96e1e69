"""Hostile inputs to webhook verification, replay protection, the receiver and the push path.

Signature headers and timestamps at their edges, bodies that are not events, replays at the
exact edge of the tolerance, the receiver under concurrent and malformed deliveries, event
streams closed under their reader, listeners that cannot be called, and completion events that
name runs nobody waits for.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import io
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lume_async._batch_get import RunsAnswer
from lume_async._converter import run_from_obj
from lume_async._exceptions import RunTimeoutError, WebhookVerificationError
from lume_async._runs_core import RunCell
from lume_async._waiting import Waiting
from lume_async.models import WebhookEvent
from lume_async.testing import VirtualClock
from lume_async.webhooks import ReplayGuard, WebhookReceiver, sign, verify
from lume_async.webhooks._signatures import MalformedEventError, ReplayedDeliveryError

from ..core._scripted import run_json

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()
KEY = b"k" * 24
NOW = 1_714_557_600


def event_obj(
    event_id: str = "evt_1",
    status: str = "SUCCEEDED",
    created_at: float = NOW,
    run_id: str = "run_01",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": f"run.{status.lower()}",
        "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(),
        "data": {"run_id": run_id, "status": status, "flow_version": "customer_cleaner:v1"},
    }


def event_body(**kw: Any) -> bytes:
    return orjson.dumps(event_obj(**kw))


def standard(body: bytes, ts_text: str, msg_id: str = "msg_1", key: bytes = KEY) -> dict[str, str]:
    """Standard Webhooks headers signing exactly ``ts_text`` as the timestamp."""
    mac = hmac.digest(key, f"{msg_id}.{ts_text}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts_text,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def lume_only(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Lume-Signature-256": sign(body, secret)["X-Lume-Signature-256"]}


# --- signature headers ------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_signature_entries_split_by_tabs_and_runs_of_spaces_with_other_versions() -> None:
    body = event_body()
    good = standard(body, str(NOW))
    sig = good["webhook-signature"]
    good["webhook-signature"] = f"v2,AAAA \t v1a,{sig[3:]}   v1,!!notbase64!!\t{sig}  "
    assert verify(body, good, SECRET, now=NOW).id == "evt_1"
    # Only a v1 entry counts: the right MAC under another version tag is refused.
    good["webhook-signature"] = f"v1a,{sig[3:]} V1,{sig[3:]} v2,{sig[3:]}"
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify(body, good, SECRET, now=NOW)


@pytest.mark.timeout(10)
def test_a_truncated_or_empty_v1_signature_never_matches() -> None:
    body = event_body()
    headers = standard(body, str(NOW))
    sig = headers["webhook-signature"][3:]
    for bad in ("v1,", "v1, " + sig, "v1,=", "v1," + sig[:-4], "v1," + sig.rstrip("=")):
        headers["webhook-signature"] = bad
        with pytest.raises(WebhookVerificationError):
            verify(body, headers, SECRET, now=NOW)


@pytest.mark.timeout(10)
def test_a_very_long_signature_header_is_refused_quickly() -> None:
    body = event_body()
    headers = standard(body, str(NOW))
    junk = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = " ".join([junk] * 20_000)
    started = time.perf_counter()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(body, headers, SECRET, now=NOW)
    assert time.perf_counter() - started < 2


@pytest.mark.timeout(10)
def test_lume_header_uppercase_hex_and_prefix_verify_but_not_hex_or_wrong_length() -> None:
    body = event_body(created_at=NOW)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for ok in (digest.upper(), "SHA256=" + digest, "  sha256=" + digest.upper() + " "):
        assert verify(body, {"x-lume-signature-256": ok}, SECRET, now=NOW).id == "evt_1"
    for bad in (
        "sha256=" + digest[:-2],  # 31 bytes
        "sha256=" + digest + "00",  # 33 bytes
        "sha256=" + digest[:-1] + "g",  # not hex
        "sha1=" + digest,
        "sha256=" + "\u0660" * 64,  # Arabic-Indic zeros are not hex
        "sha256=" + digest * 1000,
    ):
        with pytest.raises(WebhookVerificationError):
            verify(body, {"x-lume-signature-256": bad}, SECRET, now=NOW)


@pytest.mark.timeout(10)
def test_standard_headers_with_an_empty_value_do_not_count_as_standard() -> None:
    body = event_body()
    headers = standard(body, str(NOW))
    headers["webhook-id"] = ""
    with pytest.raises(WebhookVerificationError, match=r"missing webhook header.*webhook-id"):
        verify(body, headers, SECRET, now=NOW)


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "ts_text",
    ["nan", "inf", "-inf", "", "   ", "0x6630f0a0", "1714557600s", "1714557600 1", "1e400", "NaN"],
)
def test_a_timestamp_that_is_not_finite_seconds_is_refused(ts_text: str) -> None:
    body = event_body()
    with pytest.raises(WebhookVerificationError):
        verify(body, standard(body, ts_text), SECRET, now=NOW)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("ts_text", ["-1714557600", "0", "-0", "1e308", str(10**30), "9" * 400])
def test_negative_zero_and_huge_timestamps_are_refused_as_not_fresh(ts_text: str) -> None:
    body = event_body()
    with pytest.raises(
        WebhookVerificationError, match=r"too (old|far in the future)|not Unix seconds"
    ):
        verify(body, standard(body, ts_text), SECRET, now=NOW)


@pytest.mark.timeout(10)
def test_the_tolerance_edges_are_exact_with_fractional_now() -> None:
    body = event_body()
    headers = standard(body, str(NOW))
    assert verify(body, headers, SECRET, now=NOW + 300, tolerance=300)
    assert verify(body, headers, SECRET, now=NOW - 300, tolerance=300)
    for now in (NOW + 300.001, NOW - 300.001):
        with pytest.raises(WebhookVerificationError):
            verify(body, headers, SECRET, now=now, tolerance=300)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "spelled",
    [
        "\u0661\u0667\u0661\u0664\u0665\u0665\u0667\u0666\u0660\u0660",
        "+1714557600",
        "\uff11\uff17\uff11\uff14\uff15\uff15\uff17\uff16\uff10\uff10",
        "1_714_557_600",
        "1714557600.0",
        "01714557600",
    ],
)
def test_respelling_the_signed_timestamp_breaks_the_signature(spelled: str) -> None:
    """Python reads these as the same number; the MAC covers the header text as sent, so an
    attacker cannot move a captured delivery's time by respelling it."""
    body = event_body()
    headers = standard(body, str(NOW))
    headers["webhook-timestamp"] = spelled
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(body, headers, SECRET, now=NOW)


# --- bodies -----------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{}",
        '{"id":"evt_1"}'.encode("utf-16"),
        b"[" * 5000 + b"]" * 5000,
        b'{"id": "evt_1", "type": "run.succeeded", "created_at": "not a time", "data": {}}',
        b"",
        b"null",
        orjson.dumps({**event_obj(), "data": {"run_id": 7, "status": "SUCCEEDED"}}),
        orjson.dumps({**event_obj(), "data": {"run_id": "r", "status": None}}),
    ],
)
def test_signed_bodies_that_are_not_events_raise_malformed_event_error(body: bytes) -> None:
    for headers in (standard(body, str(NOW)), lume_only(body)):
        with pytest.raises(MalformedEventError):
            verify(body, headers, SECRET, now=NOW, seen=ReplayGuard())


@pytest.mark.timeout(10)
def test_a_signed_event_with_an_empty_id_is_a_verification_error() -> None:
    body = event_body(event_id="")
    with pytest.raises(WebhookVerificationError):
        verify(body, standard(body, str(NOW)), SECRET, now=NOW, seen=ReplayGuard())


@pytest.mark.timeout(20)
def test_a_large_signed_body_verifies_in_reasonable_time() -> None:
    obj = event_obj()
    obj["data"]["run_metadata"] = {"blob": "x" * 8_000_000}
    body = orjson.dumps(obj)
    started = time.perf_counter()
    assert verify(body, standard(body, str(NOW)), SECRET, now=NOW).id == "evt_1"
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(body + b" ", standard(body, str(NOW)), SECRET, now=NOW)
    assert time.perf_counter() - started < 5


@pytest.mark.timeout(10)
def test_body_is_checked_as_given_bytes_bytearray_or_memoryview() -> None:
    body = event_body()
    headers = standard(body, str(NOW))
    for form in (bytearray(body), memoryview(body)):
        assert verify(form, headers, SECRET, now=NOW).id == "evt_1"
    with pytest.raises(TypeError):
        verify(body.decode(), headers, SECRET, now=NOW)  # type: ignore[arg-type]


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_whsec_secret_is_not_also_accepted_as_its_raw_text_for_standard_webhooks() -> None:
    body = event_body()
    raw_keyed = standard(body, str(NOW), key=SECRET.encode())
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(body, raw_keyed, SECRET, now=NOW)
    # A plain secret is its UTF-8 bytes in both schemes.
    plain = "pläin sécret"
    headers = standard(body, str(NOW), key=plain.encode())
    assert verify(body, headers, plain, now=NOW).id == "evt_1"
    assert verify(body, lume_only(body, plain), plain, now=NOW).id == "evt_1"


@pytest.mark.timeout(10)
def test_rotation_any_secret_verifies_either_scheme_and_bad_entries_are_refused() -> None:
    body = event_body()
    for secrets in ([OTHER, SECRET], (SECRET, OTHER), [OTHER, OTHER, SECRET]):
        assert verify(body, standard(body, str(NOW)), secrets, now=NOW).id == "evt_1"
        assert verify(body, lume_only(body), secrets, now=NOW).id == "evt_1"
    with pytest.raises(WebhookVerificationError):
        verify(body, standard(body, str(NOW)), [OTHER], now=NOW)
    for bad in ([SECRET, ""], [SECRET, b"raw"], b"raw", [SECRET, None], "whsec_", "whsec_!!"):
        with pytest.raises((TypeError, ValueError)):
            verify(body, standard(body, str(NOW)), bad, now=NOW)  # type: ignore[arg-type]


# --- replay protection ------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("ttl", "tolerance"), [(1.0, 300.0), (600.0, 600.0)])
def test_a_replay_at_exactly_the_tolerance_edge_is_refused(ttl: float, tolerance: float) -> None:
    guard = ReplayGuard(ttl=ttl)
    body = event_body()
    headers = standard(body, str(NOW))
    verify(body, headers, SECRET, now=NOW, tolerance=tolerance, seen=guard)
    with pytest.raises(ReplayedDeliveryError):
        verify(body, headers, SECRET, now=NOW + tolerance, tolerance=tolerance, seen=guard)


@pytest.mark.timeout(10)
def test_a_replay_just_inside_the_tolerance_is_refused_with_a_tiny_ttl() -> None:
    guard = ReplayGuard(ttl=0.001)
    body = event_body(created_at=NOW + 200)  # a created_at ahead of the header's time
    headers = standard(body, str(NOW))
    verify(body, headers, SECRET, now=NOW, seen=guard)
    with pytest.raises(ReplayedDeliveryError):
        verify(body, headers, SECRET, now=NOW + 299.9, seen=guard)
    with pytest.raises(ReplayedDeliveryError):  # and through the body-only scheme
        verify(body, lume_only(body), SECRET, now=NOW + 499.9, seen=guard)


@pytest.mark.timeout(10)
def test_ids_differing_by_case_or_normalisation_are_distinct_events() -> None:
    guard = ReplayGuard()
    for event_id in ("evt_é", "evt_e\u0301", "EVT_É", "evt_é "):
        body = event_body(event_id=event_id)
        assert verify(body, standard(body, str(NOW)), SECRET, now=NOW, seen=guard).id == event_id
    assert len(guard) == 4


@pytest.mark.timeout(10)
def test_the_guard_stays_bounded_under_a_flood_and_keeps_the_newest() -> None:
    guard = ReplayGuard(ttl=10**6, max_entries=500)
    for n in range(20_000):
        assert guard.check_and_add(f"evt_{n}", now=NOW, keep_until=NOW + 10**7)
    assert len(guard) == 500
    assert not guard.check_and_add("evt_19999", now=NOW)
    assert guard.check_and_add("evt_0", now=NOW)  # evicted: bounded memory is the price


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_the_same_delivery_verified_by_many_threads_at_once_passes_once() -> None:
    guard = ReplayGuard()
    body = event_body()
    headers = standard(body, str(NOW))

    def one() -> bool:
        try:
            verify(body, headers, SECRET, now=NOW, seen=guard)
        except ReplayedDeliveryError:
            return False
        return True

    results = await asyncio.gather(*(asyncio.to_thread(one) for _ in range(16)))
    assert sorted(results) == [False] * 15 + [True]


# --- the receiver -----------------------------------------------------------------------------


async def _client(receiver: WebhookReceiver) -> TestClient:
    client = TestClient(TestServer(receiver.app))
    await client.start_server()
    return client


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_receiver_concurrent_deliveries_of_one_event_notify_once() -> None:
    receiver = WebhookReceiver(SECRET)
    seen: list[str] = []
    receiver.add_listener(lambda e: seen.append(e.id))
    body = event_body(created_at=time.time())
    client = await _client(receiver)
    try:

        async def post() -> tuple[int, Any]:
            async with client.post(receiver.path, data=body, headers=sign(body, SECRET)) as r:
                return r.status, await r.json()

        answers = await asyncio.gather(*(post() for _ in range(20)))
    finally:
        await client.close()
    assert all(status == 200 for status, _ in answers)
    assert sorted(a["status"] for _, a in answers) == ["accepted"] + ["duplicate"] * 19
    assert seen == ["evt_1"]


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_receiver_wrong_methods_content_types_and_oversized_bodies() -> None:
    receiver = WebhookReceiver(SECRET)
    seen: list[WebhookEvent] = []
    receiver.add_listener(seen.append)
    client = await _client(receiver)
    try:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            async with client.request(method, receiver.path) as r:
                assert r.status == 405
        # The signature is over the bytes: the content type does not matter.
        body = event_body(created_at=time.time())
        headers = {**sign(body, SECRET), "Content-Type": "application/x-www-form-urlencoded"}
        async with client.post(receiver.path, data=body, headers=headers) as r:
            assert r.status == 200
        # A body past aiohttp's limit is refused before anything is verified.
        obj = event_obj(event_id="evt_big", created_at=time.time())
        obj["data"]["run_metadata"] = {"blob": "x" * 2_000_000}
        big = orjson.dumps(obj)
        async with client.post(receiver.path, data=io.BytesIO(big), headers=sign(big, SECRET)) as r:
            assert r.status == 413
        # No signature at all, and a signed non-UTF-8 body.
        async with client.post(receiver.path, data=body) as r:
            assert r.status == 401
        junk = b"\xff\xfe\x00"
        async with client.post(receiver.path, data=junk, headers=sign(junk, SECRET)) as r:
            assert r.status == 400
    finally:
        await client.close()
    assert [e.id for e in seen] == ["evt_1"]


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_receiver_answers_400_to_a_signed_event_with_an_empty_id() -> None:
    receiver = WebhookReceiver(SECRET)
    client = await _client(receiver)
    body = event_body(event_id="", created_at=time.time())
    try:
        async with client.post(receiver.path, data=body, headers=sign(body, SECRET)) as r:
            status = r.status
    finally:
        await client.close()
    assert status == 400


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_receiver_slow_client_does_not_block_other_deliveries() -> None:
    receiver = WebhookReceiver(SECRET)
    seen: list[str] = []
    receiver.add_listener(lambda e: seen.append(e.id))
    client = await _client(receiver)
    slow_started = asyncio.Event()
    release = asyncio.Event()
    slow_body = event_body(event_id="evt_slow", created_at=time.time())

    async def trickle() -> Any:
        yield slow_body[:10]
        slow_started.set()
        await release.wait()
        yield slow_body[10:]

    try:
        slow = asyncio.ensure_future(
            client.post(receiver.path, data=trickle(), headers=sign(slow_body, SECRET))
        )
        await slow_started.wait()
        body = event_body(event_id="evt_fast", created_at=time.time())
        async with client.post(receiver.path, data=body, headers=sign(body, SECRET)) as r:
            assert r.status == 200
        assert seen == ["evt_fast"]
        release.set()
        response = await slow
        assert response.status == 200
        response.release()
    finally:
        await client.close()
    assert seen == ["evt_fast", "evt_slow"]


@pytest.mark.anyio
@pytest.mark.timeout(10)
async def test_a_closed_event_stream_ends_its_iteration() -> None:
    receiver = WebhookReceiver(SECRET)
    stream = receiver.events()

    async def consume() -> list[str]:
        return [event.id async for event in stream]

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    await stream.aclose()
    assert await asyncio.wait_for(task, 1.0) == []


@pytest.mark.timeout(10)
def test_an_async_listener_is_refused_where_it_would_lose_every_event() -> None:
    """Called and never awaited, an ``async def`` listener would drop each event, which the
    receiver has already recorded as delivered (so the sender's retry is a "duplicate")."""
    receiver = WebhookReceiver(SECRET)

    async def listener(event: WebhookEvent) -> None:  # pragma: no cover - never called
        del event

    class Handler:
        async def __call__(self, event: WebhookEvent) -> None:  # pragma: no cover
            del event

    for callback in (listener, functools.partial(listener), Handler()):
        with pytest.raises(TypeError, match="plain function"):
            receiver.add_listener(callback)  # type: ignore[arg-type]
    receiver.add_listener(lambda event: None)  # a plain one still is fine


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "call",
    [
        lambda: verify(b"{}", {}, SECRET, now=10**400),
        lambda: verify(b"{}", {}, SECRET, tolerance=10**400),
        lambda: sign(b"{}", SECRET, timestamp=10**400),
        lambda: ReplayGuard(ttl=10**400),
        lambda: WebhookReceiver(SECRET, dedupe_ttl=10**400),
    ],
    ids=["verify-now", "verify-tolerance", "sign-timestamp", "guard-ttl", "receiver-ttl"],
)
def test_huge_int_arguments_are_value_errors(call: Any) -> None:
    with pytest.raises(ValueError, match="a float can hold"):
        call()


# --- the push path into the shared poller -----------------------------------------------------


class Service:
    """An in-memory batch-get: run statuses by id; records each request."""

    def __init__(self, clock: VirtualClock) -> None:
        self.status: dict[str, str] = {}
        self.calls: list[list[str]] = []
        self.waiting = Waiting(self.fetch, clock=clock, max_interval=1000)
        self.waiting.enable_push()
        self.waiting.safety_net_interval = 1000

    async def fetch(self, ids: list[str], known: object = None) -> RunsAnswer:
        self.calls.append(list(ids))
        return RunsAnswer({i: run_json(i, self.status[i]) for i in ids if i in self.status})

    def cell(self, n: int, status: str = "RUNNING") -> RunCell:
        run_id = f"run_{n:026d}"
        self.status[run_id] = status
        return RunCell(run_from_obj(run_json(run_id, "PENDING")))


def pushed(run_id: str, status: str = "SUCCEEDED") -> WebhookEvent:
    body = event_body(run_id=run_id, status=status)
    return verify(body, standard(body, str(NOW)), SECRET, now=NOW)


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_events_for_unwatched_malformed_or_unfinished_runs_neither_end_nor_fail_a_wait(
    clock: VirtualClock,
) -> None:
    service = Service(clock)
    cell = service.cell(1)
    other = service.cell(2)
    run_id = cell.data.id
    wait = asyncio.ensure_future(service.waiting.wait(cell, cell, timeout=None, poll_interval=500))
    await clock.sleep(1)  # the first sweep
    before = len(service.calls)
    for event in (
        pushed("run_nobody_waits"),
        pushed(""),
        pushed("../../etc/passwd"),
        pushed("x" * 10_000),
        pushed(other.data.id),
        pushed(run_id, status="RUNNING"),  # not terminal: not a completion
        pushed(run_id.upper()),
    ):
        service.waiting.on_event(event)
    await clock.sleep(1)
    assert not wait.done()
    assert len(service.calls) == before  # none of those made a request
    # A terminal event for the watched run while the service still says RUNNING: fetched once,
    # and the wait goes on.
    service.waiting.on_event(pushed(run_id))
    await clock.sleep(1)
    assert service.calls[before:] == [[run_id]]
    assert not wait.done()
    # The run really ends, and its event ends the wait at once, long before any sweep.
    service.status[run_id] = "FAILED"
    service.waiting.on_event(pushed(run_id, status="FAILED"))
    await clock.sleep(1)
    assert wait.done()
    await wait
    assert cell.data.status == "FAILED"


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_a_flood_of_events_for_unwatched_runs_stays_bounded_and_cheap(
    clock: VirtualClock,
) -> None:
    service = Service(clock)
    cell = service.cell(1)
    wait = asyncio.ensure_future(service.waiting.wait(cell, cell, timeout=50, poll_interval=500))
    await clock.sleep(1)
    event = pushed("run_x")
    for n in range(50_000):
        service.waiting.on_event(attr_evolve_run(event, f"run_flood_{n}"))
    assert len(service.waiting._watches._recent) <= 10_000
    with pytest.raises(RunTimeoutError):
        await wait
    assert len(service.calls) <= 2


def attr_evolve_run(event: WebhookEvent, run_id: str) -> WebhookEvent:
    import attrs

    return attrs.evolve(event, data=attrs.evolve(event.data, run_id=run_id))


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_an_event_from_another_thread_reaches_the_waiters_loop(clock: VirtualClock) -> None:
    service = Service(clock)
    cell = service.cell(1)
    wait = asyncio.ensure_future(service.waiting.wait(cell, cell, timeout=None, poll_interval=500))
    await clock.sleep(1)  # the first sweep: still RUNNING
    assert not wait.done()
    service.status[cell.data.id] = "SUCCEEDED"
    await asyncio.to_thread(service.waiting.on_event, pushed(cell.data.id))
    await clock.sleep(1)
    assert wait.done()
    await wait
