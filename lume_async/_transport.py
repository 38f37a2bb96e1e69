"""The HTTP transport: requests through the client's pool, error mapping, and the only retry loop.

Every answer is read whole (within ``max_response_bytes``) before it is handed on, so a
connection goes back to the pool before any row reaches the caller.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import time
from collections.abc import Mapping
from logging import INFO
from typing import Final

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._clock import SYSTEM_CLOCK, Clock
from ._config import ClientConfig, RetryPolicy, Timeout
from ._connections import Connections
from ._deadlines import Deadlines
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InvalidRequestError,
    LumeError,
    NotFoundError,
    ServerError,
)
from ._http_log import log_attempt
from ._http_log import logger as log
from ._http_types import (
    BadAnswer,
    CertificateFailed,
    ConnectFailed,
    CutShort,
    Disconnected,
    HTTPFailure,
    TLSFailed,
    encode_query,
    quote_path,
)
from ._pool import USER_AGENT, Pool, Session, mask_request_info, request_headers
from ._responses import (
    MAX_ERROR_READ,
    Response,
    answer_too_large,
    error_from_response,
    read_body,
    read_error_body,
)
from ._retry import RetryBudget, RetryEvent, backoff, is_retryable, log_retry
from ._secrets import forget_frames

__all__ = ["USER_AGENT", "RequestOptions", "Response", "Transport"]

# Per-call settings objects cached by value; a caller that makes a view per call (a timeout
# computed each time) must not grow these without bound.
_CACHE_SIZE: Final = 32

_UNLIMITED: Final = contextlib.nullcontext()
_JSON_HEADER: Final = b"Content-Type: application/json\r\n"


@attrs.frozen
class RequestOptions:
    """Per-call settings: the client's defaults, or those of ``with_options(...)``."""

    timeout: Timeout
    retry: RetryPolicy


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
        self._pool = Pool(config, ssl_context=self._ssl)
        self._limit = config.max_response_bytes
        self._error_limit = min(self._limit, MAX_ERROR_READ)  # what read_error_body reads
        self._key = config.api_key
        # One retry budget per (budget_ratio, budget_floor): the client's own, and one for any
        # with_options view that asks for other budget settings.
        self._budgets: dict[tuple[float, float], RetryBudget] = {}
        self._rng = random.Random()
        # aiohttp's own timeouts, minus the total one (see request()), by Timeout; the last one
        # asked for is kept at hand, since most calls use the client's own.
        self._timeouts: dict[Timeout, aiohttp.ClientTimeout] = {}
        self._last_timeout: tuple[Timeout, aiohttp.ClientTimeout] | None = None
        self._deadlines = Deadlines()
        self.default_options = RequestOptions(timeout=config.timeout, retry=config.retry)
        self._own_budget = self.budget(config.retry)  # the one most calls draw on
        # What the session does not send by itself (see Pool): nothing, unless through a proxy.
        self._headers = request_headers(config)
        self._json_headers = {**self._headers, "Content-Type": "application/json"}

    @property
    def closed(self) -> bool:
        return self._pool.closed

    @property
    def session(self) -> Session | None:
        """The connection pool's session in use, if any (for diagnostics and tests)."""
        return self._pool.active

    def budget(self, policy: RetryPolicy | None = None) -> RetryBudget:
        """The retry budget that calls made under ``policy`` (default: the client's) draw on."""
        policy = policy or self._config.retry
        key = (policy.budget_ratio, policy.budget_floor)
        budget = self._budgets.get(key)
        if budget is None:
            if len(self._budgets) >= _CACHE_SIZE:
                # The oldest other settings start afresh if they come back; the client's own stay.
                own = self._config.retry
                oldest = next(k for k in self._budgets if k != (own.budget_ratio, own.budget_floor))
                del self._budgets[oldest]
            budget = self._budgets[key] = RetryBudget(
                policy.budget_ratio, policy.budget_floor, clock=self._clock
            )
        return budget

    def _socket_timeouts(self, timeout: Timeout) -> aiohttp.ClientTimeout:
        """aiohttp's per-socket timeouts for ``timeout`` (its total is enforced in request())."""
        last = self._last_timeout
        if last is not None and last[0] is timeout:
            return last[1]
        cached = self._timeouts.get(timeout)
        if cached is None:
            if len(self._timeouts) >= _CACHE_SIZE:
                del self._timeouts[next(iter(self._timeouts))]
            cached = aiohttp.ClientTimeout(
                total=None, sock_connect=timeout.connect, sock_read=timeout.read
            )
            self._timeouts[timeout] = cached
        self._last_timeout = (timeout, cached)
        return cached

    async def aclose(self) -> None:
        self._deadlines.close()  # first: requests in flight end as the pool closes under them
        await self._pool.aclose()

    def redact(self, body: bytes) -> bytes:
        """An error body with the key masked: a server may echo it back, and what it says ends
        up in messages, ``APIError.body`` and logs."""
        return self._key.redact(body)

    def _redact_headers(self, headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str]:
        """``headers`` with the key masked in their values (a copy only when needed)."""
        clean = [
            (name, self.redact(value.encode(errors="surrogateescape")).decode(errors="replace"))
            for name, value in headers.items()
        ]
        if all(a[1] == b for a, b in zip(clean, headers.values(), strict=True)):
            return headers
        return CIMultiDictProxy(CIMultiDict(clean))

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
        gone_is_done: bool = False,
    ) -> Response:
        """Send one logical request; return a 2xx answer or raise a LumeError.

        ``route`` is the path template, used in retry logs. ``retryable`` says whether repeating the
        request is safe (reads, PATCH, cancel, and creates that carry an ``Idempotency-Key``).
        ``operation`` names what a PermissionDeniedError was refused ("cancel", "update").
        ``gone_is_done`` (for deletes): a 404 to a retry, after an attempt whose answer was lost,
        means that attempt did the work; the 404 answer is returned instead of raised.
        """
        opts = options or self.default_options
        policy = opts.retry
        pooled = self._pool.current() or await self._pool.session()
        clock = self._clock
        limit = self._limit
        session: aiohttp.ClientSession | None = None
        direct: Connections | None = None
        if type(pooled) is Connections:
            direct = pooled
            query = None if params is None else encode_query(params)
            path = quote_path(path)
            extra = _JSON_HEADER if body is not None else b""
            if idempotency_key is not None:
                extra += _idempotency_header(idempotency_key)
        else:
            assert isinstance(pooled, aiohttp.ClientSession)
            session = pooled
            url = self._base_url + path
            headers = self._json_headers if body is not None else (self._headers or None)
            if idempotency_key is not None:
                headers = {**(headers or {}), "Idempotency-Key": idempotency_key}
            socket_timeouts = self._socket_timeouts(opts.timeout)
        logged = log.isEnabledFor(INFO)  # nothing is gathered for a log that is off
        started = 0.0
        # The first attempt's share of the deadline is all of it: no clock read for it.
        deadline = None if policy.deadline is None else clock.monotonic() + policy.deadline
        total = opts.timeout.total
        if policy.deadline is not None and (total is None or policy.deadline < total):
            total = policy.deadline
        budget = self._own_budget if policy is self._config.retry else self.budget(policy)
        budget.deposit()
        try:
            attempt = withdrawn_at = 0  # withdrawn_at: when the last retry's token was taken
            answer_lost = False  # an earlier attempt may have been done without us hearing
            while True:
                attempt += 1
                if attempt > 1:
                    total = opts.timeout.total
                    if deadline is not None:
                        remaining = max(deadline - clock.monotonic(), 0.001)
                        total = remaining if total is None else min(total, remaining)
                failure: LumeError
                if logged:
                    started = time.perf_counter()
                try:
                    # The attempt's total time is bounded here (see _deadlines) rather than by
                    # aiohttp's total timeout, which costs several timers and contexts per request.
                    with _UNLIMITED if total is None else self._deadlines.limit(total):
                        if direct is not None:
                            answer = await direct.request(
                                method,
                                path,
                                query,
                                extra,
                                body,
                                connect=opts.timeout.connect,
                                read=opts.timeout.read,
                                limit=limit,
                                error_limit=self._error_limit,
                                repeatable=retryable,
                            )
                            status = answer.status
                            if status < 300:
                                if answer.over:
                                    raise answer_too_large(answer, limit, f"{method} {route}")
                                response = Response(status, answer.headers, answer.body)
                            else:
                                response = Response(
                                    status,
                                    self._redact_headers(answer.headers),
                                    self.redact(answer.body),
                                )
                            del answer
                        else:
                            assert session is not None
                            response = await self._via_aiohttp(
                                session, method, url, params, body, headers, socket_timeouts, route
                            )
                except (aiohttp.ClientError, HTTPFailure, TimeoutError, OSError) as exc:
                    if self._pool.closed:  # closed under this call (another task or thread)
                        raise LumeError("this client was closed during the request") from exc
                    failure = _wrap_transport_error(exc, method, route)
                    if logged:
                        log_attempt(method, route, attempt=attempt, started=started, error=failure)
                else:
                    if logged:
                        log_attempt(
                            method,
                            route,
                            attempt=attempt,
                            started=started,
                            status=response.status,
                            request_id=response.request_id,
                            params=params,
                            size=len(response.body),
                        )
                    if response.status < 300:
                        if attempt > 1:
                            budget.refund(withdrawn_at)
                        return response
                    if response.status < 400:
                        raise APIError(
                            f"unexpected redirect ({response.status}) to "
                            f"{response.headers.get('Location', '?')!r}; "
                            "redirects are not followed",
                            status_code=response.status,
                            request_id=response.request_id,
                        )
                    if gone_is_done and answer_lost and response.status == 404:
                        return response
                    failure = error_from_response(
                        response, now=clock.time(), not_found=not_found, operation=operation
                    )
                    del response  # not held (up to max_response_bytes) through a retry's wait
                answer_lost = answer_lost or _maybe_done(failure)
                if not (retryable and attempt <= policy.max_retries and _worth_retrying(failure)):
                    raise failure
                if self._pool.closed:
                    failure.add_note("not retried: the client was closed during the request")
                    raise failure
                asked = getattr(failure, "retry_after", None)
                if asked is not None and asked > policy.max_retry_after:
                    failure.add_note(
                        f"not retried: the server asked to wait {asked:g} s, over max_retry_after"
                    )
                    raise failure
                wait = backoff(policy, attempt - 1, failure, self._rng)
                if deadline is not None and asked is not None:
                    # Cut the jitter above a Retry-After (to half the time left), not the ask.
                    left = deadline - clock.monotonic()
                    if wait > left >= asked:
                        wait = asked + (left - asked) / 2
                if deadline is not None and clock.monotonic() + wait > deadline:
                    failure.add_note(
                        f"not retried: the {policy.deadline:g} s retry deadline is near"
                    )
                    raise failure
                if not budget.try_withdraw():
                    failure.add_note(
                        "not retried: the client's retry budget is spent (see RetryPolicy)"
                    )
                    raise failure
                withdrawn_at = budget.withdrawn_at()
                log_retry(RetryEvent(method, route, attempt, wait, failure), policy)
                await clock.sleep(wait)
        except BaseException:  # error reporters read frame locals: drop the secrets'
            body = headers = None  # (a webhook secret in the body; the key, through a proxy)
            raise

    async def _via_aiohttp(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        params: Mapping[str, str | int] | list[tuple[str, str | int]] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        socket_timeouts: aiohttp.ClientTimeout,
        route: str,
    ) -> Response:
        """One attempt through aiohttp (the way through a proxy)."""
        limit = self._limit
        resp = await session.request(
            method,
            url,
            params=params,
            data=body,
            headers=headers,
            timeout=socket_timeouts,
            allow_redirects=False,
            ssl=self._ssl,
            proxy=self._config.proxy,
        )
        body = headers = None  # not in this frame's locals if reading fails (see request())
        try:
            status = resp.status
            if status < 300:
                return Response(status, resp.headers, await read_body(resp, limit, method, route))
            # What a failed answer says reaches messages, logs and error reports.
            return Response(
                status,
                self._redact_headers(resp.headers),
                self.redact(await read_error_body(resp, limit)),
            )
        finally:
            resp.release()  # the connection goes back (or is dropped, if cut short)


