"""Checks of a client's settings: key, URL, connections, timeouts, retry policy, clock."""

from __future__ import annotations

import inspect
import ipaddress
import ssl
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._exceptions import AuthenticationError
from ._base import bad_value, check_bool, check_int, check_seconds, wrong_type

__all__ = [
    "check_api_key",
    "check_base_url",
    "check_clock",
    "check_max_connections",
    "check_retry_choice",
    "check_ssl_context",
    "check_timeout_setting",
    "check_webhook_receiver",
    "int_at_least_zero",
    "is_loopback",
    "non_negative_seconds",
    "positive_seconds",
]


# --- attrs validators of the settings values ------------------------------------------------------


def non_negative_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds >= 0, or None for no limit."""
    check_seconds(value, attribute.name)


def positive_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds > 0, or None for no limit."""
    check_seconds(value, attribute.name, allow_zero=False)


def int_at_least_zero(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_int(value, attribute.name, minimum=0)


def check_timeout_setting(value: object) -> float:
    """A client's or view's ``timeout=`` given as a number: seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type("timeout", "a number of seconds, a Timeout or None", value)
    seconds = check_seconds(value, "timeout", allow_none=False, allow_zero=False)
    assert seconds is not None
    return float(seconds)


# --- the client's constructor ---------------------------------------------------------------------


def check_api_key(key: object, *, env: str) -> str:
    """The key (given, or read from ``env``); a missing one is an AuthenticationError at once."""
    if key is not None and not isinstance(key, str):
        raise wrong_type("api_key", "a str", key)
    if not key:
        raise AuthenticationError(
            f"no API key: pass api_key=... or set the {env} environment variable",
            status_code=401,
            code="missing_api_key",
        )
    if any(c in key for c in "\r\n\x00"):
        # The key itself is never shown.
        raise ValueError("api_key must be a single-line str, got a str with a line break or NUL")
    return key


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves this machine."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: object, *, allow_insecure_http: object) -> str:
    """An http(s) URL with a host, without a trailing slash; plain http only to loopback."""
    check_bool(allow_insecure_http, "allow_insecure_http")
    if not isinstance(url, str):
        raise wrong_type("base_url", "a str", url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_value("base_url", "an http(s) URL with a host", url)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"refusing to send the API key over plain HTTP to {parts.hostname!r}; use https, "
            "or pass allow_insecure_http=True if this network is trusted"
        )
    return url.rstrip("/")


def check_max_connections(value: object) -> int:
    return check_int(value, "max_connections", minimum=1)


def check_retry_choice(max_retries: object, retry: object, policy_cls: type[Any]) -> None:
    """At most one of ``max_retries`` and ``retry=RetryPolicy(...)``, each of its type."""
    if retry is not None and max_retries is not None:
        raise TypeError("pass either max_retries or retry=RetryPolicy(...), not both")
    if retry is not None and not isinstance(retry, policy_cls):
        raise wrong_type("retry", "a RetryPolicy or None", retry)
    if max_retries is not None:
        check_int(max_retries, "max_retries", minimum=0)


def check_ssl_context(value: object) -> None:
    if value is not None and not isinstance(value, ssl.SSLContext):
        raise wrong_type("ssl_context", "an ssl.SSLContext or None", value)


def check_webhook_receiver(value: object) -> None:
    if value is not None and not callable(getattr(value, "add_listener", None)):
        raise wrong_type("webhooks", "a WebhookReceiver or None", value)


def check_clock(value: object) -> None:
    """A clock: ``monotonic()``, ``time()`` and ``async sleep(seconds)``."""
    methods = [getattr(value, name, None) for name in ("monotonic", "time", "sleep")]
    if not all(callable(m) for m in methods) or not inspect.iscoroutinefunction(methods[2]):
        raise wrong_type("clock", "a Clock (monotonic(), time() and async sleep())", value)
