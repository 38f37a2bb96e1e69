"""A fault-injecting TCP proxy for tests: what a bad network does to a client, on demand.

``FaultProxy`` listens on a loopback port and forwards every connection to an upstream server,
applying ``Toxics`` on the way: latency and jitter per chunk, a bandwidth cap per direction, a
connection reset in the middle of an answer, an answer that stops and hangs, a request that is
swallowed, and a slow close. Every decision comes from one ``random.Random(seed)``, so the same
seed gives the same sequence of decisions. It can also terminate TLS (``ssl=``), to test
certificate verification against a real handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl as _ssl
import struct
from types import TracebackType

import attrs

__all__ = ["Dice", "FaultProxy", "ProxyStats", "Toxics"]

_CHUNK = 16 * 1024
_SLICE = 1024  # bandwidth is paced in slices of this many bytes


@attrs.frozen(kw_only=True)
class Toxics:
    """What the proxy does to the traffic (rates are probabilities, times in seconds)."""

    latency: float = 0.0  # added before each chunk is forwarded, both directions
    jitter: float = 0.0  # plus a uniform draw in [0, jitter]
    bandwidth: float | None = None  # bytes/s per connection and direction
    reset_rate: float = 0.0  # per answer chunk: forward part of it, then reset the connection
    hang_rate: float = 0.0  # per answer chunk: forward nothing more, keep the connection open
    swallow_rate: float = 0.0  # per connection: requests reach nobody, no answer ever comes
    slow_close: float = 0.0  # delay between one side closing and the other being closed
    seed: int = 0


@attrs.define
class ProxyStats:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0
    hangs: int = 0
    swallowed: int = 0


class Dice:
    """The proxy's seeded decisions, in the order they are asked for."""

    def __init__(self, toxics: Toxics) -> None:
        self._toxics = toxics
        self._rng = random.Random(toxics.seed)

    def delay(self) -> float:
        t = self._toxics
        if not t.latency and not t.jitter:
            return 0.0
        return t.latency + (self._rng.uniform(0.0, t.jitter) if t.jitter else 0.0)

    def swallow(self) -> bool:
        return self._toxics.swallow_rate > 0 and self._rng.random() < self._toxics.swallow_rate

    def answer_fault(self) -> str | None:
        """For one chunk of an answer: ``"reset"``, ``"hang"`` or None."""
        t = self._toxics
        if not t.reset_rate and not t.hang_rate:
            return None
        draw = self._rng.random()
        if draw < t.reset_rate:
            return "reset"
        if draw < t.reset_rate + t.hang_rate:
            return "hang"
        return None

    def cut(self, size: int) -> int:
        """Where to cut a chunk of ``size`` bytes that is reset midway (at least one byte goes)."""
        return self._rng.randint(1, size) if size > 1 else 1


def _outcome(task: asyncio.Future[str]) -> str | None:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """``async with FaultProxy(port, toxics) as proxy:`` then point a client at ``proxy.url``."""

    def __init__(
        self,
        upstream_port: int,
        toxics: Toxics | None = None,
        *,
        upstream_host: str = "127.0.0.1",
        ssl: _ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.toxics = toxics or Toxics()
        self.stats = ProxyStats()
        self._dice = Dice(self.toxics)
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def set_toxics(self, toxics: Toxics) -> None:
        """Change the toxics for connections and chunks from now on (reseeds the decisions)."""
        self.toxics = toxics
        self._dice = Dice(toxics)

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self._ssl, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        try:
            await self._serve(client_r, client_w)
        except (OSError, asyncio.IncompleteReadError, _ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is closing: this connection ends with it
        finally:
            self._tasks.discard(task)
            client_w.transport.abort()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._dice.swallow():
            # Read and drop whatever comes until the client gives up.
            self.stats.swallowed += 1
            while await client_r.read(_CHUNK):
                pass
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_w)
            return
        try:
            upload = asyncio.ensure_future(self._pipe(client_r, up_w, upstream=True))
            download = asyncio.ensure_future(self._pipe(up_r, client_w, upstream=False))
            try:
                await asyncio.wait({upload, download}, return_when=asyncio.FIRST_COMPLETED)
                if _outcome(download) == "hang":
                    # The answer stalls for good: hold the connection until the client leaves.
                    await upload
                elif _outcome(upload) == "eof" and not download.done():
                    # The client half-closed after its request: let the answer finish.
                    await download
            finally:
                for task in (upload, download):
                    task.cancel()
                await asyncio.gather(upload, download, return_exceptions=True)
        finally:
            up_w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> str:
        """Forward one direction until EOF; the answer direction may reset or hang."""
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                if self.toxics.slow_close:
                    await asyncio.sleep(self.toxics.slow_close)
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return "eof"
            delay = self._dice.delay()
            if delay:
                await asyncio.sleep(delay)
            if not upstream:
                fault = self._dice.answer_fault()
                if fault == "reset":
                    self.stats.resets += 1
                    writer.write(chunk[: self._dice.cut(len(chunk))])
                    with contextlib.suppress(OSError, ConnectionError):
                        await writer.drain()
                    _reset(writer)
                    return "reset"
                if fault == "hang":
                    self.stats.hangs += 1
                    writer.write(chunk[: self._dice.cut(len(chunk)) - 1])
                    return "hang"
            if upstream:
                self.stats.bytes_up += len(chunk)
            else:
                self.stats.bytes_down += len(chunk)
            bandwidth = self.toxics.bandwidth
            if bandwidth:
                for start in range(0, len(chunk), _SLICE):
                    piece = chunk[start : start + _SLICE]
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(len(piece) / bandwidth)
            else:
                writer.write(chunk)
                await writer.drain()