def _idempotency_header(key: str) -> bytes:
    if "\r" in key or "\n" in key or "\0" in key:
        raise ValueError("an Idempotency-Key must be one line")
    return f"Idempotency-Key: {key}\r\n".encode()


def _maybe_done(failure: LumeError) -> bool:
    """Whether the failed attempt may have been carried out all the same (its answer was lost)."""
    return isinstance(failure, APIConnectionError | ServerError)


def _worth_retrying(failure: LumeError) -> bool:
    if isinstance(failure, InvalidRequestError):
        # The first attempt of this create is still being handled (it timed out on our side):
        # asking again with the same key soon gets its answer replayed.
        return failure.status_code == 409 and failure.code == "idempotency_in_flight"
    # A certificate that failed verification will fail the same way next time.
    return is_retryable(failure) and not isinstance(
        failure.__cause__, aiohttp.ClientSSLError | TLSFailed
    )


def _wrap_transport_error(exc: BaseException, method: str, route: str) -> LumeError:
    where = f"{method} {route}"
    if isinstance(exc, HTTPFailure):
        if isinstance(exc, TimeoutError):
            err: LumeError = APITimeoutError(f"{where} timed out ({exc})")
        elif isinstance(exc, CertificateFailed):
            err = APIConnectionError(
                f"{where}: TLS certificate verification failed: {exc.certificate_error}"
            )
        elif isinstance(exc, ConnectFailed | TLSFailed):
            err = APIConnectionError(f"{where}: {exc}")
        elif isinstance(exc, Disconnected):
            err = APIConnectionError(f"{where}: the server closed the connection without answering")
        elif isinstance(exc, CutShort):
            err = APIConnectionError(f"{where}: the answer was cut short ({exc})")
        elif isinstance(exc, BadAnswer):
            err = APIConnectionError(f"{where}: the server's answer is not valid HTTP ({exc})")
        else:
            err = APIConnectionError(f"{where}: {exc}")
        err.__cause__ = forget_frames(exc)
        return err
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        err = APITimeoutError(f"{where} timed out")
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        err = APIConnectionError(
            f"{where}: TLS certificate verification failed: {exc.certificate_error}"
        )
    elif isinstance(exc, aiohttp.ClientHttpProxyError):
        # Its text names the proxy URL, credentials and all: keep the status, drop the rest.
        return APIConnectionError(
            f"{where}: the proxy refused to relay it ({exc.status} {exc.message})"
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
    # aiohttp's frames hold the request's headers and unsent bytes in their locals, and its
    # errors the request's headers: neither is kept as is under an SDK error, where error
    # reporters would serialise them.
    mask_request_info(exc)
    err.__cause__ = forget_frames(exc)
    return err
