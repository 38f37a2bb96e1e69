"""Small immutable configuration values: timeouts, the retry policy, the resolved settings."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from ._retry import RetryEvent

__all__ = ["ClientConfig", "RetryPolicy", "Timeout"]

DEFAULT_BASE_URL = "https://api.lume.ai"
ENV_API_KEY = "LUME_API_KEY"
ENV_BASE_URL = "LUME_BASE_URL"


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _non_negative(_, attribute, value)
    if value == 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds, or None for no limit")


@attrs.frozen
class Timeout:
    """Per-request time limits in seconds (``None`` means no limit).

    ``total`` bounds one attempt from connect to the last body byte; ``connect`` bounds getting a
    connection from the pool or the network; ``read`` bounds the wait for each chunk of the answer.
    """

    total: float | None = attrs.field(default=60.0, validator=_positive)
    connect: float | None = attrs.field(default=10.0, validator=_positive)
    read: float | None = attrs.field(default=None, validator=_positive)

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None, connect=None)
        _positive(None, attrs.fields(cls).total, value)
        return cls(total=value, connect=min(10.0, value))


def _int_at_least_zero(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class RetryPolicy:
    """How the transport retries requests that are safe to repeat.

    Waits use full jitter: a uniform draw in ``[0, min(max_delay, base * 2**retry)]``, with a longer
    base for 429 than for 5xx and connection errors. A ``Retry-After`` header replaces the draw; one
    longer than ``max_retry_after`` is not waited out (the error is raised). ``deadline`` bounds all
    attempts of one call together. ``budget_ratio`` and ``budget_floor`` form the client-wide retry
    budget: retries may spend ``budget_ratio`` tokens per original request over a ten-second window,
    plus ``budget_floor`` tokens per second, and a retry that succeeds gives its token back; so a
    total outage costs at most about ``1 + budget_ratio`` times the original requests. A
    ``with_options`` view whose policy sets other budget values draws on a budget of its own,
    shared by every call made with those same values.
    """

    max_retries: int = attrs.field(default=3, validator=_int_at_least_zero)
    base_delay: float = attrs.field(default=0.5, validator=_non_negative)
    rate_limit_base_delay: float = attrs.field(default=2.0, validator=_non_negative)
    max_delay: float = attrs.field(default=30.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=180.0, validator=_non_negative)
    budget_ratio: float = attrs.field(default=0.4, validator=_non_negative)
    budget_floor: float = attrs.field(default=2.0, validator=_non_negative)
    on_retry: Callable[[RetryEvent], None] | None = attrs.field(default=None, eq=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen(repr=False)
class ClientConfig:
    """The resolved settings of one client. Its repr never shows the API key."""

    api_key: str
    base_url: str
    timeout: Timeout
    retry: RetryPolicy
    max_connections: int
    allow_insecure_http: bool = False

    def __repr__(self) -> str:
        return (
            f"ClientConfig(base_url={self.base_url!r}, timeout={self.timeout!r}, "
            f"retry={self.retry!r}, max_connections={self.max_connections!r}, api_key='***')"
        )

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: Timeout | float | None,
        max_retries: int | None,
        retry: RetryPolicy | None,
        max_connections: int,
        allow_insecure_http: bool,
    ) -> ClientConfig:
        from ._exceptions import AuthenticationError

        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key:
            raise AuthenticationError(
                f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable",
                status_code=401,
                code="missing_api_key",
            )
        if not isinstance(key, str) or any(c in key for c in "\r\n\x00"):
            raise ValueError("api_key must be a single-line string")
        url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {url!r}")
        if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
            raise ValueError(
                f"refusing to send the API key over plain HTTP to {parts.hostname!r}; use https, "
                "or pass allow_insecure_http=True if this network is trusted"
            )
        if retry is not None and max_retries is not None:
            raise TypeError("pass either max_retries or retry=RetryPolicy(...), not both")
        policy = retry or RetryPolicy(max_retries=3 if max_retries is None else max_retries)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError("max_connections must be an int")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        return cls(
            api_key=key,
            base_url=url.rstrip("/"),
            timeout=Timeout.coerce(timeout),
            retry=policy,
            max_connections=max_connections,
            allow_insecure_http=allow_insecure_http,
        )
