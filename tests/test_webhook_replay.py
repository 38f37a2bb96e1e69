"""Webhook replay, whatever scheme carries it: every accepted delivery is fresh and unique.

The service signs each delivery twice: Standard Webhooks (signed ``webhook-timestamp``) and
``X-Lume-Signature-256`` (the body alone). A captured delivery stripped of its ``webhook-*``
headers must not be replayable through the body-only scheme: there the signed body's own
``created_at`` is held to the tolerance, and replay protection is keyed on the event id inside
the signed body, so one event is accepted once through any scheme or mix of schemes. Every
combination of scheme x (fresh, stale, future, missing created_at, unparseable created_at,
replayed, tampered) is tried through ``verify`` and through a ``WebhookReceiver`` over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import WebhookVerificationError
from lume_async.models import WebhookEvent
from lume_async.webhooks import ReplayGuard, WebhookReceiver, sign, verify

from ._profiles import examples

SECRET = "whsec_a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TOLERANCE = 300.0
SCHEMES = ("standard", "lume", "both")
CASES = ("fresh", "stale", "future", "no_created_at", "bad_created_at", "replayed", "tampered")
UNPARSEABLE = ["yesterday", "", "2026-13-45T00:00:00Z", 1_767_225_600, None, ["2026-01-01"]]


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def body(
    event_id: str = "evt_1", created_at: float = NOW, *, raw: Any = ..., drop: bool = False
) -> bytes:
    """An event's JSON; ``raw`` is a ``created_at`` value sent as it is, ``drop`` leaves it out."""
    event: dict[str, Any] = {
        "id": event_id,
        "type": "run.succeeded",
        "created_at": iso(created_at) if raw is ... else raw,
        "data": {"run_id": "run_01HY0000000000000000000000", "status": "SUCCEEDED"},
    }
    if drop:
        del event["created_at"]
    return orjson.dumps(event)


def headers(
    data: bytes, scheme: str, signed_at: float, msg_id: str | None = None
) -> dict[str, str]:
    """The headers of ``scheme`` alone (or both), as a sender signs them at ``signed_at``."""
    both = sign(data, SECRET, timestamp=int(signed_at), msg_id=msg_id)
    if scheme == "standard":
        return {k: v for k, v in both.items() if k.startswith("webhook-")}
    if scheme == "lume":
        return {"X-Lume-Signature-256": both["X-Lume-Signature-256"]}
    return both


def delivery(case: str, scheme: str, now: float, offset: float) -> tuple[bytes, dict[str, str]]:
    """One delivery of ``case``; ``offset`` (0..1) says how far inside or past the tolerance."""
    inside = now - offset * TOLERANCE
    if case in ("fresh", "replayed"):
        data = body(created_at=inside)
        return data, headers(data, scheme, inside)
    if case in ("stale", "future"):
        # Both signed times out of the window: the header's and the event's own, by a minute at
        # least (the receiver reads its own clock later, by as long as the test machine stalls).
        sign_at = now - (TOLERANCE + 60 + offset * 86_400) * (1 if case == "stale" else -1)
        data = body(created_at=sign_at)
        return data, headers(data, scheme, sign_at)
    if case == "no_created_at":
        data = body(drop=True)
        return data, headers(data, scheme, inside)
    if case == "bad_created_at":
        data = body(raw=UNPARSEABLE[int(offset * len(UNPARSEABLE))])
        return data, headers(data, scheme, inside)
    assert case == "tampered"
    data = body(created_at=inside)
    return body("evt_2", created_at=inside), headers(data, scheme, inside)


def accepted_once(case: str) -> bool:
    return case in ("fresh", "replayed")


# --- verify() -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=examples(20), deadline=None)
@given(offset=st.floats(0, 0.99))
def test_verify_accepts_only_fresh_authentic_deliveries_once(
    scheme: str, case: str, offset: float
) -> None:
    data, sent = delivery(case, scheme, NOW, offset)
    guard = ReplayGuard()
    if not accepted_once(case):
        with pytest.raises(WebhookVerificationError):
            verify(data, sent, SECRET, now=NOW, tolerance=TOLERANCE, seen=guard)
        assert len(guard) == 0, "a refused delivery must not be remembered"
        return
    assert verify(data, sent, SECRET, now=NOW, tolerance=TOLERANCE, seen=guard).id == "evt_1"
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify(data, sent, SECRET, now=NOW + 1, tolerance=TOLERANCE, seen=guard)


@pytest.mark.parametrize("later", ["standard", "lume", "both"])
@pytest.mark.parametrize("first", ["standard", "lume", "both"])
def test_an_event_accepted_through_one_scheme_is_a_replay_through_any_other(
    first: str, later: str
) -> None:
    guard = ReplayGuard()
    data = body(created_at=NOW - 10)
    verify(data, headers(data, first, NOW - 10, "msg_a"), SECRET, now=NOW, seen=guard)
    # A new delivery id and a fresh signature: only the event id inside the body is the same.
    replay = headers(data, later, NOW, "msg_b")
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify(data, replay, SECRET, now=NOW + 5, seen=guard)


