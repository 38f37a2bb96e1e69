"""Webhook signatures: signing secrets and keys, ``sign`` for tests, ``verify`` for deliveries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets as _secrets
import time
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

import attrs

from .. import _converter
from .._exceptions import ResponseValidationError, WebhookVerificationError
from .._validation import (
    check_delivery,
    check_guard,
    check_msg_id,
    check_now,
    check_secret,
    check_secrets,
    check_sign_timestamp,
    check_tolerance,
    decode_whsec,
    is_utf8,
)
from ..models import WebhookEvent
from ._replay import ReplayGuard

__all__ = [
    "Headers",
    "Key",
    "MalformedEventError",
    "ReplayedDeliveryError",
    "accept",
    "new_secret",
    "sign",
    "signing_keys",
    "verify",
]

_STANDARD_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")
_LUME_HEADER: Final = "x-lume-signature-256"
_SECRET_PREFIX: Final = "whsec_"

# --- keys -----------------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Key:
    """The signing keys of one secret; its repr never shows them (tracebacks hold it)."""

    standard: bytes
    lume: bytes

    def __repr__(self) -> str:
        return "Key(***)"


def _key(secret: str) -> Key:
    """The keys of one checked secret: ``whsec_`` ones decoded for Standard Webhooks."""
    standard = decode_whsec(secret) if secret.startswith(_SECRET_PREFIX) else None
    return Key(standard=standard or secret.encode(), lume=secret.encode())


def signing_keys(secret: str | Sequence[str]) -> tuple[Key, ...]:
    """The keys of one secret, or of several while one is being rotated out."""
    return tuple(_key(s) for s in check_secrets(secret))


def _standard_mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.digest(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)


# --- signing --------------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form: ``whsec_`` and 24 random bytes."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(24)).decode()


def sign(
    body: bytes, secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Headers signing ``body`` in both schemes, as the service sends them (for tests and relays).

    ``msg_id`` defaults to a fresh ``msg_...`` id and ``timestamp`` to now, in Unix seconds.
    """
    body = check_delivery(body, {})
    key = _key(check_secret(secret))
    msg_id = check_msg_id(msg_id) if msg_id is not None else f"msg_{_secrets.token_hex(12)}"
    ts = str(int(time.time()) if timestamp is None else check_sign_timestamp(timestamp))
    signature = base64.b64encode(_standard_mac(key.standard, msg_id, ts, body)).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": f"v1,{signature}",
        "X-Lume-Signature-256": "sha256=" + hmac.new(key.lume, body, hashlib.sha256).hexdigest(),
    }


# --- verification ---------------------------------------------------------------------------------


