"""A raw HTTP/1.1 server for hostile answers, and the family of shapes such answers take.

``RawServer`` reads each request's head and body, then hands the writer to a ``Shape``: a
coroutine that writes whatever it likes (a compression bomb, an endless body, a
``Content-Length`` that lies, a body dribbled out a byte at a time) and says whether to keep the
connection. The server runs on the loop it was entered on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import orjson

__all__ = [
    "SHAPES",
    "RawServer",
    "Shape",
    "bomb",
    "head",
    "json_answer",
    "raw",
    "silence",
    "slowloris",
]

Shape = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""Writes one answer; returns True to keep the connection for the next request."""

_CHUNK = 64 * 1024


def head(status: int = 200, **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", "x-request-id: req_hostile"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@functools.cache
def bomb(size: int, encoding: str) -> bytes:
    """``size`` zero bytes compressed as ``gzip`` or ``deflate`` (about 250 to 1).

    Each MiB is compressed with a full flush, which empties the compressor's window: every MiB
    after the first is then the same bytes, so one is compressed and repeated, and the stream's
    end (its checksum and length) is computed from the zeros, not compressed again.
    """
    mib = 1 << 20
    wbits = {"gzip": 31, "deflate": 15}[encoding]
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(mib)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    then = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    count = size // mib
    if count < 1 or size % mib:
        raise ValueError(f"size must be a whole number of MiB, got {size}")
    check = zlib.crc32(zeros) if encoding == "gzip" else zlib.adler32(zeros)
    for _ in range(count - 1):
        check = zlib.crc32(zeros, check) if encoding == "gzip" else zlib.adler32(zeros, check)
    last = b"\x03\x00"  # an empty final block, with fixed codes
    if encoding == "gzip":
        end = check.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    else:
        end = check.to_bytes(4, "big")
    return first + then * (count - 1) + last + end


def json_answer(doc: Any, status: int = 200, **headers: str | int) -> Shape:
    """A well-formed answer: ``doc`` as JSON with an exact length."""
    body = orjson.dumps(doc)

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status, content_type="application/json", content_length=len(body)))
        writer.write(body)
        await writer.drain()
        return True

    return write


def compressed(encoding: str, size: int = 256 << 20, status: int = 200) -> Shape:
    """A bomb: a small body that decompresses to ``size`` bytes."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        body = bomb(size, encoding)
        writer.write(head(status, content_encoding=encoding, content_length=len(body)))
        writer.write(body)
        await writer.drain()
        return True

    return write


def endless(framing: str, status: int = 200) -> Shape:
    """A body that never ends: chunk after chunk, or bytes until the client hangs up."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        chunk = b"[" * _CHUNK
        if framing == "chunked":
            writer.write(head(status, transfer_encoding="chunked"))
            chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        else:
            writer.write(head(status, connection="close"))
        while True:
            writer.write(chunk)
            await writer.drain()

    return write


def lying_length(declared: int, sent: int, status: int = 200) -> Shape:
    """A ``Content-Length`` of ``declared`` on a body of ``sent`` bytes, then the connection
    stays open (the client must not wait for bytes that never come, nor take extra ones)."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status, content_type="application/json", content_length=declared))
        for start in range(0, sent, _CHUNK):
            writer.write(b" " * min(_CHUNK, sent - start))
            await writer.drain()
        if declared > sent:
            await asyncio.sleep(3600)
        return False

    return write


def slowloris(pause: float = 0.05, status: int = 200) -> Shape:
    """Headers at once, then the body one byte per ``pause`` seconds, for ever."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status, content_type="application/json", transfer_encoding="chunked"))
        while True:
            writer.write(b"1\r\n \r\n")
            await writer.drain()
            await asyncio.sleep(pause)

    return write


def raw(data: bytes, *, keep: bool = False) -> Shape:
    """Exactly ``data`` on the wire (a broken status line, a cut body...), then close."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return keep

    return write


async def silence(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> bool:
    """No answer at all: wait until the client hangs up."""
    while await reader.read(4096):
        pass
    return False


SHAPES: dict[str, Shape] = {
    "gzip bomb": compressed("gzip"),
    "deflate bomb": compressed("deflate"),
    "gzip bomb as an error": compressed("gzip", status=503),
    "endless chunked body": endless("chunked"),
    "endless body until close": endless("close"),
    "endless error body": endless("chunked", status=500),
    "Content-Length too large": lying_length(10**12, 4 * _CHUNK),
    "body longer than its Content-Length": lying_length(2, 40 << 20),
}
"""Answers no client should hold more than its ``max_response_bytes`` of."""


class RawServer:
    """Answers every request with ``shape`` (settable); counts connections and requests."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.requests = 0
        self.heads: list[bytes] = []  # each request's line and headers, as sent
        self.connections = 0
        self.open_connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked as requests and connections come and go."""
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(request)
                length = 0
                for line in request.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                self._changed.set()
                if not await self.shape(reader, writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing
        finally:
            self.open_connections -= 1
            self._changed.set()
            self._tasks.discard(task)
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
