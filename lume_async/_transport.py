"""The HTTP transport: one aiohttp session per client, error mapping, and the only retry loop.

The session is created lazily on the loop of the first request. Every answer is read whole before
it is handed on, so a connection goes back to the pool before any row reaches the caller.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from . import _converter
from ._clock import SYSTEM_CLOCK, Clock
from ._config import ClientConfig, RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    DuplicateRunError,
    InvalidRequestError,
    LumeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._retry import RetryBudget, RetryEvent, backoff, is_retryable, log_retry
from ._version import __version__

__all__ = ["RequestOptions", "Response", "Transport"]

USER_AGENT: Final = f"lume-sdk-python/{__version__} aiohttp/{aiohttp.__version__}"

_STATUS_ERRORS: Final[dict[int, type[APIError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}

# Pools left behind by a fork or by a closed event loop. Closing them would touch another loop's
# selector (after a fork, the parent's epoll set), so they are only kept from being collected.
_ABANDONED: list[tuple[aiohttp.ClientSession, aiohttp.BaseConnector | None]] = []


class _Secret(str):
    """The API key as sent: a str whose repr hides it, so headers captured in a traceback's
    locals (as error reporters do) or printed while debugging never show it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


@attrs.frozen
class RequestOptions:
    """Per-call settings: the client's defaults, or those of ``with_options(...)``."""

    timeout: Timeout
    retry: RetryPolicy


@attrs.frozen
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any:
        try:
            return _converter.loads(self.body)
        except ResponseValidationError as exc:
            raise ResponseValidationError(str(exc), request_id=self.request_id) from exc


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    """The server's wait hint: ``retry-after-ms`` when sent (finer), else ``Retry-After``."""
    millis = _parse_retry_after(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return _parse_retry_after(headers.get("Retry-After"))


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare for this API; fall back to our own backoff
    return max(0.0, seconds)


def error_from_response(
    response: Response,
    *,
    not_found: type[NotFoundError] = NotFoundError,
    operation: str | None = None,
) -> APIError:
    """Build the typed error for a 4xx/5xx answer, whatever its body looks like.

    ``operation`` is what the request meant to do; a 403 names it unless the body says better.
    """
    status = response.status
    body: Any = None
    try:
        body = _converter.loads(response.body) if response.body else None
    except ResponseValidationError:
        body = None
    detail: Any = body.get("detail") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    error_id = body.get("error_id") if isinstance(body, dict) else None
    if isinstance(detail, list):
        message = "; ".join(_describe_issue(item) for item in detail) or "invalid request"
    elif isinstance(detail, str) and detail:
        message = detail
    else:
        text = response.body[:200].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status}"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code if isinstance(code, str) else None,
        "error_id": error_id if isinstance(error_id, str) else None,
        "request_id": response.request_id,
        "body": body,
        "retry_after": _retry_after(response.headers),
    }
    if status == 409 and kwargs["code"] == "duplicate_source_path":
        existing = body.get("existing_run_id") if isinstance(body, dict) else None
        return DuplicateRunError(message, existing_run_id=existing, **kwargs)
    if status == 404:
        return not_found(message, **kwargs)
    if status == 403:
        said = body.get("operation") if isinstance(body, dict) else None
        refused = said if isinstance(said, str) and said else operation
        return PermissionDeniedError(message, operation=refused, **kwargs)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, **kwargs)


