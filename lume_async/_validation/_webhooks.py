"""Checks of webhook arguments: signing secrets, tolerances, receiver paths, endpoints."""

from __future__ import annotations

import base64
import binascii
import math
import re
from urllib.parse import urlsplit

from ._base import (
    as_float,
    bad_value,
    check_id,
    check_int,
    check_seconds,
    check_str_list,
    describe,
    is_async_callable,
    is_utf8,
    wrong_type,
)

__all__ = [
    "EVENT_TYPES",
    "check_delivery",
    "check_endpoint_id",
    "check_endpoint_secret",
    "check_endpoint_url",
    "check_events",
    "check_guard",
    "check_listener",
    "check_max_queue",
    "check_msg_id",
    "check_now",
    "check_receiver_path",
    "check_replay_key",
    "check_secret",
    "check_secrets",
    "check_sign_timestamp",
    "check_tolerance",
    "check_ttl",
    "decode_whsec",
]

# What the service accepts (its OpenAPI document) for an endpoint's URL and signing secret.
_ENDPOINT_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%\[\]-]+")
_ENDPOINT_SECRET = re.compile(
    r"whsec_(?:[A-Za-z0-9+/]{4}){4,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
)
_MAX_URL = 2048
_MAX_ENDPOINT_SECRET = 200
_MSG_ID = re.compile(r"[!-~]{1,255}")

SECRET_PREFIX = "whsec_"
EVENT_TYPES = (
    "run.succeeded",
    "run.partial_failed",
    "run.failed",
    "run.crashed",
    "run.canceled",
)


def decode_whsec(secret: str) -> bytes | None:
    """The key bytes of a ``whsec_<base64>`` secret; None when it is not of that form or empty."""
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def check_secret(secret: object, name: str = "secret") -> str:
    """A signing secret: a non-empty str; ``whsec_`` ones base64 after the prefix.

    Messages never show the secret, only what is wrong with it.
    """
    if not isinstance(secret, str):
        raise wrong_type(name, "a str", secret)
    if not secret:
        raise ValueError(f"{name} must not be empty, got an empty str")
    if not is_utf8(secret):  # said without quoting the secret, as an encoding error would
        raise ValueError(f"{name} must be text UTF-8 can encode (no lone surrogates)")
    if secret.startswith(SECRET_PREFIX) and decode_whsec(secret) is None:
        raise ValueError(f"{name} must be base64 after its 'whsec_' prefix, and not empty (a str)")
    return secret


def check_secrets(secret: object) -> list[str]:
    """One secret, or several while one is being rotated out."""
    if isinstance(secret, str):
        return [check_secret(secret)]
    items = check_str_list(secret, "secret")
    if not items:
        raise ValueError("secret must name at least one webhook secret, got an empty list")
    return [check_secret(s, f"secret[{i}]") for i, s in enumerate(items)]


def check_endpoint_secret(secret: object) -> str:
    """A secret for the service to sign with: ``whsec_`` and at least 12 bytes in base64."""
    check_secret(secret)
    assert isinstance(secret, str)
    if len(secret) > _MAX_ENDPOINT_SECRET or not _ENDPOINT_SECRET.fullmatch(secret):
        raise ValueError(
            "secret must be 'whsec_' and base64 of at least 12 bytes, at most 200 characters "
            "(a str); webhooks.new_secret() makes one"
        )
    return secret


def check_tolerance(tolerance: object) -> float:
    """How far a delivery's timestamp may be from now: a finite number of seconds > 0."""
    value = check_seconds(tolerance, "tolerance", allow_none=False, allow_zero=False)
    assert value is not None
    return float(value)


def check_now(now: object, name: str = "now") -> float | None:
    """A time in Unix seconds (the time to verify at), or None for the current time."""
    if now is None:
        return None
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise wrong_type(name, "Unix seconds (a number) or None", now)
    if not math.isfinite(as_float(now, name)):
        raise bad_value(name, "a finite number of Unix seconds", now)
    return float(now)


