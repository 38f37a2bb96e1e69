"""Checks of how a client reaches the service: its proxy, CA bundle and extra default headers."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ._base import bad_value, wrong_type
from ._settings import MAX_HEADER_BYTES, is_loopback

__all__ = [
    "check_ca_bundle",
    "check_default_headers",
    "check_proxy_route",
    "check_proxy_url",
    "redact_url",
]

# Control characters a header field value may not hold (RFC 9110 allows HTAB, nothing else;
# C1 controls are refused as in the API key).
_FIELD_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers the client sets itself: the key (either way the service reads it), and per request.
_RESERVED = {
    "lume-api-key": "the API key is sent as lume-api-key: pass api_key=... instead",
    "authorization": "the service reads it as the API key: pass api_key=... instead",
    "proxy-authorization": "put the proxy's credentials in its URL: http://user:pass@host:port",
    "idempotency-key": "it is set per create: pass idempotency_key=... to runs.create()",
    "content-type": "it is set per request",
    "content-length": "it is set per request",
    "transfer-encoding": "it is set per request",
    "host": "it comes from base_url",
    # Hop-by-hop and exchange fields: the transport owns the connection and how a body is sent.
    "connection": "the client manages its connections (keep-alive and closing)",
    "keep-alive": "the client manages its connections (keep-alive and closing)",
    "proxy-connection": "the client manages its connections (keep-alive and closing)",
    "upgrade": "the client speaks HTTP/1.1 to the service, never another protocol",
    "te": "the client reads answers as they are framed, without transfer codings",
    "trailer": "the client sends no trailer fields",
    "expect": "the client sends each body at once: there is no 100-continue exchange",
}


def redact_url(url: str) -> str:
    """A URL as messages show it: a password in it is replaced by ``***``.

    A URL that does not parse as ``scheme://user:password@host`` (no scheme, ``http//``) shows
    nothing before its last ``@``: that may be credentials all the same.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracketed host that is no IP address: as one without a scheme
        parts = None
    if parts is None or "://" not in url:
        return "***@" + url.rpartition("@")[2] if "@" in url else url
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()


def check_proxy_url(value: object, name: str = "proxy") -> str | None:
    """An ``http://`` or ``https://`` proxy URL with a host (credentials allowed), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(name, "a proxy URL str or None", value)
    if any(c in value for c in "\r\n\x00 "):
        raise ValueError(f"{name} must be a URL without spaces or line breaks")
    try:  # a bracketed host that is no IP address: urlsplit's message names no setting
        parts = urlsplit(value)
    except ValueError:
        raise bad_value(name, "an http(s)://host:port proxy URL", redact_url(value)) from None
    if parts.scheme.startswith("socks"):
        raise ValueError(f"{name}: SOCKS proxies are not supported; use an http(s):// proxy")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise bad_value(name, "an http(s)://host:port proxy URL", redact_url(value))
    return value


def check_proxy_route(*, base_url: str, proxy: str | None, allow_insecure_http: bool) -> None:
    """Plain-HTTP requests carry the key in clear: through a proxy only on loopback or opt-in.

    Over https the proxy only relays an encrypted tunnel (CONNECT); over http it reads every
    request, key included, so the same rule holds for it as for ``base_url``.
    """
    if proxy is None or allow_insecure_http or urlsplit(base_url).scheme != "http":
        return
    host = urlsplit(proxy).hostname or ""
    if not is_loopback(host):
        raise ValueError(
            f"refusing to send the API key over plain HTTP through the proxy {host!r} (the "
            "base URL is http://); use an https base URL, or pass allow_insecure_http=True if "
            "this network is trusted"
        )


def check_ca_bundle(value: object) -> str | None:
    """A path to a PEM file (or directory) of CA certificates, or None."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise wrong_type("ca_bundle", "a path (str or os.PathLike) or None", value)
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise bad_value("ca_bundle", "a non-empty path", value)
    return path


def check_default_headers(value: object) -> tuple[tuple[str, str], ...]:
    """Extra headers for every request: str names and values; never the key, never set twice."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise wrong_type("default_headers", "a mapping of header names to str values", value)
    seen: set[str] = set()
    headers = []
    for name, text in value.items():
        if not isinstance(name, str):
            raise wrong_type("default_headers names", "str", name)
        if not _TOKEN.fullmatch(name):
            raise bad_value("default_headers name", "a header name (letters, digits, -)", name)
        lower = name.lower()
        if lower in _RESERVED:
            raise ValueError(f"default_headers may not set {name!r}: {_RESERVED[lower]}")
        if lower in seen:
            raise ValueError(f"default_headers sets {name!r} twice (names ignore case)")
        seen.add(lower)
        if not isinstance(text, str):
            raise wrong_type(f"default_headers[{name!r}]", "a str", text)
        if _FIELD_CONTROL.search(text):
            raise ValueError(
                f"default_headers[{name!r}] must be one line without control characters "
                "(a tab is allowed)"
            )
        if len(name) + len(text.encode()) > MAX_HEADER_BYTES:
            raise ValueError(
                f"default_headers[{name!r}] must be at most {MAX_HEADER_BYTES} bytes with its "
                f"name (UTF-8), got a str of {len(text)} characters"
            )
        headers.append((name, text))
    return tuple(headers)
