"""The runs core: the one way from runs to the wire, and of run states back to their handles.

The runs resource (``lume.runs``), run handles (``AsyncRun``) and the shared poller all go through
here: it sends the requests, decodes the answers and keeps each handle's state in a ``RunCell``,
which only ``RunCell.apply`` changes. Data flows one way: resource, handle, poller -> core ->
transport; nothing here calls back into them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import _converter
from ._batch_create import BatchCreate, ItemResult, name_the_key
from ._batch_get import batch_get_answer, malformed
from ._exceptions import InvalidRequestError, LumeError, RunNotFoundError
from ._listing_checks import check_listed_run, untrustworthy
from ._log_stream import follow
from ._pagination import AsyncPaginator, check_numbered_page, get_page, numbered_listing
from ._status import behind
from ._validation import (
    check_cursor,
    check_interval,
    check_page_size,
    check_permission_update,
    check_run_id,
    check_update,
)
from .models import LogEntry, Page, RejectedRow, RunData, RunRequest

if TYPE_CHECKING:
    from ._batch import ProgressCallback
    from ._clock import Clock
    from ._transport import RequestOptions, Response, Transport
    from ._waiting import Waiting

__all__ = ["RunCell", "RunsCore", "fetch_if_found"]

T = TypeVar("T")

logger = logging.getLogger("lume_async.runs")


class RunCell:
    """The latest known state of one run, as a handle shows it; only ``apply`` changes it."""

    __slots__ = ("_data",)

    def __init__(self, data: RunData) -> None:
        self._data = data

    @property
    def data(self) -> RunData:
        return self._data

    def apply(self, data: RunData) -> bool:
        """Take a newer answer about the run; True if its status moved.

        A late answer never moves a run back: not from a terminal status, nor to an earlier
        stage (``behind``), nor at the same status to an older ``updated_at`` (an answer
        overtaken by a later one, e.g. a read sent before an update); such an answer is left
        out whole.
        """
        current = self._data
        if behind(data.status, current.status):
            return False
        if data.status == current.status and data.updated_at < current.updated_at:
            return False
        self._data = data
        return current.status != data.status

    def holds(self, item: dict[str, Any]) -> bool:
        """True if ``item`` (a run as parsed JSON) says what the cell holds: nothing to decode.

        The same status and the same ``updated_at``, which the service moves on every
        transition and every change; anything unexpected in either is news to decode.
        """
        data = self._data
        if item.get("status") != data.status:  # a StrEnum: equal to its wire string
            return False
        updated = item.get("updated_at")
        if updated.__class__ is not str:
            return False
        try:
            return datetime.fromisoformat(updated) == data.updated_at
        except ValueError:
            return False

    def share_strings(self, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` (a run as parsed JSON, changed in place) with the cell's own id and source
        path strings where they are equal, so a run decoded from it holds no copies of them."""
        data = self._data
        if item.get("id") == data.id:
            item["id"] = data.id
        if data.source_path is not None and item.get("source_path") == data.source_path:
            item["source_path"] = data.source_path
        return item


async def fetch_if_found(transport: Transport, run_id: str) -> RunData | None:
    """One run by a direct GET (retried as reads are); None when the service answers 404."""
    run_id = check_run_id(run_id)
    try:
        response = await transport.request(
            "GET",
            f"/v1/runs/{run_id}",
            route="/v1/runs/{run_id}",
            retryable=True,
            not_found=RunNotFoundError,
            operation="read",
        )
    except RunNotFoundError:
        return None
    return _decode_run(response, compact=True, run_id=run_id)


