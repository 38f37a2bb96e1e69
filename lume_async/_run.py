"""``AsyncRun``: a handle on one run, updated in place as the SDK learns more about it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._exceptions import RunFailedError
from ._validation import check_interval, check_page, check_page_size, check_timeout
from .models import LogEntry, Page, RejectedRow, RunData, RunErrorInfo, RunMetadata, RunStatus

if TYPE_CHECKING:
    from ._pagination import AsyncPaginator
    from ._runs_core import RunCell, RunsCore

__all__ = ["AsyncRun", "cell_of"]


class AsyncRun:
    """One run of a flow version on a batch of source data.

    The handle's attributes mirror the last answer the service gave; ``refresh()``, ``wait()`` and
    the other methods update them in place and return the same handle.
    """

    __slots__ = ("__weakref__", "_cell", "_core")

    def __init__(self, cell: RunCell, core: RunsCore) -> None:
        self._cell = cell
        self._core = core

    # -- state -------------------------------------------------------------------------------
    @property
    def data(self) -> RunData:
        """The run as the service last described it (an immutable snapshot)."""
        return self._cell.data

    @property
    def id(self) -> str:
        return self._cell.data.id

    @property
    def status(self) -> RunStatus:
        return self._cell.data.status

    @property
    def flow_version(self) -> str:
        return self._cell.data.flow_version

    @property
    def source_path(self) -> str | None:
        return self._cell.data.source_path

    @property
    def label(self) -> str | None:
        return self._cell.data.label

    @property
    def tags(self) -> tuple[str, ...]:
        return self._cell.data.tags

    @property
    def run_metadata(self) -> dict[str, Any] | None:
        return self._cell.data.run_metadata

    @property
    def created_at(self) -> datetime:
        return self._cell.data.created_at

    @property
    def updated_at(self) -> datetime:
        return self._cell.data.updated_at

    @property
    def metadata(self) -> RunMetadata | None:
        return self._cell.data.metadata

    @property
    def error(self) -> RunErrorInfo | None:
        return self._cell.data.error

    @property
    def is_terminal(self) -> bool:
        return self._cell.data.status.is_terminal

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` of the answer that last updated this handle (for support)."""
        return self._cell.data.request_id

    def __repr__(self) -> str:
        return f"<AsyncRun {self.id} {self.status.value} {self.flow_version}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncRun) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- actions -----------------------------------------------------------------------------
    async def refresh(self) -> AsyncRun:
        """Fetch the run again and update this handle."""
        self._cell.apply(await self._core.fetch(self.id))
        return self

    async def wait(self, *, timeout: float | None = 3600, poll_interval: float = 5) -> AsyncRun:
        """Wait until the run is terminal; return this handle. Raises RunTimeoutError when over.

        Waiting is shared: every run waited on by this client is polled together, up to 100 runs
        per request, starting every ``poll_interval`` seconds and backing off while nothing
        changes; a webhook receiver, when the client has one, ends the wait as soon as the
        completion event arrives. A failed run is returned, not raised: see ``raise_for_status``.
        """
        check_timeout(timeout)
        check_interval(poll_interval)
        await self._core.wait(self._cell, self, timeout=timeout, poll_interval=poll_interval)
        return self

    def raise_for_status(self) -> AsyncRun:
        """Raise RunFailedError if the run ended FAILED, CRASHED or CANCELED; else return it."""
        if self.status.is_failure:
            reason = f": {self.error.code}: {self.error.message}" if self.error else ""
            raise RunFailedError(f"run {self.id} ended {self.status.value}{reason}", run=self)
        return self

    async def cancel(self) -> AsyncRun:
        """Cancel the run (a run already terminal is left as it is); return this handle."""
        self._cell.apply(await self._core.cancel(self.id))
        return self

    async def update(
        self, *, label: str | None = None, tags: list[str] | tuple[str, ...] | None = None
    ) -> AsyncRun:
        """Change the run's label and/or tags; return this handle."""
        self._cell.apply(await self._core.patch(self.id, label=label, tags=tags))
        return self

    def results(self, *, page_size: int = 100) -> AsyncPaginator[dict[str, Any]]:
        """The mapped rows, in order."""
        return self._core.listing(self.id, "results", dict, page_size)

    async def results_page(self, *, page: int = 1, page_size: int = 50) -> Page[dict[str, Any]]:
        """One page of mapped rows (``page`` from 1, ``page_size`` 1..100)."""
        check_page(page)
        check_page_size(page_size)
        return await self._core.page(self.id, "results", dict, page, page_size)

    def rejects(self, *, page_size: int = 100) -> AsyncPaginator[RejectedRow]:
        """The source rows the flow rejected, with the reasons."""
        return self._core.listing(self.id, "rejects", RejectedRow, page_size)

    def logs(self, *, page_size: int = 100) -> AsyncPaginator[LogEntry]:
        """The run's log entries, oldest first."""
        return self._core.listing(self.id, "logs", LogEntry, page_size)


def cell_of(run: AsyncRun) -> RunCell:
    """The state cell behind a handle, for the runs core and the poller to bring up to date."""
    return run._cell
