"""Checks of a client's settings: key, URL, connections, timeouts, retry policy, clock."""

from __future__ import annotations

import inspect
import ipaddress
import re
import ssl
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._exceptions import AuthenticationError
from ._base import bad_value, check_bool, check_callable, check_int, check_seconds, wrong_type

__all__ = [
    "callable_or_none",
    "check_api_key",
    "check_base_url",
    "check_clock",
    "check_header_token",
    "check_max_connections",
    "check_retry_choice",
    "check_ssl_context",
    "check_timeout_setting",
    "check_webhook_receiver",
    "int_at_least_zero",
    "is_loopback",
    "non_negative_number",
    "non_negative_seconds",
    "positive_seconds",
]

# C0 controls, DEL and C1 controls: never part of a header value or a URL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A ``%`` that does not start a percent-encoded octet, in a URL's path.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A ``.`` or ``..`` path segment, plain or percent-encoded: it would move the SDK's paths.
_DOT_SEGMENT = re.compile(r"/(?:\.|%2e){1,2}(?=/|$)", re.IGNORECASE)


# --- attrs validators of the settings values ------------------------------------------------------


def non_negative_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds >= 0, or None for no limit."""
    check_seconds(value, attribute.name)


def positive_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds > 0, or None for no limit."""
    check_seconds(value, attribute.name, allow_zero=False)


def non_negative_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite number >= 0 (None is not one)."""
    check_seconds(value, attribute.name, allow_none=False)


def int_at_least_zero(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_int(value, attribute.name, minimum=0)


def callable_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_callable(value, attribute.name)


def check_timeout_setting(value: object) -> float:
    """A client's or view's ``timeout=`` given as a number: seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type("timeout", "a number of seconds, a Timeout or None", value)
    seconds = check_seconds(value, "timeout", allow_none=False, allow_zero=False)
    assert seconds is not None
    return float(seconds)


# --- the client's constructor ---------------------------------------------------------------------


#: The longest header line the client sends (a key, a default header): servers refuse a request
#: head over about 8 KiB in all.
MAX_HEADER_BYTES = 4096


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
    check_header_token(key, "api_key")
    if len(key) > MAX_HEADER_BYTES:  # latin-1 by now: a byte per character
        raise ValueError(
            f"api_key must be at most {MAX_HEADER_BYTES} characters (a str sent as a header), "
            f"got a str of {len(key)}"
        )
    return key


def check_header_token(value: str, name: str) -> str:
    """A secret sent in a header: no control characters, latin-1, no surrounding whitespace.

    Anything else would be refused by the HTTP library at the first request, or silently changed
    on the wire. The messages say what is wrong, never the value itself.
    """
    bad = _CONTROL.search(value)
    if bad is not None:
        kind = "a line break or NUL" if bad.group() in "\r\n\x00" else "a control character"
        raise ValueError(
            f"{name} must be a single-line str without control characters, got a str with "
            f"{kind} (U+{ord(bad.group()):04X}) at position {bad.start()}"
        )
    if not value.isascii() and any(ord(c) > 0xFF for c in value):
        raise ValueError(f"{name} must hold only latin-1 characters (a str sent as a header)")
    if value != value.strip():
        raise ValueError(f"{name} must not start or end with whitespace (a str)")
    return value


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves this machine.

    Not a name under ``.localhost``: the SDK connects through the system's resolver, which may
    ask DNS for it (glibc does), and DNS may answer with any address.
    """
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4's loopback
    return (mapped or address).is_loopback


def _without_password(url: str) -> str:
    """``url`` as an error message may show it: any ``user:password@`` replaced."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{tail}" if sep else url.rpartition("@")[2]


def check_base_url(url: object, *, allow_insecure_http: object) -> str:
    """An http(s) URL with a host and maybe a path, without a trailing slash; nothing else.

    Credentials, a query, a fragment or ``;params`` would be dropped or mangled when the SDK adds
    its paths, so they are refused; plain http only to loopback. Messages never show a password.
    """
    check_bool(allow_insecure_http, "allow_insecure_http")
    if not isinstance(url, str):
        raise wrong_type("base_url", "a str", url)
    shown = _without_password(url)
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        raise bad_value("base_url", "a URL without spaces or control characters", shown)
    try:  # a bracketed host that is no IP address: urlsplit's message names no setting
        parts = urlsplit(url)
    except ValueError:
        raise bad_value("base_url", "an http(s) URL with a valid host", shown) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_value("base_url", "an http(s) URL with a host", shown)
    if "@" in parts.netloc:
        raise ValueError(
            f"base_url must not carry credentials (user:password@), got {shown!r} (str); the "
            "API key is the only credential the SDK sends"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url or ";" in parts.path:
        raise bad_value("base_url", "a URL without a query, fragment or ;params", shown)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # port 0 names no server: it would be dialled as the scheme's default
        raise bad_value("base_url", "a URL with a port between 1 and 65535", shown)
    if _BAD_ESCAPE.search(parts.path) or _DOT_SEGMENT.search(parts.path):
        raise bad_value("base_url", "a path without '.' or '..' segments or a stray '%'", shown)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"base_url must use https to reach {parts.hostname!r} (a str): refusing to send the "
            "API key over plain HTTP; pass allow_insecure_http=True if this network is trusted"
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
