"""Verify Lume's webhook deliveries, and receive them with a small aiohttp app.

The service signs every delivery twice; ``verify`` accepts either scheme:

* Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64>``,
  the HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``. The header may carry several space-separated
  signatures (during key rotation); one match is enough. The timestamp must be within
  ``tolerance`` seconds of now, in either direction, which bounds how long a captured delivery
  can be replayed; a ``ReplayGuard`` closes that window too.
* ``X-Lume-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the body alone (bare hex accepted).
  It carries no timestamp, so only the Standard Webhooks scheme protects against replays.

Keys: a secret of the form ``whsec_<base64>`` is used, as the Standard Webhooks specification
says, as the base64-decoded bytes for that scheme; any other secret is used as its UTF-8 bytes.
The ``X-Lume-Signature-256`` key is always the secret's UTF-8 bytes. Several secrets may be
given while one is being rotated out: any of them verifies.

Every failure raises ``WebhookVerificationError`` with the reason; reasons never quote a secret.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import math
import secrets as _secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Final

import attrs
from aiohttp import web

from . import _converter
from ._exceptions import ResponseValidationError, WebhookVerificationError
from .models import WebhookEvent

__all__ = [
    "ReplayGuard",
    "WebhookEvent",
    "WebhookEventStream",
    "WebhookReceiver",
    "WebhookVerificationError",
    "new_secret",
    "sign",
    "verify",
]

logger = logging.getLogger("lume_async.webhooks")

_STANDARD_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")
_LUME_HEADER: Final = "x-lume-signature-256"
_SECRET_PREFIX: Final = "whsec_"


# --- keys -----------------------------------------------------------------------------------------


@attrs.frozen
class _Key:
    standard: bytes
    lume: bytes


def _key(secret: str) -> _Key:
    if not isinstance(secret, str):
        raise TypeError(f"a webhook secret must be a str, not {type(secret).__name__}")
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    standard = secret.encode()
    if secret.startswith(_SECRET_PREFIX):
        encoded = secret[len(_SECRET_PREFIX) :]
        try:
            standard = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a 'whsec_' webhook secret must be base64 after the prefix") from None
        if not standard:
            raise ValueError("a 'whsec_' webhook secret must not be empty after the prefix")
    return _Key(standard=standard, lume=secret.encode())


def _keys(secret: str | Sequence[str]) -> tuple[_Key, ...]:
    items = [secret] if isinstance(secret, str) else list(secret)
    if not items:
        raise ValueError("give at least one webhook secret")
    return tuple(_key(s) for s in items)


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
    key = _key(secret)
    msg_id = msg_id if msg_id is not None else f"msg_{_secrets.token_hex(12)}"
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    signature = base64.b64encode(_standard_mac(key.standard, msg_id, ts, bytes(body))).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": f"v1,{signature}",
        "X-Lume-Signature-256": "sha256=" + hmac.new(key.lume, body, hashlib.sha256).hexdigest(),
    }


# --- replay protection ----------------------------------------------------------------------------


class ReplayGuard:
    """Remembers accepted delivery ids for ``ttl`` seconds so a replay of one is refused.

    Bounded (the oldest ids go first past ``max_entries``) and safe to share between threads.
    ``ttl`` should be at least twice the verification tolerance: a delivery is acceptable for
    ``tolerance`` seconds either side of its timestamp.
    """

    def __init__(self, *, ttl: float = 600.0, max_entries: int = 100_000) -> None:
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl = float(ttl)
        self._max = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, key: str, *, now: float | None = None) -> bool:
        """Record ``key``; True if it was new, False if it was seen within ``ttl``."""
        now = time.time() if now is None else now
        with self._lock:
            self._purge(now)
            expires = self._expiry.get(key)
            if expires is not None and expires > now:
                return False
            self._expiry[key] = now + self._ttl
            self._expiry.move_to_end(key)
            while len(self._expiry) > self._max:
                self._expiry.popitem(last=False)
            return True

    def _purge(self, now: float) -> None:
        # Entries are kept in insertion order, which is expiry order while ``now`` moves forward;
        # an out-of-order ``now`` only delays purging, never accepts a replay (see check above).
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            expires = self._expiry.get(key) if isinstance(key, str) else None
            return expires is not None and expires > time.time()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def clear(self) -> None:
        """Forget every id."""
        with self._lock:
            self._expiry.clear()


# --- verification ---------------------------------------------------------------------------------


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _check_standard(
    h: dict[str, str], body: bytes, keys: tuple[_Key, ...], tolerance: float, now: float
) -> str:
    msg_id, ts_text, sig_header = (h[name] for name in _STANDARD_HEADERS)
    try:
        ts = float(ts_text.strip())
    except ValueError:
        ts = math.nan
    if not math.isfinite(ts):
        raise WebhookVerificationError("malformed webhook-timestamp header: not Unix seconds")
    if ts < now - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is too old ({now - ts:.0f} s ago, tolerance {tolerance:g} s)"
        )
    if ts > now + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is too far in the future ({ts - now:.0f} s ahead, "
            f"tolerance {tolerance:g} s)"
        )
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
    return msg_id


def _check_lume(value: str, body: bytes, keys: tuple[_Key, ...]) -> None:
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
    body: bytes,
    headers: Mapping[str, str],
    keys: tuple[_Key, ...],
    *,
    tolerance: float,
    now: float | None,
) -> str | None:
    """Check either scheme (Standard Webhooks first); the delivery id if the scheme has one."""
    h = _lowered(headers)
    present = [name for name in _STANDARD_HEADERS if h.get(name)]
    if len(present) == len(_STANDARD_HEADERS):
        return _check_standard(h, body, keys, tolerance, time.time() if now is None else now)
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
        raise WebhookVerificationError(f"malformed webhook body: {exc}") from exc


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: float = 300,
    now: float | None = None,
    seen: ReplayGuard | None = None,
) -> WebhookEvent:
    """Check a delivery's signature and return its event, or raise ``WebhookVerificationError``.

    ``body`` must be the raw bytes as received. Header names are matched case-insensitively.
    With ``seen``, a delivery whose ``webhook-id`` (or, for the ``X-Lume-Signature-256`` scheme
    alone, event ``id``) was already accepted is refused as a replay.
    """
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    data = bytes(body)
    delivery_id = _check_signature(data, headers, _keys(secret), tolerance=tolerance, now=now)
    event = _parse_event(data)
    if seen is not None:
        key = delivery_id if delivery_id is not None else f"event:{event.id}"
        if not seen.check_and_add(key, now=now):
            raise WebhookVerificationError(f"replayed delivery: {key[:80]!r} was already accepted")
    return event


# --- receiving ------------------------------------------------------------------------------------


class WebhookEventStream:
    """Events as they arrive, for ``async for``; made by ``WebhookReceiver.events()``.

    Subscribed from creation, so nothing is missed between creating and iterating. Bounded: when
    the consumer falls ``max_queue`` events behind, the oldest are dropped (with a warning).
    Close it (``aclose()`` or ``async with``) to unsubscribe.
    """

    def __init__(self, receiver: WebhookReceiver, *, max_queue: int = 1000) -> None:
        self._queue: asyncio.Queue[WebhookEvent] = asyncio.Queue(maxsize=max_queue)
        self._unsubscribe = receiver.add_listener(self._push)

    def _push(self, event: WebhookEvent) -> None:
        if self._queue.full():
            dropped = self._queue.get_nowait()
            logger.warning("webhook event stream is full; dropped event %s", dropped.id)
        self._queue.put_nowait(event)

    def __aiter__(self) -> WebhookEventStream:
        return self

    async def __anext__(self) -> WebhookEvent:
        return await self._queue.get()

    async def aclose(self) -> None:
        """Stop receiving events."""
        self._unsubscribe()

    async def __aenter__(self) -> WebhookEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class WebhookReceiver:
    """An aiohttp endpoint that verifies deliveries and hands each new event to listeners.

    Mount ``handler`` in your own app, use ``app``, or run it alone with ``serve()``. Answers 200
    for an accepted event and for a repeated delivery of one (deduplicated on the event id, so
    the sender stops retrying), 401 when the signature does not verify and 400 when a signed body
    is not an event. Listeners run on the receiver's event loop and must not block; an exception
    in one is logged and does not affect the answer or the other listeners.
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        path: str = "/lume/webhooks",
        tolerance: float = 300,
        dedupe_ttl: float = 24 * 3600,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if tolerance < 0:
            raise ValueError("tolerance must not be negative")
        self._keys = _keys(secret)
        self._path = path
        self._tolerance = float(tolerance)
        self._delivered = ReplayGuard(ttl=dedupe_ttl)
        self._listeners: list[Callable[[WebhookEvent], None]] = []
        self._app: web.Application | None = None

    @property
    def path(self) -> str:
        """The URL path the receiver's app answers on."""
        return self._path

    def add_listener(self, callback: Callable[[WebhookEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each new event; returns a function that unsubscribes."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def events(self, *, max_queue: int = 1000) -> WebhookEventStream:
        """An async iterator of the events received from now on."""
        return WebhookEventStream(self, max_queue=max_queue)

    async def handler(self, request: web.Request) -> web.Response:
        """The aiohttp handler: verify, deduplicate, notify listeners, answer."""
        body = await request.read()
        try:
            _check_signature(body, request.headers, self._keys, tolerance=self._tolerance, now=None)
        except WebhookVerificationError as exc:
            logger.warning("refused webhook delivery from %s: %s", request.remote, exc)
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            event = _parse_event(body)
        except WebhookVerificationError as exc:
            logger.warning("refused webhook delivery from %s: %s", request.remote, exc)
            return web.json_response({"error": "malformed event"}, status=400)
        if not self._delivered.check_and_add(event.id):
            return web.json_response({"status": "duplicate"})
        self._notify(event)
        return web.json_response({"status": "accepted"})

    def _notify(self, event: WebhookEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("webhook listener %r failed on event %s", listener, event.id)

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self._path, self.handler)
        return app

    @property
    def app(self) -> web.Application:
        """An ``aiohttp.web.Application`` serving the receiver at ``path``."""
        if self._app is None:
            self._app = self._make_app()
        return self._app

    @contextlib.asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Run the receiver on its own socket; yields the URL to register as the webhook URL."""
        runner = web.AppRunner(self._make_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            if ":" in bound_host:
                bound_host = f"[{bound_host}]"
            yield f"http://{bound_host}:{bound_port}{self._path}"
        finally:
            await runner.cleanup()