def test_a_delivery_with_both_headers_counts_once() -> None:
    guard = ReplayGuard()
    data = body(created_at=NOW)
    verify(data, headers(data, "both", NOW), SECRET, now=NOW, seen=guard)
    assert len(guard) == 1


@settings(max_examples=examples(30), deadline=None)
@given(days=st.floats(min_value=TOLERANCE / 86_400 + 0.001, max_value=3650))
def test_a_captured_delivery_stripped_of_its_webhook_headers_is_refused_later(days: float) -> None:
    data = body(created_at=NOW)
    captured = headers(data, "both", NOW)
    stripped = {k: v for k, v in captured.items() if not k.startswith("webhook-")}
    with pytest.raises(WebhookVerificationError, match="created_at is too old"):
        verify(data, stripped, SECRET, now=NOW + days * 86_400)


def test_the_body_only_scheme_is_held_to_created_at_in_both_directions() -> None:
    data = body(created_at=NOW)
    sent = headers(data, "lume", NOW)
    verify(data, sent, SECRET, now=NOW + TOLERANCE - 1)
    verify(data, sent, SECRET, now=NOW - TOLERANCE + 1)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(data, sent, SECRET, now=NOW + TOLERANCE + 1)
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify(data, sent, SECRET, now=NOW - TOLERANCE - 1)


def test_the_guard_remembers_an_event_while_any_scheme_could_still_find_it_fresh() -> None:
    guard = ReplayGuard(ttl=1)  # far shorter than the tolerance
    data = body(created_at=NOW)
    verify(data, headers(data, "lume", NOW), SECRET, now=NOW, seen=guard)
    later = NOW + TOLERANCE - 5
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify(data, headers(data, "standard", later), SECRET, now=later, seen=guard)


@pytest.mark.parametrize("tolerance", [0, -1, 0.0, float("nan"), float("inf"), -float("inf")])
def test_tolerance_must_be_a_finite_positive_number(tolerance: float) -> None:
    data = body(created_at=NOW)
    with pytest.raises(ValueError, match="tolerance"):
        verify(data, headers(data, "both", NOW), SECRET, tolerance=tolerance, now=NOW)
    with pytest.raises(ValueError, match="tolerance"):
        WebhookReceiver(SECRET, tolerance=tolerance)


@pytest.mark.parametrize("tolerance", ["300", None, True, [300]])
def test_tolerance_of_another_type_is_a_type_error(tolerance: Any) -> None:
    with pytest.raises(TypeError, match="tolerance"):
        verify(b"{}", {}, SECRET, tolerance=tolerance)


# --- WebhookReceiver over HTTP --------------------------------------------------------------------


async def post(url: str, data: bytes, sent: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=sent) as response,
    ):
        return response.status, await response.json()


def expected_refusal(case: str) -> int:
    # 400: signed, but not an event at all; 401: not authentic, or not fresh.
    return 400 if case in ("no_created_at", "bad_created_at") else 401


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("offset", [0.0, 0.5, 0.9])
async def test_the_receiver_notifies_listeners_of_fresh_authentic_events_once(
    scheme: str, case: str, offset: float
) -> None:
    receiver = WebhookReceiver(SECRET, tolerance=TOLERANCE)
    received: list[WebhookEvent] = []
    receiver.add_listener(received.append)
    data, sent = delivery(case, scheme, time.time(), offset)
    async with receiver.serve() as url:
        status, answer = await post(url, data, sent)
        if accepted_once(case):
            assert (status, answer) == (200, {"status": "accepted"})
            # Replayed (by the sender's retry, or by an attacker): 2xx, listeners not called.
            assert await post(url, data, sent) == (200, {"status": "duplicate"})
        else:
            assert status == expected_refusal(case), answer
    assert [e.id for e in received] == (["evt_1"] if accepted_once(case) else [])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first", "later"), [("both", "lume"), ("lume", "standard"), ("standard", "lume")]
)
async def test_the_receiver_takes_an_event_once_whatever_schemes_carry_it(
    first: str, later: str
) -> None:
    receiver = WebhookReceiver(SECRET)
    received: list[str] = []
    receiver.add_listener(lambda event: received.append(event.id))
    now = time.time()
    data = body(created_at=now - 5)
    async with receiver.serve() as url:
        assert (await post(url, data, headers(data, first, now - 5, "msg_a")))[0] == 200
        assert await post(url, data, headers(data, later, now, "msg_b")) == (
            200,
            {"status": "duplicate"},
        )
    assert received == ["evt_1"]


@pytest.mark.anyio
async def test_the_receiver_refuses_a_stripped_capture_of_a_day_old_delivery() -> None:
    receiver = WebhookReceiver(SECRET)
    called: list[Callable[..., Any]] = []
    receiver.add_listener(called.append)
    day_ago = time.time() - 86_400
    data = body(created_at=day_ago)
    stripped = headers(data, "lume", day_ago)
    async with receiver.serve() as url:
        status, _ = await post(url, data, stripped)
    assert status == 401
    assert called == []
