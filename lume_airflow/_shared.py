"""One ``AsyncLume`` per connection and event loop, lent to every trigger that waits there.

The triggerer runs thousands of triggers on one event loop. Each ``LumeRunTrigger`` borrows the
client of its connection for the time it waits, so every wait lands in the same poller: one
``batch-get`` per 100 waiting runs per sweep, whatever the number of triggers. The client is made
by the first borrower and closed when the last one leaves, finished or cancelled.

A trigger's first look at its run goes through the same client: looks asked for while a request
is in flight are gathered into the next ``get_many`` (100 ids per request), so a thousand triggers
starting together cost ten requests, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator

from lume_async import AsyncLume, AsyncRun

from ._hook import LumeHook

__all__ = ["SharedClient", "borrowers", "shared_client"]


class _Lookups:
    """First looks at runs by id, gathered into as few ``get_many`` calls as possible."""

    def __init__(self, client: AsyncLume) -> None:
        self._client = client
        self._pending: dict[str, list[asyncio.Future[AsyncRun]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, run_id: str) -> AsyncRun:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AsyncRun] = loop.create_future()
        self._pending.setdefault(run_id, []).append(future)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="lume-airflow-lookups")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            ids = list(batch)
            try:
                outcomes = await self._client.runs.get_many(ids)
            except BaseException as exc:
                for futures in batch.values():
                    for future in futures:
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        elif not future.done():
                            future.set_exception(exc)
                raise
            for outcome in outcomes:
                for future in batch[ids[outcome.index]]:
                    if future.done():
                        continue  # its trigger was cancelled meanwhile
                    if outcome.value is not None:
                        future.set_result(outcome.value)
                    else:
                        future.set_exception(outcome.error or LookupError(ids[outcome.index]))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for futures in self._pending.values():
            for future in futures:
                future.cancel()
        self._pending.clear()


class SharedClient:
    """The client of one connection on one event loop, as lent to a trigger."""

    __slots__ = ("_lookups", "client")

    def __init__(self, client: AsyncLume) -> None:
        self.client = client
        self._lookups = _Lookups(client)

    async def get(self, run_id: str) -> AsyncRun:
        """The run with this id, fetched together with other triggers' first looks."""
        return await self._lookups.get(run_id)

    async def aclose(self) -> None:
        await self._lookups.aclose()
        await self.client.aclose()


class _Entry:
    __slots__ = ("ready", "users")

    def __init__(self, ready: asyncio.Task[SharedClient]) -> None:
        self.ready = ready
        self.users = 0


_lock = threading.Lock()
_entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = (
    weakref.WeakKeyDictionary()
)
# Closings that outlive the borrower that started them (it may be cancelled while it waits).
_closing: set[asyncio.Task[None]] = set()


async def _connect(conn_id: str) -> SharedClient:
    return SharedClient(await LumeHook(conn_id).get_async_client())


def _acquire(loop: asyncio.AbstractEventLoop, conn_id: str) -> _Entry:
    with _lock:
        entries = _entries.setdefault(loop, {})
        entry = entries.get(conn_id)
        if entry is None:
            task = loop.create_task(_connect(conn_id), name=f"lume-airflow-connect-{conn_id}")
            entry = entries[conn_id] = _Entry(task)
        entry.users += 1
        return entry


def _forget(loop: asyncio.AbstractEventLoop, conn_id: str, entry: _Entry) -> None:
    """Let the next borrower make a fresh client (this one is closing or failed to start)."""
    with _lock:
        entries = _entries.get(loop)
        if entries is not None and entries.get(conn_id) is entry:
            del entries[conn_id]
            if not entries:
                del _entries[loop]


def _release(loop: asyncio.AbstractEventLoop, conn_id: str, entry: _Entry) -> bool:
    """One borrower fewer; True if it was the last (the entry is then forgotten)."""
    with _lock:
        entry.users -= 1
        last = entry.users == 0
    if last:
        _forget(loop, conn_id, entry)
    return last


async def _close(entry: _Entry) -> None:
    ready = entry.ready
    if not ready.done():
        ready.cancel()
        await asyncio.gather(ready, return_exceptions=True)
        return
    if not ready.cancelled() and ready.exception() is None:
        await ready.result().aclose()


@contextlib.asynccontextmanager
async def shared_client(conn_id: str) -> AsyncIterator[SharedClient]:
    """Borrow the client of ``conn_id`` on the running loop; the last borrower out closes it."""
    loop = asyncio.get_running_loop()
    entry = _acquire(loop, conn_id)
    try:
        try:
            # Shielded: one borrower cancelled while the client is made must not fail the others.
            shared = await asyncio.shield(entry.ready)
        except asyncio.CancelledError:
            raise
        except BaseException:
            _forget(loop, conn_id, entry)  # a connection that failed is looked up afresh
            raise
        yield shared
    finally:
        if _release(loop, conn_id, entry):
            closing = loop.create_task(_close(entry), name=f"lume-airflow-close-{conn_id}")
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
            # Shielded: a borrower cancelled again while closing still leaves the client closed.
            await asyncio.shield(closing)


def borrowers(conn_id: str) -> int:
    """How many borrowers the client of ``conn_id`` on the running loop has (0: there is none)."""
    with _lock:
        entry = _entries.get(asyncio.get_running_loop(), {}).get(conn_id)
        return 0 if entry is None else entry.users
