"""HTTP/1.1 on asyncio's protocol layer: one connection of the client's own, and its answers.

A request to the service is small and its answer one JSON document: a status line, a few
headers and a body of known length, usually in one segment. A ``Connection`` sends a request as
one prebuilt block of bytes (a large body follows it in pieces, as fast as the server takes them;
an answer that comes before all of it went out closes the connection) and parses the answer as
it arrives, without the layers a general client puts around each request (request and response
objects, URL parsing, cookie and redirect handling, tracing, per-request timers): about 70 µs of
CPU less per request than ``aiohttp.ClientSession.request`` (see benchmarks/README.md).

What an answer may be is bounded as before (``_responses``): a success answer over ``limit``
bytes (counted after decompression) is cut off at the limit and reported (``Answer.over``), an
error answer is read up to ``error_limit`` bytes and the rest dropped with the connection; a head
over ``MAX_HEAD`` bytes, a malformed status line or header, a bad ``Content-Length`` or chunk size
are a ``BadAnswer``. A connection is reusable only after a whole answer that leaves it usable
(framed by length or chunks, no ``Connection: close``, nothing sent after it).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING, Final, cast

from multidict import CIMultiDictProxy

from ._http1_head import content_length as _content_length
from ._http1_head import decoder as _decoder
from ._http1_head import gather as _gather
from ._http1_head import parse_head as _parse_head
from ._http_types import Answer, BadAnswer, CutShort, Disconnected, HTTPFailure, ReadTimeout, Unsent

if TYPE_CHECKING:
    from ._connections import Connections

__all__ = ["MAX_HEAD", "Connection"]

MAX_HEAD: Final = 64 * 1024
"""The largest status line plus headers an answer may have."""
_MAX_CHUNK_LINE: Final = 4096
_DECODE_STEP: Final = 256 * 1024
_NO_BODY: Final = frozenset({204, 304})
_WRITE_STEP: Final = 256 * 1024

# --- one connection ---------------------------------------------------------------------------

# What the body of the answer being read is framed by.
_HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE, _DONE = range(5)


class Connection(asyncio.BufferedProtocol):
    """One connection: sends a request, parses its answer, completes ``waiter`` with it."""

    def __init__(self, pool: Connections) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.reusable = False
        self.uses = 0
        self.idle_since = 0.0
        self.active = 0.0  # when the server last sent something (or the request was sent)
        self.read_limit: float | None = None
        self._buf = bytearray()
        self._state = _DONE
        self._received = False
        self._head_only = False
        self._status = 0
        self._headers: CIMultiDictProxy[str] | None = None
        self._length: int | None = None
        self._remaining = 0  # body bytes still to come (length framing) or in this chunk
        self._chunk_data = False  # inside a chunk's data (chunked framing)
        self._trailers = False  # past the last chunk, reading trailers
        self._parts: list[bytes | bytearray] = []
        self._size = 0  # body bytes kept (after decoding)
        self._cap = self._cap_ok = self._cap_error = 0
        self._over = False
        self._decoder: zlib._Decompress | None = None
        self._fed = False  # compressed bytes went into the decoder
        self._heads = 0  # bytes of heads (interim answers', its own, trailers) of this answer
        self._keep_alive = False
        self._body: memoryview | None = None  # what of the request's body is still to be written
        self._paused = False  # the transport's buffer is full (pause_writing)

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's and uvloop's TCP transports set TCP_NODELAY themselves.
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._pool._live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._body = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self._state == _UNTIL_CLOSE and exc is None and not self._pool.closed:
                # An orderly close ends the body; a reset, or our own abort, cuts it short.
                self._finish(keep_alive=False)
            elif not self._received:
                waiter.set_exception(
                    Disconnected("the server closed the connection without answering")
                )
            else:
                waiter.set_exception(CutShort(_cut_detail(self._state, exc)))
        self._pool._lost(self)

    def eof_received(self) -> bool | None:
        self._close()  # our side too, at once even mid-request (nobody reads the rest of it)
        return False  # connection_lost follows

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._body is not None:
            self._write_body()

    def get_buffer(self, sizehint: int) -> memoryview:
        # The pool's one buffer: received bytes are copied out of it at once (buffer_updated),
        # which spares allocating a buffer of the transport's largest read for every read.
        return self._pool._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._pool._read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self.read_limit is not None:
            self.active = self._pool._loop.time()
        if self.waiter is None or self._state == _DONE:
            # Nothing was asked: whatever this is, the connection cannot be trusted any more.
            self.reusable = False
            self._close()
            return
        try:
            if self._state == _HEAD:
                if self._buf:
                    self._buf += data
                    data = bytes(self._buf)
                    self._buf.clear()
                data = self._read_head(data)
                if self._state == _HEAD:
                    return
            if data:
                self._read_body(data)
        except BadAnswer as exc:
            self._fail(exc)

    # sending

    def send(
        self,
        request: Unsent,
        head_only: bool,
        read_limit: float | None,
        limit: int,
        error_limit: int,
    ) -> None:
        """Send ``request``; ``waiter`` (set by the caller) gets the answer, its body read up to
        ``limit`` bytes for a success and ``error_limit`` for an error."""
        self._cap_ok, self._cap_error = limit, error_limit
        self._state = _HEAD
        self._received = False
        self._heads = 0
        self._head_only = head_only
        self.read_limit = read_limit
        self.reusable = False
        self.uses += 1
        assert self.transport is not None
        self.transport.write(request.data)
        if request.body is not None:
            self._body = memoryview(request.body)
            self._write_body()
        if read_limit is not None:
            self.active = self._pool._loop.time()
            self._pool._watch(self)

    def _write_body(self) -> None:
        """Hand the transport the body's next pieces until its buffer is full (``pause_writing``)
        or the body is all written: the transport copies at most a piece of it, not the rest of
        the body, and a server that takes the body slowly counts as active (the read limit)."""
        transport = self.transport
        assert transport is not None
        body = self._body
        while body is not None and not self._paused and not transport.is_closing():
            piece = body[:_WRITE_STEP]
            body = self._body = body[_WRITE_STEP:] if len(body) > _WRITE_STEP else None
            transport.write(piece)
        if self.read_limit is not None:
            self.active = self._pool._loop.time()

    def _all_sent(self) -> bool:
        """Whether the whole request left the transport's buffer."""
        transport = self.transport
        return self._body is None and (transport is None or not transport.get_write_buffer_size())

    # reading

    def _read_head(self, data: bytes) -> bytes:
        """Parse the head at the start of ``data``; return what follows it."""
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if self._heads + len(data) > MAX_HEAD:
                    raise BadAnswer(f"the answer's head is over {MAX_HEAD:,} bytes")
                self._buf += data
                return b""
            if self._heads + end > MAX_HEAD:  # interim answers' heads count too
                raise BadAnswer(f"the answer's head is over {MAX_HEAD:,} bytes")
            status, headers, keep_alive = _parse_head(data[:end])
            data = data[end + 4 :]
            self._heads += end + 4
            if 100 <= status < 200:
                if status == 101:
                    raise BadAnswer("the server switched protocols unasked")
                continue  # an interim answer: the real one follows
            break
        self._status, self._headers = status, headers
        self._keep_alive = keep_alive
        self._cap = self._cap_ok if status < 300 else self._cap_error
        self._parts = []
        self._size = 0
        self._over = False
        self._length = None
        encoding = headers.get("Content-Encoding", "").strip().lower()
        self._decoder = _decoder(encoding)
        self._fed = False
        if self._head_only or status in _NO_BODY:
            # Ends at its head, whatever its framing headers say (RFC 9112, 6.3).
            self._state = _LENGTH
            self._remaining = 0
            if data:
                self._keep_alive = False
            self._finish(self._keep_alive)
            return b""
        te = headers.getall("Transfer-Encoding", ())
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
            if "Content-Length" in headers:
                # Both framings at once (RFC 9112, 6.3): the transfer coding wins, and the
                # connection is not trusted with another request.
                self._keep_alive = False
            if codings and codings[-1] == "chunked":
                self._state = _CHUNKED
                self._remaining = 0
                self._chunk_data = self._trailers = False
                codings.pop()
            else:  # framed by the connection's end: never reused
                self._keep_alive = False
                self._state = _UNTIL_CLOSE
            if self._decoder is None and codings:  # a compressing transfer coding
                self._decoder = _decoder(codings[-1])
            return data
        lengths = headers.getall("Content-Length", ())
        if lengths:
            length = _content_length(lengths)
            self._length = self._remaining = length
            self._state = _LENGTH
            if length > self._cap and status < 300 and self._decoder is None:
                self._over = True  # not read at all: the declared length says enough
                self._finish(keep_alive=False)
                return b""
            if length == 0:
                if data:
                    self._keep_alive = False
                self._finish(self._keep_alive)
                return b""
            return data
        self._keep_alive = False
        self._state = _UNTIL_CLOSE
        return data

    def _read_body(self, data: bytes) -> None:
        state = self._state
        if state == _LENGTH:
            remaining = self._remaining
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                self._keep(data)
                return
            extra = len(data) > remaining
            self._remaining = 0
            self._keep(data[:remaining] if extra else data)
            if not self._over:
                self._finish(self._keep_alive and not extra)
        elif state == _CHUNKED:
            self._read_chunks(data)
        elif state == _UNTIL_CLOSE:
            self._keep(data)

    def _read_chunks(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while self._state == _CHUNKED and not self._over:
            if self._chunk_data:
                if self._remaining:
                    take = min(self._remaining, len(buf))
                    if not take:
                        return
                    self._keep(bytes(buf[:take]))
                    del buf[:take]
                    self._remaining -= take
                    continue
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise BadAnswer("a chunk of the answer does not end where its size says")
                del buf[:2]
                self._chunk_data = False
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > _MAX_CHUNK_LINE:
                    raise BadAnswer("a chunk size line of the answer is too long")
                return
            line = bytes(buf[:end])
            del buf[: end + 2]
            if self._trailers:
                self._heads += end + 2
                if self._heads > MAX_HEAD:
                    raise BadAnswer(f"the answer's head and trailers are over {MAX_HEAD:,} bytes")
                if not line:  # the end of the trailers: the answer is whole
                    extra = bool(buf)
                    buf.clear()
                    self._finish(self._keep_alive and not extra)
                    return
                continue
            size_text = line.split(b";", 1)[0].strip()
            try:
                # Hexadecimal digits only (int() would also take "0x", "_", "+" or spaces).
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError
                size = int(size_text, 16)
            except ValueError:
                raise BadAnswer(f"a chunk size is not hexadecimal: {line[:40]!r}") from None
            if size == 0:
                self._trailers = True
            else:
                self._remaining = size
                self._chunk_data = True

    def _keep(self, data: bytes) -> None:
        """Add body bytes (decoding them if the answer is compressed), within the cap."""
        decoder = self._decoder
        if decoder is None:
            self._add(data)
            return
        self._fed = True
        while data and not self._over:
            try:
                # In steps: a small compressed input may stand for gigabytes.
                out = decoder.decompress(data, _DECODE_STEP)
            except zlib.error as exc:
                raise BadAnswer(f"the answer's compressed body is invalid: {exc}") from None
            self._add(out)
            data = decoder.unconsumed_tail

    def _add(self, data: bytes) -> bool:
        """Keep decoded body bytes; True if they went past the cap (the answer is finished)."""
        if self._over:
            return True
        room = self._cap - self._size
        if len(data) > room:
            if self._status >= 300:  # an error's body is kept as far as it goes
                self._parts.append(data[:room])
            self._size = self._cap
            self._over = True
            self._finish(keep_alive=False)
            return True
        if data:
            _gather(self._parts, data)
            self._size += len(data)
        return False

    def _finish(self, keep_alive: bool) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None and not self._over:
            try:
                rest = decoder.flush()
            except zlib.error as exc:  # pragma: no cover - decompress reports it first
                self._fail(BadAnswer(f"the answer's compressed body is invalid: {exc}"))
                return
            if rest and self._add(rest):
                return  # past the cap: _add finished it
            if self._fed and not decoder.eof:
                self._fail(BadAnswer("the answer's compressed body ends before its end"))
                return
        self._state = _DONE
        self._buf.clear()
        parts = self._parts
        self._parts = []
        if self._over and self._status < 300:
            parts = []  # refused whole (ResponseTooLargeError): never joined into one copy
        first = parts[0] if parts else b""  # kept as it came, unless small pieces followed
        body = first if len(parts) == 1 and isinstance(first, bytes) else b"".join(parts)
        del parts
        # A server may answer before it has read the whole request (413, 401): the connection is
        # then not used again, since the rest of the request would go out before the next one.
        self.reusable = keep_alive and not self.closed and self._all_sent()
        self._pool._unwatch(self)
        waiter = self.waiter
        assert self._headers is not None
        answer = Answer(self._status, self._headers, body, self._length, self._over)
        if not self.reusable:
            self._close()
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, exc: HTTPFailure) -> None:
        self._state = _DONE
        self.reusable = False
        self._close()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def time_out(self) -> None:
        idle = "no data from the server" if self._all_sent() else "no more of the request taken"
        self._fail(ReadTimeout(f"{idle} for {self.read_limit:g} s"))

    def _close(self) -> None:
        self.reusable = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if self._all_sent():
                transport.close()
            else:  # the rest of the request is dropped, not waited on: nobody will read it
                transport.abort()
        self._body = None

    def abort(self) -> None:
        self.reusable = False
        self._body = None
        if self.transport is not None:
            self.transport.abort()


def _cut_detail(state: int, exc: Exception | None) -> str:
    where = {_HEAD: "in its head", _CHUNKED: "in its chunked body"}.get(state, "in its body")
    return f"the connection ended {where}" + (f": {exc}" if exc else "")
