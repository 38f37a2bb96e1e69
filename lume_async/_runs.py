"""``lume.runs``: create, read, list, change and cancel runs, one at a time or many at once."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import _converter
from ._batch import ProgressCallback, run_batch
from ._exceptions import ResponseValidationError, RunNotFoundError
from ._pagination import AsyncPaginator, get_page, numbered_listing
from ._run import AsyncRun
from ._validation import (
    check_interval,
    check_nonempty_str,
    check_page,
    check_page_size,
    check_run_id,
    check_statuses,
    check_tags,
    check_timeout,
    check_timestamp,
)
from ._waiting import Waiting
from .models import BatchOutcome, LogEntry, Page, RejectedRow, RunData, RunRequest, RunStatus

if TYPE_CHECKING:
    from ._transport import RequestOptions, Response, Transport

__all__ = ["AsyncRuns", "ProgressCallback"]

T = TypeVar("T")
R = TypeVar("R")

_BATCH_GET_MAX = 100
_ORDER_BY = ("created_at", "updated_at")


def _new_idempotency_key() -> str:
    return f"lume-{uuid.uuid4().hex}"


class AsyncRuns:
    """The runs resource of one client (``lume.runs``)."""

    def __init__(
        self, transport: Transport, options: RequestOptions | None, waiting: Waiting
    ) -> None:
        self._transport = transport
        self._options = options
        self._waiting = waiting

    def _handle(self, data: RunData) -> AsyncRun:
        return AsyncRun(data, self)

    # -- single runs -------------------------------------------------------------------------
    async def create(
        self,
        flow_version: str,
        source_path: str | None = None,
        *,
        source_data: Sequence[Mapping[str, Any]] | None = None,
        run_metadata: Mapping[str, Any] | None = None,
        force_rerun: bool = False,
        label: str | None = None,
        tags: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> AsyncRun:
        """Start a run of ``flow_version`` on ``source_path`` or inline ``source_data``.

        Returns at once with the new run (or, for a (flow_version, source_path) still in flight,
        that run). A pair that already SUCCEEDED raises DuplicateRunError unless
        ``force_rerun=True``. The create carries an Idempotency-Key, generated here unless given,
        and every retry reuses it, so a retried create never makes a second run.
        """
        request = RunRequest(
            flow_version,
            source_path=source_path,
            source_data=source_data,
            run_metadata=run_metadata,
            force_rerun=force_rerun,
            label=label,
            tags=tags,
            idempotency_key=idempotency_key,
        )
        return await self._create(request)

    async def _create(self, request: RunRequest) -> AsyncRun:
        response = await self._transport.request(
            "POST",
            "/v1/runs",
            route="/v1/runs",
            body=_converter.dumps(request.to_wire()),
            retryable=True,
            idempotency_key=request.idempotency_key or _new_idempotency_key(),
            options=self._options,
        )
        return self._handle(_decode_run(response))

    async def get(self, run_id: str) -> AsyncRun:
        """The run with this id, fresh from the service (RunNotFoundError if there is none)."""
        return self._handle(await self._fetch(run_id))

    async def _fetch(self, run_id: str) -> RunData:
        check_run_id(run_id)
        response = await self._transport.request(
            "GET",
            f"/v1/runs/{run_id}",
            route="/v1/runs/{run_id}",
            retryable=True,
            options=self._options,
            not_found=RunNotFoundError,
        )
        return _decode_run(response)

    async def update(
        self,
        run_id: str,
        *,
        label: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> AsyncRun:
        """Change a run's label and/or tags."""
        return self._handle(await self._patch(run_id, label=label, tags=tags))

    async def _patch(
        self, run_id: str, *, label: str | None, tags: Iterable[str] | None
    ) -> RunData:
        check_run_id(run_id)
        body: dict[str, Any] = {}
        if label is not None:
            if not isinstance(label, str):
                raise TypeError(f"label must be a str, not {type(label).__name__}")
            body["label"] = label
        if tags is not None:
            body["tags"] = check_tags(tags)
        if not body:
            raise ValueError("update() needs label=... and/or tags=...")
        response = await self._transport.request(
            "PATCH",
            f"/v1/runs/{run_id}",
            route="/v1/runs/{run_id}",
            body=_converter.dumps(body),
            retryable=True,
            options=self._options,
            not_found=RunNotFoundError,
        )
        return _decode_run(response)

    async def cancel(self, run_id: str) -> AsyncRun:
        """Cancel a run; one already terminal is returned unchanged."""
        return self._handle(await self._cancel(run_id))

    async def _cancel(self, run_id: str) -> RunData:
        check_run_id(run_id)
        response = await self._transport.request(
            "POST",
            f"/v1/runs/{run_id}/cancel",
            route="/v1/runs/{run_id}/cancel",
            retryable=True,
            options=self._options,
            not_found=RunNotFoundError,
        )
        return _decode_run(response)

    # -- listings ----------------------------------------------------------------------------
    def list(
        self,
        *,
        flow_version: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        label: str | None = None,
        tags: Iterable[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        order_by: str = "created_at",
        descending: bool = True,
        page_size: int = 100,
    ) -> AsyncPaginator[AsyncRun]:
        """Runs matching every filter given, newest first by default.

        Keyset-paginated: runs created while you iterate are neither skipped nor repeated.
        """
        check_page_size(page_size)
        if order_by not in _ORDER_BY:
            raise ValueError(f"order_by must be one of {', '.join(_ORDER_BY)}, got {order_by!r}")
        params: builtins.list[tuple[str, str | int]] = [
            ("order_by", order_by),
            ("order", "desc" if descending else "asc"),
            ("size", page_size),
        ]
        if flow_version is not None:
            params.append(("flow_version", check_nonempty_str("flow_version", flow_version)))
        for value in check_statuses(status):
            params.append(("status", value))
        if label is not None:
            params.append(("label", check_nonempty_str("label", label)))
        if tags is not None:
            params.extend(("tag", tag) for tag in check_tags(tags))
        if created_after is not None:
            params.append(("created_after", check_timestamp("created_after", created_after)))
        if created_before is not None:
            params.append(("created_before", check_timestamp("created_before", created_before)))

        async def fetch(cursor: str | None) -> Page[AsyncRun]:
            query = params if cursor is None else [*params, ("cursor", cursor)]
            response = await self._transport.request(
                "GET",
                "/v1/runs",
                route="/v1/runs",
                params=query,
                retryable=True,
                options=self._options,
            )
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise _malformed("run list", "expected {items, next_cursor}", response)
            runs = [self._handle(_converter.run_from_obj(item)) for item in body["items"]]
            next_cursor = body.get("next_cursor")
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise _malformed("run list", "next_cursor is not a string", response)
            return Page(items=tuple(runs), size=page_size, next_cursor=next_cursor)

        return AsyncPaginator(fetch_cursor=fetch, page_size=page_size)

    def results(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The mapped rows of a terminal run, in order."""
        return self._numbered(run_id, "results", dict, page_size)

    async def results_page(
        self, run_id: str, *, page: int = 1, page_size: int = 50
    ) -> Page[dict[str, Any]]:
        """One page of a run's mapped rows (``page`` from 1, ``page_size`` 1..100)."""
        check_run_id(run_id)
        check_page(page)
        check_page_size(page_size)
        return await get_page(
            self._transport,
            f"/v1/runs/{run_id}/results",
            "/v1/runs/{run_id}/results",
            dict,
            page,
            page_size,
            options=self._options,
            not_found=RunNotFoundError,
        )

    def rejects(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[RejectedRow]:
        """The rows a run rejected, with the reasons."""
        return self._numbered(run_id, "rejects", RejectedRow, page_size)

    def logs(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[LogEntry]:
        """A run's log entries, oldest first."""
        return self._numbered(run_id, "logs", LogEntry, page_size)

    def _numbered(
        self, run_id: str, what: str, item_cls: type[T], page_size: int
    ) -> AsyncPaginator[T]:
        check_run_id(run_id)
        return numbered_listing(
            self._transport,
            f"/v1/runs/{run_id}/{what}",
            f"/v1/runs/{{run_id}}/{what}",
            item_cls,
            page_size,
            options=self._options,
            not_found=RunNotFoundError,
        )

    # -- many runs ---------------------------------------------------------------------------
    async def create_many(
        self,
        requests: Iterable[RunRequest | Mapping[str, Any]],
        *,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Create many runs with at most ``concurrency`` requests in flight.

        Returns one BatchOutcome per request, in input order; a failed item (bad input included)
        never aborts the others. Each item keeps one Idempotency-Key across its retries.
        """
        items = list(requests)

        async def create_one(item: RunRequest | Mapping[str, Any]) -> AsyncRun:
            # Built here, inside the worker, so a bad item is that item's failure alone.
            request = item if isinstance(item, RunRequest) else RunRequest(**item)
            return await self._create(request)

        return await run_batch(items, create_one, concurrency, on_progress)

    async def get_many(
        self,
        run_ids: Iterable[str],
        *,
        concurrency: int = 8,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Fetch many runs, 100 per request, at most ``concurrency`` requests in flight.

        Outcomes come in input order; an unknown id gives a RunNotFoundError outcome, a malformed
        one a ValueError outcome, and a failed request fails only the outcomes of its 100 ids.
        """
        ids = list(run_ids)
        total = len(ids)
        outcomes: builtins.list[BatchOutcome[AsyncRun] | None] = [None] * total
        done = failed = 0

        async def fetch_chunk(start: int) -> None:
            nonlocal done, failed
            chunk = ids[start : start + _BATCH_GET_MAX]
            valid = [run_id for run_id in chunk if _valid_id(run_id)]
            found: dict[str, RunData] = {}
            error: Exception | None = None
            if valid:
                try:
                    found = await self.batch_get(valid)
                except Exception as exc:
                    error = exc
            for index, run_id in enumerate(chunk, start):
                outcome: BatchOutcome[AsyncRun]
                if not _valid_id(run_id):
                    outcome = BatchOutcome.failure(index, ValueError(f"not a run id: {run_id!r}"))
                elif error is not None:
                    outcome = BatchOutcome.failure(index, error)
                elif run_id in found:
                    outcome = BatchOutcome.success(index, self._handle(found[run_id]))
                else:
                    outcome = BatchOutcome.failure(
                        index,
                        RunNotFoundError(
                            f"run {run_id} not found", status_code=404, code="not_found"
                        ),
                    )
                outcomes[index] = outcome
                failed += not outcome.ok
            done += len(chunk)

        def progress(*_: int) -> None:
            # Counted in runs, not in requests; called by _run_batch so that an exception in
            # on_progress propagates rather than becoming a failed chunk.
            if on_progress is not None:
                on_progress(done, total, failed)

        starts = list(range(0, total, _BATCH_GET_MAX))
        await run_batch(starts, fetch_chunk, concurrency, progress)
        return [outcome for outcome in outcomes if outcome is not None]

    async def batch_get(self, run_ids: Sequence[str]) -> dict[str, RunData]:
        """One ``batch-get`` request for up to 100 ids: the runs found, by id."""
        if not 1 <= len(run_ids) <= _BATCH_GET_MAX:
            raise ValueError(f"batch_get takes 1 to {_BATCH_GET_MAX} ids, got {len(run_ids)}")
        for run_id in run_ids:
            check_run_id(run_id)
        response = await self._transport.request(
            "POST",
            "/v1/runs/batch-get",
            route="/v1/runs/batch-get",
            body=_converter.dumps({"ids": list(run_ids)}),
            retryable=True,
            options=self._options,
        )
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise _malformed("batch-get answer", "expected {items, missing}", response)
        runs = (_converter.run_from_obj(item) for item in body["items"])
        return {run.id: run for run in runs}

    async def cancel_many(
        self,
        run_ids: Iterable[str],
        *,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Cancel many runs, at most ``concurrency`` requests in flight; outcomes in input order."""
        return await run_batch(list(run_ids), self.cancel, concurrency, on_progress)

    # -- waiting -----------------------------------------------------------------------------
    async def wait_all(
        self,
        runs: Iterable[AsyncRun],
        *,
        timeout: float | None = None,
        poll_interval: float = 5,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[AsyncRun]:
        """Wait until every run is terminal; return them in input order.

        Raises RunTimeoutError (its ``run`` is the first unfinished one) when ``timeout`` passes.
        """
        handles = list(runs)
        check_timeout(timeout)
        check_interval(poll_interval)
        async for _ in self._waiting.as_completed(
            handles, timeout=timeout, poll_interval=poll_interval, on_progress=on_progress
        ):
            pass
        return handles

    def as_completed(
        self,
        runs: Iterable[AsyncRun],
        *,
        timeout: float | None = None,
        poll_interval: float = 5,
    ) -> AsyncIterator[AsyncRun]:
        """Yield each run as it becomes terminal, in completion order."""
        check_timeout(timeout)
        check_interval(poll_interval)
        return self._waiting.as_completed(list(runs), timeout=timeout, poll_interval=poll_interval)


def _valid_id(run_id: object) -> bool:
    try:
        check_run_id(run_id)
    except (TypeError, ValueError):
        return False
    return True


def _decode_run(response: Response) -> RunData:
    try:
        return _converter.decode_run(response.body)
    except Exception as exc:
        _attach_request_id(exc, response.request_id)
        raise


def _attach_request_id(exc: BaseException, request_id: str | None) -> None:
    if request_id and getattr(exc, "request_id", "") is None:
        exc.request_id = request_id  # type: ignore[attr-defined]


def _malformed(what: str, why: str, response: Response) -> ResponseValidationError:
    return ResponseValidationError(f"malformed {what}: {why}", request_id=response.request_id)