def _describe_issue(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
    msg = str(item.get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg


class Transport:
    """Sends requests, retries what is safe to repeat, and maps failures onto the error tree."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._config = config
        self._clock = clock
        self._base_url = config.base_url
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._session_pid = 0
        self._closed = False
        # One retry budget per (budget_ratio, budget_floor): the client's own, and one for any
        # with_options view that asks for other budget settings.
        self._budgets: dict[tuple[float, float], RetryBudget] = {}
        self._rng = random.Random()
        self._timeouts: dict[Timeout, aiohttp.ClientTimeout] = {}
        self.default_options = RequestOptions(timeout=config.timeout, retry=config.retry)

    @property
    def closed(self) -> bool:
        return self._closed

    def budget(self, policy: RetryPolicy | None = None) -> RetryBudget:
        """The retry budget that calls made under ``policy`` (default: the client's) draw on."""
        policy = policy or self._config.retry
        key = (policy.budget_ratio, policy.budget_floor)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = RetryBudget(
                policy.budget_ratio, policy.budget_floor, clock=self._clock
            )
        return budget

    def _client_timeout(self, timeout: Timeout, remaining: float | None) -> aiohttp.ClientTimeout:
        if remaining is not None and (timeout.total is None or remaining < timeout.total):
            return aiohttp.ClientTimeout(
                total=max(remaining, 0.001), sock_connect=timeout.connect, sock_read=timeout.read
            )
        cached = self._timeouts.get(timeout)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=timeout.total, sock_connect=timeout.connect, sock_read=timeout.read
            )
            self._timeouts[timeout] = cached
        return cached

    def _session_loop_closed(self) -> bool:
        return self._session_loop is None or self._session_loop.is_closed()

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._session_loop is loop:
            return session
        if self._closed:
            raise LumeError("this client is closed; create a new one")
        if session is not None:
            if self._session_pid == os.getpid() and not self._session_loop_closed():
                raise LumeError(
                    "this client is in use on another running event loop; "
                    "create one client per event loop"
                )
            # The old pool belongs to a forked parent or to a loop that has closed: it cannot be
            # closed from here without touching another loop's selector, so it is set aside
            # (kept referenced, never used again) and a new pool is made on this loop.
            _ABANDONED.append((session, session.connector))
            session.detach()
        connector = aiohttp.TCPConnector(
            limit=self._config.max_connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                "lume-api-key": _Secret(self._config.api_key),
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            skip_auto_headers=("Accept-Encoding",),
            raise_for_status=False,
            trust_env=False,
        )
        self._session_loop = loop
        self._session_pid = os.getpid()
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        if self._session_pid != os.getpid():
            _ABANDONED.append((session, session.connector))
            session.detach()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._session_loop:
            await session.close()
        elif self._session_loop is not None and not self._session_loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(session.close(), self._session_loop)
            await asyncio.wrap_future(fut)

    async def request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        params: Mapping[str, str | int] | list[tuple[str, str | int]] | None = None,
        body: bytes | None = None,
        retryable: bool,
        idempotency_key: str | None = None,
        options: RequestOptions | None = None,
        not_found: type[NotFoundError] = NotFoundError,
        operation: str | None = None,
    ) -> Response:
        """Send one logical request; return a 2xx answer or raise a LumeError.

        ``route`` is the path template, used in retry logs. ``retryable`` says whether repeating the
        request is safe (reads, PATCH, cancel, and creates that carry an ``Idempotency-Key``).
        ``operation`` names what a PermissionDeniedError was refused ("cancel", "update").
        """
        opts = options or self.default_options
        policy = opts.retry
        session = self._session_for_this_loop()
        url = self._base_url + path
        headers: dict[str, str] | None = None
        if body is not None:
            headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers = headers or {}
            headers["Idempotency-Key"] = idempotency_key
        clock = self._clock
        deadline = None if policy.deadline is None else clock.monotonic() + policy.deadline
        budget = self.budget(policy)
        budget.deposit()
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - clock.monotonic()
            timeout = self._client_timeout(opts.timeout, remaining)
            failure: LumeError
            try:
                async with session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    ssl=self._ssl,
                ) as resp:
                    payload = await resp.read()
                    response = Response(resp.status, resp.headers, payload)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failure = _wrap_transport_error(exc, method, route)
            else:
                if response.status < 300:
                    if attempt > 1:
                        budget.refund()
                    return response
                if response.status < 400:
                    raise APIError(
                        f"unexpected redirect ({response.status}) to "
                        f"{response.headers.get('Location', '?')!r}; redirects are not followed",
                        status_code=response.status,
                        request_id=response.request_id,
                    )
                failure = error_from_response(response, not_found=not_found, operation=operation)
            if not (retryable and attempt <= policy.max_retries and _worth_retrying(failure)):
                raise failure
            asked = getattr(failure, "retry_after", None)
            if asked is not None and asked > policy.max_retry_after:
                failure.add_note(
                    f"not retried: the server asked to wait {asked:g} s, over max_retry_after"
                )
                raise failure
            wait = min(backoff(policy, attempt - 1, failure, self._rng), policy.max_retry_after)
            if deadline is not None and clock.monotonic() + wait > deadline:
                failure.add_note(f"not retried: the {policy.deadline:g} s retry deadline is near")
                raise failure
            if not budget.try_withdraw():
                failure.add_note(
                    "not retried: the client's retry budget is spent (see RetryPolicy)"
                )
                raise failure
            log_retry(RetryEvent(method, route, attempt, wait, failure), policy)
            await clock.sleep(wait)


def _worth_retrying(failure: LumeError) -> bool:
    if isinstance(failure, InvalidRequestError):
        # The first attempt of this create is still being handled (it timed out on our side):
        # asking again with the same key soon gets its answer replayed.
        return failure.status_code == 409 and failure.code == "idempotency_in_flight"
    # A certificate that failed verification will fail the same way next time.
    return is_retryable(failure) and not isinstance(failure.__cause__, aiohttp.ClientSSLError)


def _wrap_transport_error(exc: BaseException, method: str, route: str) -> LumeError:
    where = f"{method} {route}"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        err: LumeError = APITimeoutError(f"{where} timed out")
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        err = APIConnectionError(
            f"{where}: TLS certificate verification failed: {exc.certificate_error}"
        )
    elif isinstance(exc, aiohttp.ClientConnectorError):
        err = APIConnectionError(
            f"{where}: cannot connect to {exc.host}:{exc.port} ({exc.strerror})"
        )
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        err = APIConnectionError(f"{where}: the server closed the connection without answering")
    elif isinstance(exc, aiohttp.ClientPayloadError):
        err = APIConnectionError(f"{where}: the answer was cut short ({exc})")
    else:
        err = APIConnectionError(f"{where}: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err