def check_delivery(body: object, headers: object) -> bytes:
    """A delivery as received: the raw body bytes, and its headers as a mapping of names to
    strings or as web frameworks hold them (werkzeug's ``Headers``, ``http.client``'s
    ``HTTPMessage``: not mappings, but their ``items()`` are the (name, value) pairs)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise wrong_type("body", "bytes (the raw request body, as received)", body)
    items = getattr(headers, "items", None)
    if not callable(items):
        raise wrong_type("headers", "a mapping of header names to values", headers)
    for pair in items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise wrong_type("headers", "a mapping of header names to values", headers)
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            bad = name if not isinstance(name, str) else value
            raise wrong_type(f"headers[{name!r}]", "a str header name and value", bad)
    return bytes(body)


def check_msg_id(msg_id: object) -> str:
    """A delivery id, sent as a header: 1 to 255 printable ASCII characters without spaces."""
    if not isinstance(msg_id, str):
        raise wrong_type("msg_id", "a str or None", msg_id)
    if not _MSG_ID.fullmatch(msg_id):
        raise bad_value("msg_id", "1 to 255 printable ASCII characters without spaces", msg_id)
    return msg_id


def check_sign_timestamp(timestamp: object) -> int:
    """A signing time in whole Unix seconds."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise wrong_type("timestamp", "Unix seconds (an int) or None", timestamp)
    if not math.isfinite(as_float(timestamp, "timestamp")) or timestamp < 0:
        raise bad_value("timestamp", "a finite number of Unix seconds >= 0", timestamp)
    return int(timestamp)


def check_replay_key(key: object) -> str:
    if not isinstance(key, str):
        raise wrong_type("key", "a str", key)
    if not key:
        raise bad_value("key", "a non-empty str", key)
    return key


def check_listener(callback: object) -> None:
    if not callable(callback):
        raise wrong_type("callback", "a callable taking a WebhookEvent", callback)
    if is_async_callable(callback):
        # Called and never awaited, it would lose every event (already recorded as delivered).
        raise TypeError(
            "callback must be a plain function (it is called on the receiver's loop and never"
            " awaited); to run a coroutine per event, start a task from a plain function,"
            f" not {describe(callback)}"
        )


def check_ttl(ttl: object, name: str = "ttl") -> float:
    value = check_seconds(ttl, name, allow_none=False, allow_zero=False)
    assert value is not None
    return float(value)


def check_max_queue(value: object, name: str = "max_queue") -> int:
    return check_int(value, name, minimum=1)


def check_receiver_path(path: object) -> str:
    if not isinstance(path, str):
        raise wrong_type("path", "a str", path)
    if not path.startswith("/"):
        raise bad_value("path", "a URL path starting with '/'", path)
    return path


def check_endpoint_url(url: object) -> str:
    """Where the service will send events: an http(s) URL, percent-encoded, up to 2048 chars."""
    if not isinstance(url, str):
        raise wrong_type("url", "a str", url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (read for its check: urlsplit parses the port lazily)
    except ValueError:
        raise bad_value("url", "an http(s) URL with a valid host and port", url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_value("url", "an http(s) URL with a host", url)
    if len(url) > _MAX_URL or not _ENDPOINT_URL.fullmatch(url):
        raise bad_value(
            "url", f"a percent-encoded URL (no spaces) of at most {_MAX_URL} characters", url
        )
    return url


def check_events(events: object) -> list[str]:
    """Some of the ``run.*`` event types, at least one."""
    chosen = check_str_list(events, "events")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown or not chosen:
        raise bad_value("events", f"some of {', '.join(EVENT_TYPES)}", chosen)
    return chosen


def check_endpoint_id(endpoint_id: object) -> str:
    return check_id(endpoint_id, "endpoint_id", "a webhook endpoint id", "wh_01...")


def check_guard(seen: object) -> None:
    """Where accepted deliveries are remembered: a ReplayGuard (``check_and_add``), or None."""
    if seen is not None and not callable(getattr(seen, "check_and_add", None)):
        raise wrong_type("seen", "a ReplayGuard or None", seen)
