"""Checks of webhook arguments: signing secrets, tolerances, receiver paths, endpoints."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from ._base import bad_value, check_id, check_int, check_seconds, check_str_list, wrong_type

__all__ = [
    "EVENT_TYPES",
    "check_endpoint_id",
    "check_endpoint_url",
    "check_events",
    "check_max_queue",
    "check_receiver_path",
    "check_secret",
    "check_secrets",
    "check_tolerance",
    "check_ttl",
    "decode_whsec",
]

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


def check_tolerance(tolerance: object) -> float:
    """How far a delivery's timestamp may be from now, in seconds."""
    value = check_seconds(tolerance, "tolerance", allow_none=False)
    assert value is not None
    return float(value)


def check_ttl(ttl: object) -> float:
    value = check_seconds(ttl, "ttl", allow_none=False, allow_zero=False)
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
    if not isinstance(url, str):
        raise wrong_type("url", "a str", url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_value("url", "an http(s) URL with a host", url)
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
