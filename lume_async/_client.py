"""``AsyncLume``: the asyncio client, its settings, and the seed-compatible top-level calls."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import attrs

from ._bound import BoundToClient
from ._client_core import ClientCore
from ._clock import SYSTEM_CLOCK, Clock
from ._config import DEFAULT_MAX_RESPONSE_BYTES, ClientConfig, RetryPolicy, Timeout
from ._exceptions import LumeError, RunTimeoutError
from ._flows import AsyncFlows
from ._network import tls_context
from ._run import AsyncRun, failure_with_rejects
from ._runs import AsyncRuns
from ._timers import run_within
from ._transport import RequestOptions
from ._validation import (
    check_clock,
    check_interval,
    check_retry_choice,
    check_ssl_context,
    check_timeout,
    check_webhook_receiver,
)
from ._webhook_endpoints import AsyncWebhookEndpoints
from .models import RejectedRow
from .models._request import new_idempotency_key

if TYPE_CHECKING:
    from .webhooks import WebhookReceiver

__all__ = ["AsyncLume", "ProcessResult"]

R = TypeVar("R")

UNSET: Any = object()
"""The default of ``with_options(timeout=...)``: keep the current timeout (None means no limit)."""


@attrs.frozen
class ProcessResult(Generic[R]):
    """What ``process()`` returns: the terminal run, its mapped rows and its rejected rows.

    Attributes:
        run: The run, terminal (SUCCEEDED or PARTIAL_FAILED).
        rows: Every mapped row, in order.
        rejects: Every rejected row, in order.
    """

    run: R
    rows: list[dict[str, Any]]
    rejects: list[RejectedRow]


class AsyncLume(BoundToClient):
    """The asyncio client for Lume runs.

    Its connection pool is made lazily on the loop of the first request and reused for every
    call; close it with ``await lume.aclose()`` or ``async with AsyncLume(...) as lume``. The API
    key comes from ``api_key`` or ``LUME_API_KEY``, the URL from ``base_url`` or ``LUME_BASE_URL``.

    ``clock`` is where the client reads time and waits: retry backoff and deadlines, the retry
    budget's window, the poller's pauses, and the timeouts of ``wait()``, ``wait_all()`` and
    ``as_completed()``. It is real time unless given; tests pass a
    ``lume_async.testing.VirtualClock`` to run all of these in virtual time, without waiting.
    Network timeouts (``timeout=``) bound real sockets and stay in real time.

    ``max_response_bytes`` bounds what one answer can make the client hold, counted after
    decompression and checked while the body streams in (32 MiB by default, far above the
    largest page of 100 runs); a larger answer raises ``ResponseTooLargeError``.
    Requests go through ``proxy`` (``http://[user:pass@]host:port``), else, unless
    ``trust_env=False``, through the proxy that ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``
    name for the base URL (``NO_PROXY`` excepted; a loopback base URL never is). TLS trusts
    ``ssl_context``, else the PEM bundle at ``ca_bundle`` or ``$LUME_CA_BUNDLE``, else the
    system's CAs. ``default_headers`` go with every request; they cannot replace the API key.

    Raises:
        AuthenticationError: No API key was given and ``LUME_API_KEY`` is not set.
        ValueError: A setting is out of range; ``base_url`` (or the proxy it would go through)
            is plain HTTP to a host other than loopback without ``allow_insecure_http=True``;
            ``ca_bundle`` cannot be read; ``default_headers`` would set the key.
        TypeError: A setting has the wrong type.
    """

    _refusal = (
        "clients cannot be pickled or copied: each holds connections and an API key; make a"
        " client where it is used (in each process)"
    )

    runs: AsyncRuns
    """Create, read, list, wait for and cancel runs."""
    flows: AsyncFlows
    """The flows this API key can run."""
    webhook_endpoints: AsyncWebhookEndpoints
    """Where the service sends run completion events."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: Timeout | float | None = 60.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        webhooks: WebhookReceiver | None = None,
        allow_insecure_http: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        trust_env: bool = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        config = ClientConfig.resolve(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            max_connections=max_connections,
            allow_insecure_http=allow_insecure_http,
            max_response_bytes=max_response_bytes,
            proxy=proxy,
            trust_env=trust_env,
            default_headers=default_headers,
        )
        check_ssl_context(ssl_context)
        ssl_context = tls_context(ssl_context, ca_bundle)
        check_webhook_receiver(webhooks)
        if clock is not None:
            check_clock(clock)
        core = ClientCore(
            config, clock=clock or SYSTEM_CLOCK, ssl_context=ssl_context, webhooks=webhooks
        )
        self._attach(core, None)

    def _attach(self, core: ClientCore, options: RequestOptions | None) -> None:
        """Bind this client (or view) to the shared core with its own per-call settings."""
        self._core = core
        self._options = options
        self.runs = AsyncRuns(core.runs_with(options))
        self.flows = AsyncFlows(core.transport, options)
        self.webhook_endpoints = AsyncWebhookEndpoints(core.transport, options)

    @property
    def base_url(self) -> str:
        """The service's URL, without a trailing slash."""
        return self._core.config.base_url

    @property
    def timeout(self) -> Timeout:
        """The timeouts of each HTTP request this client (or view) sends."""
        return (self._options or self._core.default_options).timeout

    @property
    def retry(self) -> RetryPolicy:
        """How this client (or view) retries failed requests (connection errors, 408, 429, 5xx)."""
        return (self._options or self._core.default_options).retry

    def with_options(
        self,
        *,
        timeout: Timeout | float | None = UNSET,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncLume:
        """A view of this client with other per-call settings; it shares connections and waiting.

        A ``retry`` policy with other ``budget_ratio`` / ``budget_floor`` values than the
        client's draws on a retry budget of its own (see ``RetryPolicy``).

        Raises:
            ValueError: ``max_retries`` and ``retry`` are both given, or a value is out of range.
            TypeError: A setting has the wrong type.
        """
        current = self._options or self._core.default_options
        check_retry_choice(max_retries, retry, RetryPolicy)
        if max_retries is not None:
            retry = attrs.evolve(current.retry, max_retries=max_retries)
        options = RequestOptions(
            timeout=current.timeout if timeout is UNSET else Timeout.coerce(timeout),
            retry=retry or current.retry,
        )
        return _AsyncLumeView(self._core, options)

    # -- seed-compatible top level -------------------------------------------------------------
    async def run(
        self,
        flow_version: str,
        source_path: str | None = None,
        *,
        run_metadata: Mapping[str, Any] | None = None,
        force_rerun: bool = False,
        label: str | None = None,
        tags: Iterable[str] = (),
        source_data: Sequence[Mapping[str, Any]] | None = None,
        idempotency_key: str | None = None,
        idempotency_namespace: str | None = None,
        run_owner: str | None = None,
        monitoring_by: Iterable[str] = (),
        monitoring_groups: Iterable[str] = (),
        managing_by: Iterable[str] = (),
        managing_groups: Iterable[str] = (),
    ) -> AsyncRun:
        """Start a run and return at once (same as ``runs.create``).

        Raises:
            DuplicateRunError: This (flow_version, source_path) already SUCCEEDED or
                PARTIAL_FAILED and ``force_rerun`` is not set; ``existing_run_id`` names that run.
            NotFoundError: The flow version does not exist.
            InvalidRequestError: The service refused the request (422).
            ValueError: An argument is malformed (before any request).
            TypeError: An argument has the wrong type (before any request).
        """
        return await self.runs.create(
            flow_version,
            source_path,
            source_data=source_data,
            run_metadata=run_metadata,
            force_rerun=force_rerun,
            label=label,
            tags=tags,
            idempotency_key=idempotency_key,
            idempotency_namespace=idempotency_namespace,
            run_owner=run_owner,
            monitoring_by=monitoring_by,
            monitoring_groups=monitoring_groups,
            managing_by=managing_by,
            managing_groups=managing_groups,
        )

    async def run_status(self, run_id: str) -> AsyncRun:
        """The run with this id, fresh from the service (same as ``runs.get``).

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            ValueError: ``run_id`` is not a run id.
        """
        return await self.runs.get(run_id)

    async def process(
        self,
        flow_version: str,
        source_path: str | None = None,
        *,
        source_data: Sequence[Mapping[str, Any]] | None = None,
        run_metadata: Mapping[str, Any] | None = None,
        force_rerun: bool = False,
        label: str | None = None,
        tags: Iterable[str] = (),
        timeout: float | None = 3600,
        poll_interval: float = 5,
        idempotency_key: str | None = None,
        idempotency_namespace: str | None = None,
    ) -> ProcessResult[AsyncRun]:
        """Create a run, wait for it, and collect its mapped and rejected rows.

        PARTIAL_FAILED returns normally, with the rejected rows in ``rejects``. Meant for small
        batches: every row is held in memory; page through ``results()`` for large ones. With
        ``idempotency_namespace`` (or a fixed ``idempotency_key``), calling it again after a
        crash or a timeout picks up the run the first call made instead of starting another.

        Raises:
            RunFailedError: The run ended FAILED, CRASHED or CANCELED; its ``rejects`` holds the
                rejected rows and their reasons when the run kept them (as a run whose every row
                failed validation does).
            RunTimeoutError: The whole call (creating the run, waiting for it and collecting its
                rows) was not done within ``timeout`` seconds of the client's clock.
            DuplicateRunError: As for ``run()``.
        """
        check_timeout(timeout)
        check_interval(poll_interval)
        if idempotency_key is None and idempotency_namespace is None:
            idempotency_key = new_idempotency_key()  # to name, should the answer come too late
        again = (
            f"idempotency_namespace={idempotency_namespace!r}"
            if idempotency_namespace is not None
            else f"idempotency_key={idempotency_key!r}"
        )
        started: list[AsyncRun] = []

        async def work() -> ProcessResult[AsyncRun]:
            run = await self.run(
                flow_version,
                source_path,
                source_data=source_data,
                run_metadata=run_metadata,
                force_rerun=force_rerun,
                label=label,
                tags=tags,
                idempotency_key=idempotency_key,
                idempotency_namespace=idempotency_namespace,
            )
            started.append(run)
            await run.wait(timeout=None, poll_interval=poll_interval)
            if run.status.is_failure:
                raise await failure_with_rejects(run)
            try:
                rows = await run.results().collect()
                rejects = await run.rejects().collect()
            except LumeError as exc:
                exc.add_note(
                    f"run {run.id} ended {run.status.value}; its rows can be read again with "
                    f"runs.get({run.id!r}) then .results() and .rejects()"
                )
                raise
            return ProcessResult(run=run, rows=rows, rejects=rejects)

        finished, result = await run_within(self._core.clock, timeout, work)
        if finished:
            assert result is not None
            return result
        assert timeout is not None
        if not started:
            raise RunTimeoutError(
                f"the create was not answered within {timeout:g} s and may have made a run all "
                f"the same: call again with {again} to get that run, not a second one"
            )
        run = started[0]
        if run.is_terminal:
            raise RunTimeoutError(
                f"run {run.id} ended {run.status.value}, but its rows were not all read "
                f"after {timeout:g} s",
                run=run,
            )
        raise RunTimeoutError(
            f"run {run.id} is still {run.status.value} after {timeout:g} s", run=run
        )

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def is_closed(self) -> bool:
        """True once the client is closed: its connections are gone and it sends no more."""
        return self._core.closed

    async def aclose(self) -> None:
        """Stop waiting, close the connections. Safe to call twice."""
        await self._core.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncLume base_url={self._core.config.base_url!r}>"


class _AsyncLumeView(AsyncLume):
    """What ``with_options`` returns: an ``AsyncLume`` on its parent's core, other settings."""

    def __init__(self, core: ClientCore, options: RequestOptions) -> None:
        self._attach(core, options)
