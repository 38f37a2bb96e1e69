"""``AsyncRun``: a handle on one run, updated in place as the SDK learns more about it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._bound import BoundToClient
from ._exceptions import LumeError, ResponseValidationError, RunFailedError
from ._runs_core import RunCell
from ._validation import check_bool, check_interval, check_page, check_page_size, check_timeout
from .models import (
    LogEntry,
    Page,
    RejectedRow,
    RunData,
    RunErrorInfo,
    RunMetadata,
    RunRequest,
    RunStatus,
)

if TYPE_CHECKING:
    from ._pagination import AsyncPaginator
    from ._runs_core import RunsCore

__all__ = ["AsyncRun", "cell_of", "failure", "failure_with_rejects"]


class AsyncRun(BoundToClient):
    """One run of a flow version on a batch of source data.

    The handle's attributes mirror the last answer the service gave; ``refresh()``, ``wait()`` and
    the other methods update them in place and return the same handle.
    """

    __slots__ = ("__weakref__", "_cell", "_core", "_reused")

    _refusal = (
        "handles cannot be pickled or deep-copied: each holds its client (connections, API"
        " key); pickle run.data (a RunData snapshot) or run.id"
    )

    def __init__(self, cell: RunCell, core: RunsCore, *, reused: bool = False) -> None:
        self._cell = cell
        self._core = core
        self._reused = reused

    # -- state -------------------------------------------------------------------------------
    @property
    def data(self) -> RunData:
        """The run as the service last described it (an immutable snapshot)."""
        return self._cell.data

    @property
    def id(self) -> str:
        """The run's id (``run_...``)."""
        return self._cell.data.id

    @property
    def status(self) -> RunStatus:
        """Where the run is in its lifecycle, as of the last answer."""
        return self._cell.data.status

    @property
    def flow_version(self) -> str:
        """The flow version the run applies (``name:vN``)."""
        return self._cell.data.flow_version

    @property
    def source_path(self) -> str | None:
        """Where the service reads the source rows; None for rows sent inline."""
        return self._cell.data.source_path

    @property
    def label(self) -> str | None:
        """The run's label, if it was given one."""
        return self._cell.data.label

    @property
    def tags(self) -> tuple[str, ...]:
        """The run's tags, in the order they were given."""
        return self._cell.data.tags

    @property
    def run_metadata(self) -> dict[str, Any] | None:
        """Your own metadata, as given at create (the service only stores it)."""
        return self._cell.data.run_metadata

    @property
    def created_at(self) -> datetime:
        """When the service created the run (UTC)."""
        return self._cell.data.created_at

    @property
    def updated_at(self) -> datetime:
        """When the run last changed (UTC); it changes on every transition."""
        return self._cell.data.updated_at

    @property
    def metadata(self) -> RunMetadata | None:
        """Everything the pipeline reported about the run; complete once it is terminal."""
        return self._cell.data.metadata

    @property
    def error(self) -> RunErrorInfo | None:
        """Why the run ended FAILED or CRASHED; None otherwise."""
        return self._cell.data.error

    @property
    def created_by(self) -> str | None:
        """The principal whose API key created the run."""
        return self._cell.data.created_by

    @property
    def run_owner(self) -> str | None:
        """The principal who owns the run: it may read, update and cancel it."""
        return self._cell.data.run_owner

    @property
    def monitoring_by(self) -> tuple[str, ...]:
        """Principals who may read the run."""
        return self._cell.data.monitoring_by

    @property
    def monitoring_groups(self) -> tuple[str, ...]:
        """Groups whose principals may read the run."""
        return self._cell.data.monitoring_groups

    @property
    def managing_by(self) -> tuple[str, ...]:
        """Principals who may read, update and cancel the run and change who may."""
        return self._cell.data.managing_by

    @property
    def managing_groups(self) -> tuple[str, ...]:
        """Groups whose principals may read, update and cancel the run and change who may."""
        return self._cell.data.managing_groups

    @property
    def is_terminal(self) -> bool:
        """True once the status can no longer change."""
        return self._cell.data.status.is_terminal

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` of the answer that last updated this handle (for support)."""
        return self._cell.data.request_id

    @property
    def reused(self) -> bool:
        """True when the create that gave this handle found the run instead of making it.

        The service answers a create for a (flow_version, source_path) still in flight with
        that run (HTTP 200, not 201); the run keeps its own label, tags and run metadata, and
        the difference is logged (logger ``lume_async.runs``, INFO). False for a run the create
        made and for handles from any other call. A create repeated with the same idempotency
        key gets the first answer again, so it says what the first create said.
        """
        return self._reused

    def __repr__(self) -> str:
        return f"<AsyncRun {self.id} {self.status.value} {self.flow_version}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncRun) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __copy__(self) -> AsyncRun:
        # Another handle on the same state: it updates with this one.
        return type(self)(self._cell, self._core, reused=self._reused)

    # -- actions -----------------------------------------------------------------------------
    async def refresh(self) -> AsyncRun:
        """Fetch the run again and update this handle.

        Raises:
            RunNotFoundError: The run is no longer visible to this API key.
        """
        self._core.took(self._cell, await self._core.fetch(self.id))
        return self

    async def wait(self, *, timeout: float | None = 3600, poll_interval: float = 5) -> AsyncRun:
        """Wait until the run is terminal; return this handle.

        Waiting is shared: every run waited on by this client is polled together, up to 100 runs
        per request, starting every ``poll_interval`` seconds and backing off while nothing
        changes; a webhook receiver, when the client has one, ends the wait as soon as the
        completion event arrives. A failed run is returned, not raised: see ``raise_for_status``.

        Raises:
            RunTimeoutError: ``timeout`` seconds passed before the run finished; the handle
                holds its latest state, and the run goes on at the service.
            ValueError: ``timeout`` is negative or ``poll_interval`` not positive (before any
                request).
        """
        check_timeout(timeout)
        check_interval(poll_interval)
        await self._core.wait(self._cell, self, timeout=timeout, poll_interval=poll_interval)
        return self

    def raise_for_status(self) -> AsyncRun:
        """Raise RunFailedError if the run ended FAILED, CRASHED or CANCELED; else return it.

        The message names the error, and for a run that rejected rows, how many and the most
        frequent validation errors. SUCCEEDED, PARTIAL_FAILED and unfinished runs pass. Sends no
        request.

        Raises:
            RunFailedError: The run ended FAILED, CRASHED or CANCELED; its ``run`` is this handle.
        """
        if self.status.is_failure:
            raise failure(self)
        return self

    async def cancel(self) -> AsyncRun:
        """Cancel the run (a run already terminal is left as it is); return this handle.

        Raises:
            RunNotFoundError: The run is no longer visible to this API key.
        """
        self._core.took(self._cell, await self._core.cancel(self.id))
        return self

    async def update(
        self,
        *,
        label: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        run_owner: str | None = None,
        monitoring_by: Iterable[str] | None = None,
        monitoring_groups: Iterable[str] | None = None,
        managing_by: Iterable[str] | None = None,
        managing_groups: Iterable[str] | None = None,
    ) -> AsyncRun:
        """Change the run's label, tags, owner or permission lists; return this handle.

        What is None is kept; a list given replaces the run's (``[]`` empties it). Only the
        owner, managers and tenant admins may; a monitor gets PermissionDeniedError.

        Raises:
            RunNotFoundError: The run is no longer visible to this API key.
            PermissionDeniedError: This API key may read the run but not change it.
            ValueError: A label, tag or principal is malformed (before any request).
        """
        data = await self._core.patch(
            self.id,
            label=label,
            tags=tags,
            run_owner=run_owner,
            monitoring_by=monitoring_by,
            monitoring_groups=monitoring_groups,
            managing_by=managing_by,
            managing_groups=managing_groups,
        )
        self._core.took(self._cell, data)
        return self

    def results(self, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The mapped rows, in order, fetched page by page as you iterate.

        Iterating raises InvalidRequestError (409 ``run_not_finished``) while the run is not
        terminal: ``wait()`` first.
        """
        return self._core.listing(self.id, "results", dict, page_size)

    async def results_page(self, *, page: int = 1, page_size: int = 100) -> Page[dict[str, Any]]:
        """One page of mapped rows (``page`` from 1, ``page_size`` 1..100).

        Raises:
            InvalidRequestError: The run is not terminal yet (409 ``run_not_finished``).
            ValueError: ``page`` or ``page_size`` is out of range (before any request).
        """
        check_page(page)
        check_page_size(page_size)
        return await self._core.page(self.id, "results", dict, page, page_size)

    def rejects(self, *, page_size: int = 100) -> AsyncPaginator[RejectedRow]:
        """The source rows the flow rejected, with the reasons, fetched as you iterate."""
        return self._core.listing(self.id, "rejects", RejectedRow, page_size)

    def logs(
        self, *, page_size: int = 100, follow: bool = False, poll_interval: float = 2
    ) -> AsyncPaginator[LogEntry]:
        """The run's log entries, oldest first.

        With ``follow=True`` the iteration goes on as entries are written, each given once, and
        ends when the run has ended and its last entry was given; this handle's status is kept
        current meanwhile. It checks every ``poll_interval`` seconds, backing off while the log
        is quiet.
        """
        check_bool(follow, "follow")
        if follow:
            return self._core.follow_logs(self.id, page_size, poll_interval, self._cell)
        return self._core.listing(self.id, "logs", LogEntry, page_size)

    def input(self, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The source records the run read, in order.

        Rows given inline can be read at once; a source path's rows once the run has read its
        source (before that, InvalidRequestError with the code ``input_not_read``).
        """
        return self._core.listing(self.id, "input", dict, page_size)

    async def rerun(self) -> AsyncRun:
        """Run the same input again; return the new run (this handle is left as it is).

        The new run has this run's flow version, source path or inline rows (read back with
        ``input()``), label, tags and run metadata, and is forced (``force_rerun=True``) past
        the check that refuses a source path already processed. A source path still being
        processed is not run twice: its run in flight is returned (``reused`` is True). It is
        shared as this run is: the same owner, monitors and managers.

        Raises:
            InvalidRequestError: The service refused the new run.
            NotFoundError: The flow version no longer exists.
        """
        data = self.data
        rows = None if data.source_path is not None else await self.input().collect()
        request = RunRequest(
            data.flow_version,
            source_path=data.source_path,
            source_data=rows,
            run_metadata=data.run_metadata,
            force_rerun=data.source_path is not None,
            label=data.label,
            tags=data.tags,
            run_owner=data.run_owner,
            monitoring_by=data.monitoring_by,
            monitoring_groups=data.monitoring_groups,
            managing_by=data.managing_by,
            managing_groups=data.managing_groups,
        )
        created, reused = await self._core.create(request)
        return AsyncRun(RunCell(created), self._core, reused=reused)


def cell_of(run: AsyncRun) -> RunCell:
    """The state cell behind a handle, for the runs core and the poller to bring up to date."""
    return run._cell


def failure(run: AsyncRun, rejects: list[RejectedRow] | None = None) -> RunFailedError:
    """The RunFailedError for a run that ended FAILED, CRASHED or CANCELED, with its ``rejects``."""
    message = f"run {run.id} ended {run.status.value}"
    if run.error is not None:
        message += f": {run.error.code}: {run.error.message}"
    try:
        message += _counts(run, message)
    except ResponseValidationError as exc:  # the failure matters more than its counts
        error = RunFailedError(message, run=run, rejects=rejects)
        error.add_note(f"its metadata could not be read: {exc}")
        return error
    return RunFailedError(message, run=run, rejects=rejects)


async def failure_with_rejects(run: AsyncRun) -> RunFailedError:
    """``failure(run)`` with the rejected rows, read when its metadata says it has some; an
    error reading them (or its metadata) is noted on the failure, never raised instead of it."""
    try:
        results = run.metadata.results if run.metadata is not None else None
    except ResponseValidationError:
        results = None  # failure() notes why its counts are missing
    if results is None or not results.rejected_rows:
        return failure(run)
    try:
        rejects = await run.rejects().collect()
    except LumeError as exc:
        error = failure(run)
        error.add_note(f"its rejected rows could not be read: {exc}")
        error.__cause__ = exc
        return error
    return failure(run, rejects)


def _counts(run: AsyncRun, message: str) -> str:
    """What ``failure`` adds to its ``message``: the rows rejected and the top errors."""
    added = ""
    metadata = run.metadata
    results = metadata.results if metadata is not None else None
    if results is not None and results.rejected_rows:
        added += f"; {results.rejected_rows} of {results.input_rows} rows rejected"
        validation = metadata.validation if metadata is not None else None
        top = [
            f"{e.error_code} on {e.field} ({e.count})"
            for e in (validation.top_errors if validation is not None else ())
            if e.error_code is None or e.error_code not in message + added
        ]
        if top:
            added += f"; top errors: {', '.join(top)}"
    return added
