"""The client's own keep-alive connections to the service, on one event loop (``Connections``).

Requests to the service go straight through these (``_http1`` speaks HTTP/1.1 on each); through
a proxy they go through aiohttp instead (see ``_pool``). At most ``limit`` connections are open;
a request finds an idle one, opens one, or waits its turn. An idle connection is reused for
``KEEPALIVE`` seconds at most. A request whose kept-alive connection turns out closed by the
server before it answered goes again once on a fresh one, when it is safe to repeat.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import math
import ssl
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from ._deadlines import slack
from ._http1 import Connection
from ._http_types import (
    Answer,
    CertificateFailed,
    ConnectFailed,
    Disconnected,
    TLSFailed,
    Unsent,
    quote_path,
)

__all__ = ["KEEPALIVE", "Connections"]

KEEPALIVE: Final = 15.0
"""Seconds an idle connection is kept for reuse."""
_READ_SIZE: Final = 256 * 1024
_WITH_CONTENT: Final = frozenset({"POST", "PUT", "PATCH"})
_JOINED_BODY: Final = 64 * 1024
"""The largest body sent in one block with its head; a larger one follows (Connection.send)."""


class Connections:
    """Kept-alive connections to one origin, on one event loop, at most ``limit`` open."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        ssl_context: ssl.SSLContext | None,
        limit: int,
    ) -> None:
        parts = urlsplit(base_url)
        self._loop = asyncio.get_running_loop()
        self._host = parts.hostname or ""
        secure = parts.scheme == "https"
        self._port = parts.port or (443 if secure else 80)
        self._ssl = (ssl_context or _default_tls()) if secure else None
        self._prefix = quote_path(parts.path.rstrip("/"))
        host = f"[{self._host}]" if ":" in self._host else self._host
        if parts.port is not None and parts.port != (443 if secure else 80):
            host = f"{host}:{parts.port}"
        self._head = Unsent(_header_block({"Host": host, **headers}))  # the key is in it
        self._limit = limit
        self._open = 0  # connections open or being opened
        self._idle: list[Connection] = []
        self._waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self._watched: dict[Connection, None] = {}
        self._read_buffer = memoryview(bytearray(_READ_SIZE))  # see Connection.get_buffer
        self._live: set[Connection] = set()  # every connection not yet lost
        self._all_lost: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = math.inf
        self.closed = False

    @property
    def in_use(self) -> int:
        """Connections open (or being opened) and not idle in the pool."""
        return self._open - len(self._idle)

    @property
    def idle(self) -> int:
        """Connections idle in the pool, ready for reuse."""
        return len(self._idle)

    # requests

    async def request(
        self,
        method: str,
        path: str,
        query: str | None,
        headers: bytes,
        body: bytes | None,
        *,
        connect: float | None,
        read: float | None,
        limit: int,
        error_limit: int,
        repeatable: bool,
    ) -> Answer:
        """Send one request and read its answer. ``headers`` are this request's own header
        lines (encoded, each ending in CRLF); ``repeatable`` lets a request whose kept-alive
        connection turns out to be closed by the server go again on a fresh one."""
        target = self._prefix + path if query is None else f"{self._prefix}{path}?{query}"
        if body is None:
            # RFC 9110, 8.6: a POST says its content is empty (or some servers answer 411).
            end = b"Content-Length: 0\r\n\r\n" if method in _WITH_CONTENT else b"\r\n"
        else:
            end = b"Content-Length: %d\r\n\r\n" % len(body)
        parts = [f"{method} {target} HTTP/1.1\r\n".encode(), self._head.data, headers, end]
        if body is not None and len(body) <= _JOINED_BODY:
            parts.append(body)  # one block: one segment on the wire
            body = None
        unsent = Unsent(b"".join(parts), body)  # a large body is not copied behind its head
        del parts
        head_only = method == "HEAD"
        retried = False
        while True:
            conn = None if retried else self._take()  # once more: on a fresh connection
            if conn is None:
                conn = await self._acquire(connect)
            reused = conn.uses > 0
            waiter: asyncio.Future[Answer] = self._loop.create_future()
            conn.waiter = waiter
            try:
                conn.send(unsent, head_only, read, limit, error_limit)
                answer = await waiter
            except Disconnected:
                self._release(conn)
                if reused and repeatable and not retried:
                    retried = True
                    continue  # the server had closed it while idle: once more, on a new one
                raise
            except BaseException:
                conn.abort()  # cancelled or failed mid-way: the connection is in no known state
                self._release(conn)
                raise
            self._release(conn)
            return answer

    # connections

    def _take(self) -> Connection | None:
        """An idle connection that is still usable, if there is one."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                self._open -= 1
                continue
            if self._loop.time() - conn.idle_since > KEEPALIVE:
                # The oldest are at the start: they are older still.
                stale = [conn, *idle]
                idle.clear()
                for old in stale:
                    old._close()
                    self._open -= 1
                return None
            return conn
        return None

    async def _acquire(self, connect: float | None) -> Connection:
        if self.closed:
            raise Disconnected("the client's connections are closed")
        if self._open >= self._limit and self._idle:
            # A request going again on a fresh connection: the oldest idle one makes room.
            self._idle.pop(0)._close()
            self._open -= 1
        if self._open < self._limit:
            return await self._connect(connect)
        waiter: asyncio.Future[Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:
                    self._release(handed)
                else:
                    self._pass_slot()
            else:
                self._waiters.remove(waiter)
            raise
        if conn is not None:
            return conn
        if self.closed:  # close() let the waiters go
            raise Disconnected("the client's connections are closed")
        return await self._connect(connect)

    async def _connect(self, connect: float | None) -> Connection:
        """A new connection (its slot counted), within ``connect`` seconds."""
        self._open += 1
        try:
            async with asyncio.timeout(connect):
                _, conn = await self._loop.create_connection(
                    lambda: Connection(self),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except BaseException as exc:
            self._open -= 1
            self._pass_slot()
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise CertificateFailed(exc) from exc
            if isinstance(exc, ssl.SSLError):
                raise TLSFailed(f"the TLS handshake failed: {exc}") from exc
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                raise ConnectFailed(self._host, self._port, exc) from exc
            raise
        if self.closed:  # closed while connecting: close() did not see this one
            conn.abort()
            self._open -= 1
            raise Disconnected("the client's connections are closed")
        return conn

    def _release(self, conn: Connection) -> None:
        """``conn`` is done with: to a waiter, to the idle list, or closed (freeing its slot)."""
        conn.waiter = None
        if conn.reusable and not conn.closed and not self.closed:
            if not self._hand_over(conn):
                conn.idle_since = self._loop.time()
                self._idle.append(conn)
            return
        self._unwatch(conn)
        conn._close()
        self._open -= 1
        self._pass_slot()

    def _pass_slot(self) -> None:
        """A slot is free: the first waiter opens a connection of its own."""
        self._hand_over(None)

    def _hand_over(self, conn: Connection | None) -> bool:
        """Give the first waiter still waiting ``conn`` (None: a slot to open one in); whether
        there was one."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _lost(self, conn: Connection) -> None:
        """The server closed ``conn``; an idle one leaves the pool now."""
        self._unwatch(conn)
        self._live.discard(conn)
        if not self._live and self._all_lost is not None and not self._all_lost.done():
            self._all_lost.set_result(None)
        if conn in self._idle:
            self._idle.remove(conn)
            self._open -= 1
            self._pass_slot()

    # read time limits: one timer for the pool, due at the earliest limit

    def _watch(self, conn: Connection) -> None:
        assert conn.read_limit is not None
        self._watched[conn] = None
        due = conn.active + conn.read_limit + slack(conn.read_limit)
        if due < self._due:
            if self._timer is not None:
                self._timer.cancel()
            self._due = due
            # A context of its own: the timer outlives the request that set it (see _deadlines).
            self._timer = self._loop.call_at(due, self._expire, context=contextvars.Context())

    def _unwatch(self, conn: Connection) -> None:
        self._watched.pop(conn, None)

    def _expire(self) -> None:
        self._timer, self._due = None, math.inf
        now = self._loop.time()
        late = [c for c in self._watched if c.read_limit and now - c.active >= c.read_limit]
        for conn in late:
            del self._watched[conn]
            conn.time_out()
        if self._watched:
            due = min(
                c.active + c.read_limit + slack(c.read_limit)
                for c in self._watched
                if c.read_limit is not None
            )
            self._due = due
            self._timer = self._loop.call_at(due, self._expire, context=contextvars.Context())

    # closing

    async def close(self) -> None:
        """Close every connection (on this pool's loop); requests in flight fail.

        Connections are aborted, not shut down politely: an idle HTTP connection owes the server
        nothing, and a TLS close would wait for the server's reply. Returns once their sockets
        are closed (within a second), so a loop closed next leaves none behind.
        """
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if not self._live:
            return
        self._all_lost = self._loop.create_future()
        for conn in list(self._live):
            conn.abort()
        await asyncio.wait([self._all_lost], timeout=1.0)

    def abandon(self) -> None:
        """Let go of every connection without the loop (it is closed): their sockets close."""
        self.closed = True
        for conn in self._live:
            _close_without_loop(conn.transport)
        self._live.clear()
        self._idle.clear()
        self._watched.clear()


def _close_without_loop(transport: asyncio.BaseTransport | None) -> None:
    """Close a transport's socket after its loop was closed (the loop can run nothing more)."""
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
    sock = getattr(inner, "_sock", None)
    if sock is None:
        return
    try:
        sock.close()
    finally:
        inner._sock = None  # type: ignore[union-attr]


def _header_block(headers: Mapping[str, str]) -> bytes:
    """Header lines, each ending in CRLF; a later name replaces an earlier one in any case."""
    merged: dict[str, tuple[str, str]] = {}
    for name, value in headers.items():
        merged[name.lower()] = (name, value)
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in merged.values())


_TLS: list[ssl.SSLContext] = []


def _default_tls() -> ssl.SSLContext:
    """The system's CAs (made once: building a context reads them all)."""
    if not _TLS:
        _TLS.append(ssl.create_default_context())
    return _TLS[0]
