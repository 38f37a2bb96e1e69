"""``lume.runs``: create, read, list, change and cancel runs, one at a time or many at once."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from ._batch import ProgressCallback, get_in_chunks, requests_of, run_batch
from ._batch_create import Created, create_in_batches
from ._batch_get import BATCH_GET_MAX
from ._bound import BoundToClient
from ._pagination import AsyncPaginator
from ._run import AsyncRun, cell_of
from ._runs_core import RunCell, RunsCore
from ._validation import (
    check_batch_call,
    check_bool,
    check_callable,
    check_handles,
    check_idempotency_namespace,
    check_interval,
    check_key_choice,
    check_list_filters,
    check_page,
    check_page_size,
    check_run_id,
    check_timeout,
)
from ._wait_by_id import wait_by_id
from .models import BatchOutcome, LogEntry, Page, RejectedRow, RunData, RunRequest, RunStatus

__all__ = ["AsyncRuns", "ProgressCallback"]


class AsyncRuns(BoundToClient):
    """The runs resource of one client (``lume.runs``)."""

    def __init__(self, core: RunsCore) -> None:
        self._core = core

    def _handle(self, data: RunData, *, reused: bool = False) -> AsyncRun:
        return AsyncRun(RunCell(data), self._core, reused=reused)

    def _created(self, created: Created) -> AsyncRun:
        data, reused = created
        return self._handle(data, reused=reused)

    async def _create(self, request: RunRequest) -> AsyncRun:
        data, reused = await self._core.create(request)
        return self._handle(data, reused=reused)

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
        idempotency_namespace: str | None = None,
        run_owner: str | None = None,
        monitoring_by: Iterable[str] = (),
        monitoring_groups: Iterable[str] = (),
        managing_by: Iterable[str] = (),
        managing_groups: Iterable[str] = (),
    ) -> AsyncRun:
        """Start a run of ``flow_version`` on ``source_path`` or inline ``source_data``.

        Returns at once with the new run. A (flow_version, source_path) still in flight returns
        that run instead (``run.reused`` is True); one that already SUCCEEDED or PARTIAL_FAILED
        (both wrote to the target) raises DuplicateRunError with ``existing_run_id``, unless
        ``force_rerun=True``. The create carries an Idempotency-Key that every retry reuses, so
        a retried create never makes a second run: ``idempotency_key`` as given, else one
        derived from ``idempotency_namespace`` and the request (the same call with the same
        namespace, after a restart, finds the first run: see ``RunRequest.with_namespace``),
        else a new one. Give at most one of the two.

        The run is ``run_owner``'s (default: the API key's principal). Principals named in
        ``managing_by`` (or in a group of ``managing_groups``) may also read, update and cancel
        it; those in ``monitoring_by`` / ``monitoring_groups`` may read it; tenant admins may do
        anything. Anyone else gets RunNotFoundError for it.

        Raises:
            DuplicateRunError: This (flow_version, source_path) already SUCCEEDED or
                PARTIAL_FAILED and ``force_rerun`` is not set; ``existing_run_id`` names that run.
            NotFoundError: The flow version does not exist.
            InvalidRequestError: The service refused the request, e.g. an idempotency key reused
                with another body (422).
            ValueError: An argument is malformed, both or neither of ``source_path`` and
                ``source_data`` are given, or both ``idempotency_key`` and
                ``idempotency_namespace`` are (before any request).
            TypeError: An argument has the wrong type (before any request).
        """
        check_key_choice(idempotency_key, idempotency_namespace)
        request = RunRequest(
            flow_version,
            source_path=source_path,
            source_data=source_data,
            run_metadata=run_metadata,
            force_rerun=force_rerun,
            label=label,
            tags=tags,
            idempotency_key=idempotency_key,
            run_owner=run_owner,
            monitoring_by=monitoring_by,
            monitoring_groups=monitoring_groups,
            managing_by=managing_by,
            managing_groups=managing_groups,
        )
        if idempotency_namespace is not None:
            request = request.with_namespace(idempotency_namespace)
        return await self._create(request)

    async def get(self, run_id: str) -> AsyncRun:
        """The run with this id, fresh from the service.

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            ValueError: ``run_id`` is not a run id (before any request).
        """
        return self._handle(await self._core.fetch(run_id))

    async def update(
        self,
        run_id: str,
        *,
        label: str | None = None,
        tags: Iterable[str] | None = None,
        run_owner: str | None = None,
        monitoring_by: Iterable[str] | None = None,
        monitoring_groups: Iterable[str] | None = None,
        managing_by: Iterable[str] | None = None,
        managing_groups: Iterable[str] | None = None,
    ) -> AsyncRun:
        """Change a run's label, tags, owner or permission lists; what is None is kept.

        A list given replaces the run's list (``[]`` empties it). Only the run's owner, its
        managers and tenant admins may; a monitor gets PermissionDeniedError.

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            PermissionDeniedError: This API key may read the run but not change it.
            ValueError: An argument is malformed (before any request).
        """
        data = await self._core.patch(
            run_id,
            label=label,
            tags=tags,
            run_owner=run_owner,
            monitoring_by=monitoring_by,
            monitoring_groups=monitoring_groups,
            managing_by=managing_by,
            managing_groups=managing_groups,
        )
        return self._handle(data)

    async def cancel(self, run_id: str) -> AsyncRun:
        """Cancel a run; one already terminal is returned unchanged.

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            ValueError: ``run_id`` is not a run id (before any request).
        """
        return self._handle(await self._core.cancel(run_id))

    # -- listings ----------------------------------------------------------------------------
    def list(
        self,
        *,
        flow_version: str | None = None,
        source_path: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        label: str | None = None,
        tags: Iterable[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        order_by: str = "created_at",
        descending: bool = True,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> AsyncPaginator[AsyncRun]:
        """Runs matching every filter given, newest first by default.

        Keyset-paginated on ``created_at``: runs created while you iterate are neither skipped
        nor repeated. ``status`` also takes the TypeScript SDK's words: ``RUNNING`` (any of
        SYNCING_SOURCE, TRANSFORMING, SYNCING_TARGET) and ``INCOMPLETE`` (PARTIAL_FAILED).
        ``order_by="updated_at"`` is refused (ValueError): it changes while you iterate.

        To resume later, even in another process, keep a page's ``next_cursor`` (from
        ``.pages()``) and pass it as ``cursor``: the listing goes on after that page, with the
        filters and order it was started with (valid for 24 hours). Filters given along with a
        cursor must be the cursor's own, or the service refuses them. Nothing is sent until you
        iterate; a bad filter raises ValueError or TypeError at once. Pages that loop or repeat
        (a cursor or run seen before, runs out of order) or list runs outside ``flow_version``,
        ``source_path`` or ``created_*`` raise ResponseValidationError while iterating.
        """
        params = check_list_filters(
            flow_version=flow_version,
            source_path=source_path,
            status=status,
            label=label,
            tags=tags,
            created_after=created_after,
            created_before=created_before,
            order_by=order_by,
            descending=descending,
            page_size=page_size,
            cursor=cursor,
        )

        async def fetch(after: str | None) -> Page[AsyncRun]:
            page = await self._core.list_page(params, after, page_size)
            runs = tuple(self._handle(data) for data in page.items)
            return Page(
                items=runs,
                size=page.size,
                next_cursor=page.next_cursor,
                request_id=page.request_id,
            )

        return AsyncPaginator(
            fetch_cursor=fetch,
            page_size=page_size,
            item_id=attrgetter("id"),
            ordered_by=attrgetter("created_at"),
            descending=None if cursor is not None else descending,  # a cursor has its order
            resumed_from=cursor,
        )

    def results(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The mapped rows of a terminal run, in order, fetched page by page as you iterate.

        Iterating raises RunNotFoundError for an unknown run, and InvalidRequestError (409
        ``run_not_finished``) while the run is not terminal.
        """
        return self._core.listing(run_id, "results", dict, page_size)

    async def results_page(
        self, run_id: str, *, page: int = 1, page_size: int = 100
    ) -> Page[dict[str, Any]]:
        """One page of a run's mapped rows (``page`` from 1, ``page_size`` 1..100).

        A page past the end has no items.

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            InvalidRequestError: The run is not terminal yet (409 ``run_not_finished``).
            ValueError: ``page`` or ``page_size`` is out of range (before any request).
        """
        run_id = check_run_id(run_id)
        check_page(page)
        check_page_size(page_size)
        return await self._core.page(run_id, "results", dict, page, page_size)

    def rejects(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[RejectedRow]:
        """The rows a run rejected, with the reasons, fetched page by page as you iterate."""
        return self._core.listing(run_id, "rejects", RejectedRow, page_size)

    def logs(
        self, run_id: str, *, page_size: int = 100, follow: bool = False, poll_interval: float = 2
    ) -> AsyncPaginator[LogEntry]:
        """A run's log entries, oldest first.

        With ``follow=True`` the iteration goes on as entries are written, each given once, and
        ends when the run has ended and its last entry was given. It checks every
        ``poll_interval`` seconds, backing off while the log is quiet.
        """
        check_bool(follow, "follow")
        if follow:
            return self._core.follow_logs(run_id, page_size, poll_interval, None)
        return self._core.listing(run_id, "logs", LogEntry, page_size)

    def input(self, run_id: str, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The source records a run read, in order.

        Rows given inline can be read at once; a source path's rows once the run has read its
        source (before that, InvalidRequestError with the code ``input_not_read``).
        """
        return self._core.listing(run_id, "input", dict, page_size)

    # -- many runs ---------------------------------------------------------------------------
    async def create_many(
        self,
        requests: Iterable[RunRequest | Mapping[str, Any]],
        *,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        idempotency_namespace: str | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Create many runs with at most ``concurrency`` requests in flight.

        One BatchOutcome per request, in input order; a failed item (bad input included) never
        aborts the others. With more runs than ``concurrency``, up to 100 go per
        ``batch-create`` request, each the create it would be alone (docs/guides/fan-out.md).
        Each item is sent with its request's Idempotency-Key (``outcome.idempotency_key``)
        across all its retries, so sending the same ``RunRequest`` objects again replays what
        was done. With ``idempotency_namespace``, each key is derived from the namespace and
        the request (a key given on a request wins): a job restarted with the same inputs and
        namespace creates nothing it created before; its outcomes are runs (``reused`` when
        still in flight) or DuplicateRunError with the ``existing_run_id`` that processed the
        source. ``on_progress(done, total, failed)`` is called after each item.

        Raises:
            ValueError: ``concurrency`` is below 1, or ``idempotency_namespace`` is malformed
                (before any request). Errors of single items are in their outcomes, never
                raised.
            Exception: Whatever ``on_progress`` raises ends the call.
        """
        items = check_batch_call(
            requests, "requests", concurrency=concurrency, on_progress=on_progress
        )
        check_idempotency_namespace(idempotency_namespace)
        prepared = requests_of(items, idempotency_namespace)
        batch, alone, wrap = self._core.create_batch, self._core.create, self._created
        return await create_in_batches(prepared, batch, alone, wrap, concurrency, on_progress)

    async def get_many(
        self,
        run_ids: Iterable[str],
        *,
        concurrency: int = 8,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Fetch many runs, 100 per request, at most ``concurrency`` requests in flight.

        Outcomes come in input order; an unknown id gives a RunNotFoundError outcome, a malformed
        one a ValueError outcome (TypeError for one that is not a str), a run the answer garbles
        a ResponseValidationError outcome, and a failed request fails only its 100 ids' outcomes.

        Raises:
            ValueError: ``concurrency`` is below 1 (before any request). Errors of single ids are
                in their outcomes, never raised.
            Exception: Whatever ``on_progress`` raises ends the call.
        """
        ids = check_batch_call(run_ids, "run_ids", concurrency=concurrency, on_progress=on_progress)
        return await get_in_chunks(
            ids, self._core.batch_get_each, self._handle, BATCH_GET_MAX, concurrency, on_progress
        )

    async def batch_get(self, run_ids: Sequence[str]) -> dict[str, RunData]:
        """One ``batch-get`` request for up to 100 ids: the runs found, by id.

        Ids the service does not know (or this key may not see) are absent from the answer.

        Raises:
            ValueError: No ids, more than 100, or a malformed id (before any request).
        """
        return await self._core.batch_get(run_ids)

    async def cancel_many(
        self,
        run_ids: Iterable[str],
        *,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[BatchOutcome[AsyncRun]]:
        """Cancel many runs, at most ``concurrency`` requests in flight; outcomes in input order.

        Raises:
            ValueError: ``concurrency`` is below 1 (before any request). Errors of single runs
                are in their outcomes, never raised.
            Exception: Whatever ``on_progress`` raises ends the call.
        """
        ids = check_batch_call(run_ids, "run_ids", concurrency=concurrency, on_progress=on_progress)
        return await run_batch(ids, self.cancel, concurrency, on_progress)

    # -- waiting -----------------------------------------------------------------------------
    async def wait(
        self, run_id: str, *, timeout: float | None = 3600, poll_interval: float = 5
    ) -> AsyncRun:
        """Wait until the run with this id is terminal and return it, without a handle first.

        Waits as a run's ``wait()`` does: a failed run is returned, not raised.

        Raises:
            RunNotFoundError: No run with this id is visible to this API key.
            RunTimeoutError: ``timeout`` seconds passed before the run finished.
            ValueError: ``run_id``, ``timeout`` or ``poll_interval`` is malformed (before any
                request).
        """
        run_id = check_run_id(run_id)
        check_timeout(timeout)
        check_interval(poll_interval)
        return await wait_by_id(
            lambda: self.get(run_id),
            run_id,
            clock=self._core.clock,
            timeout=timeout,
            poll_interval=poll_interval,
        )

    async def wait_all(
        self,
        runs: Iterable[AsyncRun],
        *,
        timeout: float | None = None,
        poll_interval: float = 5,
        on_progress: ProgressCallback | None = None,
    ) -> builtins.list[AsyncRun]:
        """Wait until every run is terminal; return them in input order.

        Polls through the client's shared poller (100 runs per request); failed runs are
        returned, not raised. ``on_progress(done, total, failed)`` is called as runs finish.

        Raises:
            RunTimeoutError: ``timeout`` seconds passed first; its ``run`` is the first
                unfinished one, and the runs' handles hold their latest state.
            TypeError: ``runs`` is not an iterable of run handles (run ids are refused: get
                their handles with ``get_many``).
        """
        handles: builtins.list[AsyncRun] = check_handles(runs, AsyncRun)
        check_timeout(timeout)
        check_interval(poll_interval)
        check_callable(on_progress, "on_progress")
        async for _ in self._core.as_completed(
            handles,
            cell_of=cell_of,
            timeout=timeout,
            poll_interval=poll_interval,
            on_progress=on_progress,
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
        """Yield each run as it becomes terminal, in completion order.

        Iterating raises RunTimeoutError when ``timeout`` seconds pass before every run is done.
        """
        check_timeout(timeout)
        check_interval(poll_interval)
        handles = check_handles(runs, AsyncRun)
        return self._core.as_completed(
            handles, cell_of=cell_of, timeout=timeout, poll_interval=poll_interval
        )