class Headers(Protocol):
    """A request's headers: a mapping, or what a web framework hands over (werkzeug's
    ``Headers``, ``http.client.HTTPMessage``): anything whose ``items()`` are (name, value)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def _lowered(headers: Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class MalformedEventError(WebhookVerificationError):
    """A delivery signed as it should be whose body is not a webhook event."""


class ReplayedDeliveryError(WebhookVerificationError):
    """A delivery of an event already accepted (through either scheme)."""


def _check_fresh(ts: float, now: float, tolerance: float, what: str) -> None:
    """``ts`` (Unix seconds) within ``tolerance`` of ``now``, either way."""
    if ts < now - tolerance:
        raise WebhookVerificationError(
            f"{what} is too old ({now - ts:.0f} s ago, tolerance {tolerance:g} s)"
        )
    if ts > now + tolerance:
        raise WebhookVerificationError(
            f"{what} is too far in the future ({ts - now:.0f} s ahead, tolerance {tolerance:g} s)"
        )


def _check_standard(
    h: dict[str, str], body: bytes, keys: tuple[Key, ...], tolerance: float, now: float
) -> float:
    """The Standard Webhooks scheme: its signed timestamp, once checked and fresh."""
    msg_id, ts_text, sig_header = (h[name] for name in _STANDARD_HEADERS)
    if not is_utf8(msg_id):  # e.g. raw bytes a server decoded with surrogateescape
        raise WebhookVerificationError("malformed webhook-id header: not UTF-8 text")
    try:
        ts = float(ts_text.strip())
    except ValueError:
        ts = math.nan
    if not math.isfinite(ts):
        raise WebhookVerificationError("malformed webhook-timestamp header: not Unix seconds")
    _check_fresh(ts, now, tolerance, "webhook-timestamp")
    candidates: list[bytes] = []
    for entry in sig_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise WebhookVerificationError("webhook-signature header holds no v1 signature")
    matched = False
    for key in keys:
        expected = _standard_mac(key.standard, msg_id, ts_text, body)
        for candidate in candidates:
            # No early exit: the time taken does not depend on which key or signature matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError(
            "webhook-signature does not match (wrong secret, or the body was altered)"
        )
    return ts


def _check_lume(value: str, body: bytes, keys: tuple[Key, ...]) -> None:
    text = value.strip()
    if text[:7].lower() == "sha256=":
        text = text[7:]
    try:
        candidate = bytes.fromhex(text)
    except ValueError:
        candidate = b""
    if len(candidate) != hashlib.sha256().digest_size:
        raise WebhookVerificationError("malformed X-Lume-Signature-256 header: not a sha256 hex")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(hmac.digest(key.lume, body, hashlib.sha256), candidate)
    if not matched:
        raise WebhookVerificationError(
            "X-Lume-Signature-256 does not match (wrong secret, or the body was altered)"
        )


def _check_signature(
    body: bytes, headers: Headers, keys: tuple[Key, ...], tolerance: float, now: float
) -> float | None:
    """Check either scheme (Standard Webhooks first): its signed timestamp, or None for the
    body-only scheme, whose only signed time is the event's ``created_at``."""
    h = _lowered(headers)
    present = [name for name in _STANDARD_HEADERS if h.get(name)]
    if len(present) == len(_STANDARD_HEADERS):
        return _check_standard(h, body, keys, tolerance, now)
    lume = h.get(_LUME_HEADER)
    if lume:
        _check_lume(lume, body, keys)
        return None
    if present:
        missing = ", ".join(name for name in _STANDARD_HEADERS if name not in present)
        raise WebhookVerificationError(f"missing webhook header(s): {missing}")
    raise WebhookVerificationError(
        "missing signature headers: expected webhook-id, webhook-timestamp and "
        "webhook-signature, or X-Lume-Signature-256"
    )


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        return _converter.structure(_converter.loads(body), WebhookEvent, what="webhook event")
    except ResponseValidationError as exc:
        raise MalformedEventError(f"malformed webhook body: {exc}") from exc


def accept(
    body: bytes,
    headers: Headers,
    keys: tuple[Key, ...],
    *,
    tolerance: float,
    now: float,
    seen: ReplayGuard | None,
) -> WebhookEvent:
    """A delivery's event, if it is authentic, fresh and (with ``seen``) new.

    Fresh: the scheme's signed time is within ``tolerance`` of ``now``: the webhook-timestamp
    header, or for the body-only scheme the event's own ``created_at``. New: no delivery of the
    same event id was accepted before, through either scheme; the guard remembers the id at least
    as long as either scheme could still find the event fresh.
    """
    signed_at = _check_signature(body, headers, keys, tolerance, now)
    event = _parse_event(body)
    if not event.id:
        raise MalformedEventError("malformed webhook body: the event id is empty")
    created = event.created_at.timestamp()
    if signed_at is None:
        _check_fresh(created, now, tolerance, "the event's created_at")
    if seen is not None:
        fresh_until = max(created, created if signed_at is None else signed_at) + tolerance
        if not seen.check_and_add(event.id, now=now, keep_until=fresh_until):
            raise ReplayedDeliveryError(
                f"replayed delivery: event {event.id[:80]!r} was already accepted"
            )
    return event


def verify(
    body: bytes,
    headers: Headers,
    secret: str | Sequence[str],
    *,
    tolerance: float = 300,
    now: float | None = None,
    seen: ReplayGuard | None = None,
) -> WebhookEvent:
    """Check a delivery's signature and freshness and return its event, or raise
    ``WebhookVerificationError``.

    ``body`` must be the raw bytes as received; ``headers`` a mapping, or a web framework's
    headers object (anything whose ``items()`` are name, value pairs). Header names are matched
    case-insensitively.
    A delivery is fresh when its signed time is within ``tolerance`` seconds of ``now`` (the
    current time unless given): the ``webhook-timestamp`` header, or for a delivery signed with
    ``X-Lume-Signature-256`` alone, the event's own ``created_at``. With ``seen``, a delivery of
    an event whose id was already accepted, through either scheme, is refused as a replay.
    """
    keys = signing_keys(secret)
    seconds = check_tolerance(tolerance)
    data = check_delivery(body, headers)
    at = check_now(now)
    check_guard(seen)
    return accept(
        data, headers, keys, tolerance=seconds, now=time.time() if at is None else at, seen=seen
    )
