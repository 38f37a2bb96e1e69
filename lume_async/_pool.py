"""The connection pool: one per client, on one event loop at a time.

Requests go straight to the service through the client's own HTTP/1.1 connections
(``_http1.Connections``), or through an aiohttp session when they go through a proxy (aiohttp
speaks to proxies, tunnels included). Either is called the session below.

The session is made lazily on the loop of the first request and closed on that loop when the loop
shuts down: a small async generator started with the session is finalised by
``loop.shutdown_asyncgens()`` (which ``asyncio.run``, ``asyncio.Runner``, ``anyio.run`` and
lume_sync's loop thread all call) and closes the session as it goes. So a client used from many
successive ``asyncio.run()`` calls holds one pool at a time, never one per loop. Using a client
on a second loop while its first is still open raises at once; after a fork, the child makes its
own pool and leaves the parent's sockets alone.

The API key is one of the session's default headers (for aiohttp, as a value whose ``repr``
is masked), unless requests go through a proxy: aiohttp copies a session's default headers into the
``CONNECT`` request it sends a proxy in clear, so then the key and the caller's default headers
go with each request instead (``request_headers``);
``mask_request_info`` gives an aiohttp error about to be chained under an SDK error a copy of its
request's headers with the key masked, since error reporters serialise ``request_info.headers``
(and the transport drops the error's frames, which hold the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._config import ClientConfig
from ._connections import Connections
from ._event_loop import OTHER_LOOP, running_loop
from ._exceptions import LumeError
from ._secrets import MASK
from ._version import __version__

__all__ = ["KEY_HEADER", "USER_AGENT", "Pool", "mask_request_info", "request_headers"]

logger = logging.getLogger("lume_async.transport")

USER_AGENT: Final = f"lume-sdk-python/{__version__} aiohttp/{aiohttp.__version__}"
KEY_HEADER: Final = "lume-api-key"


class _HeaderSecret(str):
    """A header value as sent, whose repr is masked (for tracebacks and debuggers)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


Session = aiohttp.ClientSession | Connections
"""What a pool holds: the client's own connections, or aiohttp's session through a proxy."""

# Pools a forked child inherited: their sockets are the parent's too, so the child never closes
# them (closing would unregister them from the epoll set both processes share); it only keeps
# them from being finalised.
_INHERITED: list[tuple[Session, object]] = []