class RunsCore:
    """Runs on the wire, with one set of per-call settings (a client's or a view's)."""

    def __init__(
        self,
        transport: Transport,
        *,
        waiting: Waiting,
        clock: Clock,
        options: RequestOptions | None = None,
        batch_create: BatchCreate | None = None,
    ) -> None:
        self._transport = transport
        self._waiting = waiting
        self._clock = clock
        self._options = options
        self._batch_create = batch_create or BatchCreate(transport, clock)

    @property
    def clock(self) -> Clock:
        """Where waits read time and sleep."""
        return self._clock

    def with_options(self, options: RequestOptions) -> RunsCore:
        """The same core with other per-call settings; it shares the poller."""
        return RunsCore(
            self._transport,
            waiting=self._waiting,
            clock=self._clock,
            options=options,
            batch_create=self._batch_create,
        )

    # -- one run -------------------------------------------------------------------------------
    async def create(self, request: RunRequest) -> tuple[RunData, bool]:
        """Create a run; every retry carries the request's Idempotency-Key.

        Returns the run and whether it was *reused*: the service answered 200, not 201, because
        a run of the same (flow_version, source_path) was still in flight. That run keeps its own
        label, tags and run metadata, so a difference from the request is logged.
        """
        unsent = self._transport.closed  # a closed client sends nothing: no key to name
        try:
            response = await self._transport.request(
                "POST",
                "/v1/runs",
                route="/v1/runs",
                body=request.wire_body(),
                retryable=True,
                idempotency_key=request.idempotency_key,
                options=self._options,
                operation="create",
            )
            # Runs are created by the thousand and read once they end: keep them small.
            data = _decode_run(response, compact=True)
        except LumeError as exc:
            if not unsent:
                name_the_key(exc, request.idempotency_key)
            raise
        reused = response.status == 200
        if reused:
            _log_reuse(request, data)
        return data, reused

    async def create_batch(self, requests: Sequence[RunRequest], body: bytes) -> list[ItemResult]:
        """Create with one ``batch-create`` (see ``_batch_create``): one result per request."""
        results = await self._batch_create(requests, body, self._options)
        for request, result in zip(requests, results, strict=True):
            if isinstance(result, tuple) and result[1]:
                _log_reuse(request, result[0])
        return results

    async def fetch(self, run_id: str) -> RunData:
        run_id = check_run_id(run_id)
        # The most frequent call of all: straight to the transport (each coroutine between the
        # caller and the socket costs time at every suspension).
        response = await self._transport.request(
            "GET",
            f"/v1/runs/{run_id}",
            route="/v1/runs/{run_id}",
            retryable=True,
            options=self._options,
            not_found=RunNotFoundError,
            operation="read",
        )
        return _decode_run(response, compact=False, run_id=run_id)

    async def patch(
        self,
        run_id: str,
        *,
        label: str | None,
        tags: Iterable[str] | None,
        run_owner: str | None = None,
        monitoring_by: Iterable[str] | None = None,
        monitoring_groups: Iterable[str] | None = None,
        managing_by: Iterable[str] | None = None,
        managing_groups: Iterable[str] | None = None,
    ) -> RunData:
        """Change a run; what is None is kept (PermissionDeniedError names the operation)."""
        run_id = check_run_id(run_id)
        permissions = check_permission_update(
            run_owner=run_owner,
            monitoring_by=monitoring_by,
            monitoring_groups=monitoring_groups,
            managing_by=managing_by,
            managing_groups=managing_groups,
        )
        body = check_update(label=label, tags=tags, permissions=permissions)
        operation = "update_permissions" if permissions else "update"
        return await self._run_request(
            "PATCH", run_id, "", body=_converter.dumps(body), operation=operation
        )

    async def cancel(self, run_id: str) -> RunData:
        run_id = check_run_id(run_id)
        try:
            return await self._run_request("POST", run_id, "/cancel", operation="cancel")
        except InvalidRequestError as exc:
            if exc.code != "run_already_finished":
                raise
        return await self.fetch(run_id)  # it ended otherwise: nothing to cancel

    async def _run_request(
        self,
        method: str,
        run_id: str,
        suffix: str,
        *,
        body: bytes | None = None,
        operation: str = "read",
    ) -> RunData:
        response = await self._transport.request(
            method,
            f"/v1/runs/{run_id}{suffix}",
            route=f"/v1/runs/{{run_id}}{suffix}",
            body=body,
            retryable=True,
            options=self._options,
            not_found=RunNotFoundError,
            operation=operation,
        )
        return _decode_run(response, compact=False, run_id=run_id)

    # -- many runs -------------------------------------------------------------------------------
    async def batch_get(self, run_ids: Sequence[str]) -> dict[str, RunData]:
        answer = await batch_get_answer(self._transport, run_ids, options=self._options)
        return answer.runs()

    async def batch_get_each(self, run_ids: Sequence[str]) -> dict[str, RunData | Exception]:
        """``batch_get``, an item that is not a run failing alone."""
        answer = await batch_get_answer(self._transport, run_ids, options=self._options)
        return answer.each()

    async def list_page(
        self, params: list[tuple[str, str | int]], cursor: str | None, page_size: int
    ) -> Page[RunData]:
        """One page of ``GET /v1/runs`` (already checked ``params``), from ``cursor``.

        ``cursor`` (the previous page's ``next_cursor``) replaces any cursor in ``params``.
        """
        if cursor is None:
            query = params
        else:
            query = [(k, v) for k, v in params if k != "cursor"]
            query.append(("cursor", cursor))
        response = await self._transport.request(
            "GET",
            "/v1/runs",
            route="/v1/runs",
            params=query,
            retryable=True,
            options=self._options,
            operation="read",
        )
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise malformed("run list", "expected {items, next_cursor}", response)
        request_id = response.request_id
        items = body["items"]
        if len(items) > page_size:  # refused before each of them costs a decode
            why = f"a page holds {len(items)} items, more than {page_size}"
            raise untrustworthy(request_id, why)
        runs = tuple(_converter.run_from_obj(item, request_id=request_id) for item in items)
        for run in runs:
            check_listed_run(run, query, request_id)
        next_cursor = body.get("next_cursor")
        try:  # what is followed must be what a saved cursor may be, to resume from it later
            check_cursor(next_cursor)
        except (TypeError, ValueError):
            why = "next_cursor is not a cursor (1 to 4096 printable ASCII characters)"
            raise malformed("run list", why, response) from None
        return Page(
            items=runs, size=page_size, next_cursor=next_cursor, request_id=response.request_id
        )

    # -- what a run produced ---------------------------------------------------------------------
    def listing(
        self, run_id: str, what: str, item_cls: type[T], page_size: int
    ) -> AsyncPaginator[T]:
        """A run's ``results``, ``rejects``, ``logs`` or ``input``, page by page."""
        run_id = check_run_id(run_id)
        return numbered_listing(
            self._transport,
            f"/v1/runs/{run_id}/{what}",
            f"/v1/runs/{{run_id}}/{what}",
            item_cls,
            page_size,
            options=self._options,
            not_found=RunNotFoundError,
            item_id=_reject_index if item_cls is RejectedRow else None,  # type: ignore[arg-type]
            # Served whole once a run has ended (results) or from its start (input): a total
            # that changes while they are read is a service not to be believed.
            fixed_total=what in ("results", "input"),
        )

    def follow_logs(
        self, run_id: str, page_size: int, poll_interval: float, cell: RunCell | None
    ) -> AsyncPaginator[LogEntry]:
        """A run's log entries as they are written, until it has ended (``cell`` kept current)."""
        run_id = check_run_id(run_id)
        check_page_size(page_size)
        check_interval(poll_interval)

        async def read_run() -> RunData:
            data = await self.fetch(run_id)
            if cell is not None:
                self.took(cell, data)
            return data

        def stream() -> AsyncIterator[Page[LogEntry]]:
            return follow(
                read_run=read_run,
                read_page=lambda n: self.page(run_id, "logs", LogEntry, n, page_size),
                page_size=page_size,
                poll_interval=poll_interval,
                clock=self._clock,
            )

        return AsyncPaginator(stream=stream, page_size=page_size)

    async def page(
        self, run_id: str, what: str, item_cls: type[T], page: int, page_size: int
    ) -> Page[T]:
        """One page of a run's ``results``, ``rejects``, ``logs`` or ``input`` (args checked)."""
        answer = await get_page(
            self._transport,
            f"/v1/runs/{run_id}/{what}",
            f"/v1/runs/{{run_id}}/{what}",
            item_cls,
            page,
            page_size,
            options=self._options,
            not_found=RunNotFoundError,
        )
        check_numbered_page(answer, page, page_size)
        return answer

    # -- waiting ---------------------------------------------------------------------------------
    def took(self, cell: RunCell, data: RunData) -> None:
        """A handle's own call answered ``data``: its cell takes it, and if the run ended
        there, so does every wait on the run (no wait is left asking for news of an end)."""
        cell.apply(data)
        self._waiting.ended(cell.data)

    async def wait(
        self, cell: RunCell, run: T, *, timeout: float | None, poll_interval: float
    ) -> None:
        """Until ``cell`` is terminal, on the shared poller (RunTimeoutError names ``run``)."""
        await self._waiting.wait(cell, run, timeout=timeout, poll_interval=poll_interval)

    def as_completed(
        self,
        targets: Sequence[T],
        *,
        cell_of: Callable[[T], RunCell],
        timeout: float | None,
        poll_interval: float,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncIterator[T]:
        """Each target as its cell (``cell_of(target)``) turns terminal, in completion order."""
        return self._waiting.as_completed(
            targets,
            cell_of=cell_of,
            timeout=timeout,
            poll_interval=poll_interval,
            on_progress=on_progress,
        )


def _reject_index(row: RejectedRow) -> int:
    return row.index


def _log_reuse(request: RunRequest, run: RunData) -> None:
    ignored = [
        f"{name}={asked!r} (the run has {kept!r})"
        for name, asked, kept in (
            ("label", request.label, run.label),
            ("tags", list(request.tags), list(run.tags)),
            ("run_metadata", request.run_metadata, run.run_metadata),
            ("run_owner", request.run_owner, run.run_owner),
            ("monitoring_by", list(request.monitoring_by), list(run.monitoring_by)),
            ("monitoring_groups", list(request.monitoring_groups), list(run.monitoring_groups)),
            ("managing_by", list(request.managing_by), list(run.managing_by)),
            ("managing_groups", list(request.managing_groups), list(run.managing_groups)),
        )
        if asked != kept and asked not in (None, [])
    ]
    logger.info(
        "%s on %s is still in flight as run %s: the create returned that run%s",
        request.flow_version,
        request.source_path,
        run.id,
        "; not applied: " + ", ".join(ignored) if ignored else "",
    )


def _decode_run(response: Response, *, compact: bool, run_id: str | None = None) -> RunData:
    """The run an answer carries; one asked for by ``run_id`` must be that run, or a handle
    would silently become another."""
    try:
        data = _converter.decode_run(response.body, compact=compact, request_id=response.request_id)
    except Exception as exc:
        if response.request_id and getattr(exc, "request_id", "") is None:
            exc.request_id = response.request_id  # type: ignore[attr-defined]
        raise
    if run_id is not None and data.id != run_id:
        raise malformed("run", f"asked for run {run_id!r}, answered run {data.id!r}", response)
    return data
