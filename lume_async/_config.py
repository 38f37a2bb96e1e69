"""Small immutable configuration values: timeouts, the retry policy, the resolved settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import attrs

from ._network import proxy_for
from ._secrets import Secret
from ._validation import (
    callable_or_none,
    check_api_key,
    check_base_url,
    check_bool,
    check_default_headers,
    check_int,
    check_max_connections,
    check_optional_str,
    check_retry_choice,
    check_timeout_setting,
    int_at_least_zero,
    non_negative_number,
    positive_seconds,
    redact_url,
)

if TYPE_CHECKING:
    from ._retry import RetryEvent

__all__ = ["ClientConfig", "RetryPolicy", "Timeout"]

DEFAULT_BASE_URL = "https://api.lume.ai"
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
ENV_API_KEY = "LUME_API_KEY"
ENV_BASE_URL = "LUME_BASE_URL"


@contextlib.contextmanager
def _naming(variable: str | None) -> Iterator[None]:
    """Prefix a ValueError about a setting read from ``variable`` with the variable's name."""
    try:
        yield
    except ValueError as exc:
        if variable is None:
            raise
        raise ValueError(f"${variable}: {exc}") from None


@attrs.frozen
class Timeout:
    """Per-request time limits in seconds (``None`` means no limit).

    ``total`` bounds one attempt from connect to the last body byte; ``connect`` bounds opening a
    new connection (a wait for a free one, at ``max_connections``, counts against ``total``);
    ``read`` bounds the wait for each chunk of the answer.
    A request that runs out of time raises APITimeoutError once its retries are spent.

    Attributes:
        total: Seconds for one attempt, from connecting to the last byte of the answer.
        connect: Seconds to open a new connection to the service.
        read: Seconds to wait for each chunk of the answer.

    Examples:
        >>> Timeout(total=30, connect=5)
        Timeout(total=30, connect=5, read=None)
        >>> Timeout.coerce(20)  # what AsyncLume(timeout=20) does
        Timeout(total=20.0, connect=10.0, read=None)
    """

    total: float | None = attrs.field(default=60.0, validator=positive_seconds)
    connect: float | None = attrs.field(default=10.0, validator=positive_seconds)
    read: float | None = attrs.field(default=None, validator=positive_seconds)

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from what ``timeout=`` accepts: a Timeout, seconds for the whole attempt
        (connecting gets at most 10 of them), or None for no limit at all.

        Raises:
            ValueError: The seconds are not positive.
            TypeError: ``value`` is neither a Timeout, a number nor None.
        """
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None, connect=None)
        seconds = check_timeout_setting(value)
        return cls(total=seconds, connect=min(10.0, seconds))


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

    Only requests that are safe to repeat are retried: every read, and every create (it carries
    an idempotency key). They are retried on connection errors, 408, 429 and 5xx answers but 501.

    Attributes:
        max_retries: Retries after the first attempt (0 turns retrying off).
        base_delay: Seconds of the first backoff step after a connection error or a 5xx.
        rate_limit_base_delay: Seconds of the first backoff step after a 429.
        max_delay: The longest backoff draw, in seconds.
        max_retry_after: The longest ``Retry-After`` the client waits out, in seconds.
        deadline: Seconds for all attempts of one call together (None: no limit).
        budget_ratio: Retry tokens earned per original request, over ten seconds.
        budget_floor: Retry tokens earned per second regardless of traffic.
        on_retry: Called with a RetryEvent before each retry's wait; an exception it raises is
            logged and ignored.

    Examples:
        >>> import attrs
        >>> policy = RetryPolicy(max_retries=5, deadline=60)
        >>> attrs.evolve(policy, max_retries=0).max_retries  # a changed copy
        0
    """

    max_retries: int = attrs.field(default=3, validator=int_at_least_zero)
    base_delay: float = attrs.field(default=0.5, validator=non_negative_number)
    rate_limit_base_delay: float = attrs.field(default=2.0, validator=non_negative_number)
    max_delay: float = attrs.field(default=30.0, validator=non_negative_number)
    max_retry_after: float = attrs.field(default=60.0, validator=non_negative_number)
    deadline: float | None = attrs.field(default=180.0, validator=positive_seconds)
    budget_ratio: float = attrs.field(default=0.4, validator=non_negative_number)
    budget_floor: float = attrs.field(default=2.0, validator=non_negative_number)
    on_retry: Callable[[RetryEvent], None] | None = attrs.field(
        default=None, eq=False, validator=callable_or_none
    )


@attrs.frozen(repr=False)
class ClientConfig:
    """The resolved settings of one client. The key is a ``Secret``: no repr shows it."""

    api_key: Secret
    base_url: str
    timeout: Timeout
    retry: RetryPolicy
    max_connections: int
    allow_insecure_http: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    proxy: str | None = None  # settled by _network.proxy_for; may hold the proxy's credentials
    default_headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        proxy = redact_url(self.proxy) if self.proxy else None
        return (
            f"ClientConfig(base_url={self.base_url!r}, timeout={self.timeout!r}, "
            f"retry={self.retry!r}, max_connections={self.max_connections!r}, "
            f"max_response_bytes={self.max_response_bytes!r}, proxy={proxy!r}, api_key='***')"
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        trust_env: bool = True,
        default_headers: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        with _naming(ENV_API_KEY if api_key is None else None):
            key = check_api_key(
                api_key if api_key is not None else os.environ.get(ENV_API_KEY), env=ENV_API_KEY
            )
        check_optional_str(base_url, "base_url")
        if base_url == "":
            raise ValueError(
                f"base_url must not be empty; pass None to use ${ENV_BASE_URL} or "
                f"{DEFAULT_BASE_URL}"
            )
        with _naming(ENV_BASE_URL if base_url is None and os.environ.get(ENV_BASE_URL) else None):
            url = check_base_url(
                base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
                allow_insecure_http=allow_insecure_http,
            )
        check_retry_choice(max_retries, retry, RetryPolicy)
        policy = retry or RetryPolicy(max_retries=3 if max_retries is None else max_retries)
        check_bool(trust_env, "trust_env")
        return cls(
            api_key=Secret(key),
            base_url=url,
            timeout=Timeout.coerce(timeout),
            retry=policy,
            max_connections=check_max_connections(max_connections),
            allow_insecure_http=allow_insecure_http,
            max_response_bytes=check_int(max_response_bytes, "max_response_bytes", minimum=1),
            proxy=proxy_for(
                url, proxy=proxy, trust_env=trust_env, allow_insecure_http=allow_insecure_http
            ),
            default_headers=check_default_headers(default_headers),
        )