class Pool:
    """The session of one client, bound to the loop it runs on."""

    def __init__(self, config: ClientConfig, *, ssl_context: ssl.SSLContext | bool) -> None:
        self._config = config
        self._ssl = ssl_context
        # The loop and its session, replaced whole (never changed in place) under ``_lock``, so a
        # single read of it is a whole binding: ``current()`` needs no lock.
        self._bound: tuple[asyncio.AbstractEventLoop, Session] | None = None
        self._pid = 0
        self._shutdown_hook: AsyncGenerator[None, None] | None = None
        self._closed = False
        self._warned = False
        # Taken to bind or unbind: two threads running a loop each may reach for one client at
        # once, and only one of them may bind it.
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def active(self) -> Session | None:
        """The session in use (None before the first request, after close, after its loop)."""
        bound = self._bound
        return None if bound is None else bound[1]

    def current(self) -> Session | None:
        """The session of the running loop, if it has one (the fast path of every request)."""
        # No lock: a binding is read whole. A session bound to the running loop stays bound
        # while that loop runs (another thread may only rebind a client whose loop is closed),
        # unless the client is closed meanwhile, which the transport checks after its request.
        bound = self._bound
        return bound[1] if bound is not None and bound[0] is asyncio.get_running_loop() else None

    async def session(self) -> Session:
        """The session of the running loop: the current one, or a new one made here.

        Raises LumeError if the client is closed, or still bound to another open loop.
        """
        loop = asyncio.get_running_loop()
        orphan: Session | None = None
        with self._lock:
            bound = self._bound
            if bound is not None and bound[0] is loop:
                return bound[1]
            if self._closed:
                raise LumeError("this client is closed; create a new one")
            if bound is not None:
                old_loop, old = bound
                if self._pid != os.getpid():
                    self._leave_to_parent(old, self._shutdown_hook)
                elif not old_loop.is_closed():
                    raise LumeError(OTHER_LOOP)
                else:
                    orphan = old
                self._bound = self._shutdown_hook = None
            session = self._open(loop)
        if orphan is not None:
            await self._drop_orphan(orphan)
        return session

    def _open(self, loop: asyncio.AbstractEventLoop) -> Session:
        session: Session
        if self._config.proxy is None:
            session = Connections(
                self._config.base_url,
                headers=self._headers(),
                ssl_context=self._ssl if isinstance(self._ssl, ssl.SSLContext) else None,
                limit=self._config.max_connections,
            )
        else:
            session = self._aiohttp_session()
        self._bound, self._pid = (loop, session), os.getpid()
        hook = _close_at_shutdown(weakref.ref(self), session, self._pid)
        # Started here, on ``loop``: the loop now tracks it, and finalises it at shutdown.
        with contextlib.suppress(StopIteration):
            hook.asend(None).send(None)
        self._shutdown_hook = hook
        return session

    def _aiohttp_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._config.max_connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=self._headers(),
            # An API client authenticates with its key: a cookie a server sets is neither kept
            # nor sent back (and no jar is searched on every request).
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
            trust_env=False,
        )

    async def _drop_orphan(self, session: Session) -> None:
        """Let go of a pool whose loop was closed without shutting down its async generators.

        That loop can no longer run a graceful close: the pool's connections are released, and
        their sockets close as Python collects them. Warns once per client.
        """
        if not self._warned:
            self._warned = True
            logger.warning(
                "the event loop this client last ran on was closed without "
                "loop.shutdown_asyncgens() (asyncio.run() does it), so its connections could not "
                "be closed gracefully; call `await client.aclose()` before closing a loop by hand"
            )
        if isinstance(session, Connections):
            session.abandon()
            return
        connector = session.connector
        session.detach()
        if connector is not None:
            await connector.close()  # on a closed loop: only forgets its connections

    @staticmethod
    def _leave_to_parent(session: Session, hook: AsyncGenerator[None, None] | None) -> None:
        """In a forked child: set the parent's pool aside, unclosed and unfinalised, for good."""
        if isinstance(session, Connections):
            _INHERITED.append((session, hook))
        else:
            _INHERITED.append((session, (session.connector, hook)))
            session.detach()

    def _forget(self, session: Session) -> None:
        """``session`` was closed with its loop: the next request makes a new one."""
        with self._lock:
            if self._bound is not None and self._bound[1] is session:
                self._bound = self._shutdown_hook = None

    def _headers(self) -> dict[str, str]:
        # Answers are small JSON: not compressed. Said here rather than with aiohttp's
        # skip_auto_headers, which copies the headers on every request.
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        if self._config.proxy is None:
            headers.update(_secret_headers(self._config))
        return headers

    async def aclose(self) -> None:
        """Close the session on its own loop (now if that loop runs, else when it shuts down);
        idempotent."""
        with self._lock:
            self._closed = True
            bound, hook = self._bound, self._shutdown_hook
            self._bound = self._shutdown_hook = None
        if bound is None or bound[1].closed:
            return
        loop, session = bound
        if self._pid != os.getpid():
            self._leave_to_parent(session, hook)  # the hook too: finalised, it would run here
            return
        if running_loop() is loop:
            try:
                await session.close()  # closed at once: what it then waits for may be cut short
            finally:
                if hook is not None:
                    await hook.aclose()
        elif loop.is_closed():
            await self._drop_orphan(session)
        elif loop.is_running() and hook is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hook.aclose(), loop))
        else:
            # A loop open but not running runs nothing until it runs again, so it is not waited
            # for (that could be for ever): the session closes with its shutdown_asyncgens(),
            # which finalises only the generators still alive, so this one is kept.
            self._shutdown_hook = hook


def _secret_headers(config: ClientConfig) -> dict[str, str]:
    """The caller's default headers and the key (last, so nothing can replace it)."""
    return {
        **dict(config.default_headers),
        KEY_HEADER: _HeaderSecret(config.api_key.reveal()),
    }


def request_headers(config: ClientConfig) -> dict[str, str]:
    """What each request carries besides the session's own headers: the caller's default
    headers and the key when requests go through a proxy (see the module's docstring)."""
    return _secret_headers(config) if config.proxy is not None else {}


def mask_request_info(exc: BaseException) -> None:
    """Give ``exc`` (an aiohttp error) and the errors chained to it a copy of their request's
    headers with the key masked."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        info = getattr(current, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo):
            headers = CIMultiDict(info.headers)
            if KEY_HEADER in headers:
                headers[KEY_HEADER] = MASK
            masked = aiohttp.RequestInfo(info.url, info.method, CIMultiDictProxy(headers))
            current.request_info = masked  # type: ignore[attr-defined]
            current.args = tuple(masked if arg is info else arg for arg in current.args)
        current = current.__cause__ or current.__context__


async def _close_at_shutdown(
    pool: weakref.ref[Pool], session: Session, pid: int
) -> AsyncGenerator[None, None]:
    """Suspended until its loop shuts down its async generators, then closes ``session``."""
    try:
        yield
    finally:
        if pid == os.getpid() and not session.closed:
            await session.close()
        owner = pool()
        if owner is not None:
            owner._forget(session)
