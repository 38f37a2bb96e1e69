"""The client's own HTTP/1.1 connections, on the wire: every framing an answer may take, what a
malformed answer does, kept-alive connections the server closed, time limits, the connection
limit and cancellation."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import zlib
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from lume_async import APIConnectionError, APITimeoutError, AsyncLume, Timeout
from lume_async._connections import Connections
from lume_async._http_types import encode_query

from ..core._scripted import RUN_ID, run_json
from ..hostile._servers import RawServer, Shape, raw, silence

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

KEY = "lume_test_key_0123456789"
BODY = orjson.dumps(run_json())


def _client(url: str, **kwargs: object) -> AsyncLume:
    return AsyncLume(api_key=KEY, base_url=url, max_retries=0, **kwargs)  # type: ignore[arg-type]


def _head(*lines: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    return (f"{version} {status}\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def _chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def _pieces(data: bytes, size: int) -> Shape:
    """``data`` in writes of ``size`` bytes, each on its own turn of the server's loop."""

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        for i in range(0, len(data), size):
            writer.write(data[i : i + size])
            await writer.drain()
            await asyncio.sleep(0)
        return True

    return write


# Answers that carry the run, with whether the connection may serve the next request.
FRAMINGS: dict[str, tuple[Callable[[], Shape], bool]] = {
    "length": (lambda: raw(_head(f"Content-Length: {len(BODY)}") + BODY, keep=True), True),
    "length, a byte at a time": (
        lambda: _pieces(_head(f"Content-Length: {len(BODY)}") + BODY, 1),
        True,
    ),
    "chunked, with extensions and trailers": (
        lambda: raw(_head("Transfer-Encoding: chunked") + _chunked(BODY, 100), keep=True),
        True,
    ),
    "chunked, in pieces": (
        lambda: _pieces(_head("Transfer-Encoding: chunked") + _chunked(BODY, 7), 5),
        True,
    ),
    "gzip": (
        lambda: raw(
            _head("Content-Encoding: gzip", f"Content-Length: {len(gzip.compress(BODY))}")
            + gzip.compress(BODY),
            keep=True,
        ),
        True,
    ),
    "deflate, chunked": (
        lambda: raw(
            _head("Content-Encoding: deflate", "Transfer-Encoding: chunked")
            + _chunked(zlib.compress(BODY), 50),
            keep=True,
        ),
        True,
    ),
    "gzip as a transfer coding, chunked": (
        lambda: raw(
            _head("Transfer-Encoding: gzip, chunked") + _chunked(gzip.compress(BODY), 64),
            keep=True,
        ),
        True,
    ),
    "chunked and a Content-Length": (
        lambda: raw(
            _head("Transfer-Encoding: chunked", "Content-Length: 3") + _chunked(BODY, 64),
            keep=True,
        ),
        False,
    ),
    "an interim 100 first": (
        lambda: raw(
            _head(status="100 Continue") + _head(f"Content-Length: {len(BODY)}") + BODY,
            keep=True,
        ),
        True,
    ),
    "until the connection ends": (lambda: raw(_head() + BODY), False),
    "HTTP/1.0": (
        lambda: raw(_head(f"Content-Length: {len(BODY)}", version="HTTP/1.0") + BODY),
        False,
    ),
    "Connection: close": (
        lambda: raw(_head("Connection: close", f"Content-Length: {len(BODY)}") + BODY),
        False,
    ),
}


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_every_framing_of_an_answer_is_read(framing: str) -> None:
    make, reusable = FRAMINGS[framing]
    async with RawServer(make()) as server, _client(server.url) as lume:
        for _ in range(3):
            run = await lume.runs.get(RUN_ID)
            assert run.id == RUN_ID and run.flow_version == "customer_cleaner:v1"
    assert server.requests == 3
    assert server.connections == (1 if reusable else 3)


MALFORMED: dict[str, bytes] = {
    "not HTTP": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "a status that is not a number": _head(status="2x0 OK"),
    "HTTP/2 in a status line": b"HTTP/2 200 OK\r\n\r\n",
    "a header without a colon": _head("Content-Length 10"),
    "a header name ending in a space": _head("Content-Length : 2") + b"{}",
    "two Content-Lengths that differ": _head("Content-Length: 2", "Content-Length: 3") + b"{}",
    "a Content-Length that is not a number": _head("Content-Length: -1") + b"{}",
    "a chunk size that is not hexadecimal": _head("Transfer-Encoding: chunked") + b"zz\r\n",
    "a chunk that overruns its size": _head("Transfer-Encoding: chunked") + b"2\r\n{}}\r\n",
    "a head over 64 KiB": _head("X-Big: " + "y" * 70_000),
    "a switch of protocols": _head("Upgrade: h2c", status="101 Switching Protocols"),
    "a gzip body that is not gzip": _head("Content-Encoding: gzip", "Content-Length: 8")
    + b"notgzip!",
}


@pytest.mark.parametrize("shape", MALFORMED)
async def test_a_malformed_answer_is_a_connection_error_and_drops_the_connection(
    shape: str,
) -> None:
    async with RawServer(raw(MALFORMED[shape], keep=True)) as server, _client(server.url) as lume:
        with pytest.raises(APIConnectionError) as caught:
            await lume.runs.get(RUN_ID)
        assert KEY not in str(caught.value)
        await server.until(lambda: server.open_connections == 0)
        session = lume._core.transport.session
        assert isinstance(session, Connections) and session.in_use == 0 and session.idle == 0


@pytest.mark.parametrize("when", ["mid-head", "mid-body", "mid-chunk"])
async def test_an_answer_cut_short_is_a_connection_error(when: str) -> None:
    data = {
        "mid-head": b"HTTP/1.1 200 OK\r\nContent-Le",
        "mid-body": _head(f"Content-Length: {len(BODY)}") + BODY[:20],
        "mid-chunk": _head("Transfer-Encoding: chunked") + b"100\r\n" + BODY[:20],
    }[when]
    async with RawServer(raw(data)) as server, _client(server.url) as lume:
        with pytest.raises(APIConnectionError, match="cut short"):
            await lume.runs.get(RUN_ID)


async def test_a_kept_alive_connection_the_server_closed_is_not_used_again() -> None:
    # The server answers as if it kept the connection, then closes it while it is idle.
    shape = raw(_head(f"Content-Length: {len(BODY)}") + BODY, keep=False)
    async with RawServer(shape) as server, _client(server.url) as lume:
        for _ in range(3):
            await lume.runs.get(RUN_ID)
            await server.until(lambda: server.open_connections == 0)
    assert server.connections == 3


async def test_a_request_on_a_connection_closed_as_it_was_sent_goes_again_once() -> None:
    answer = _head(f"Content-Length: {len(BODY)}") + BODY
    served: list[int] = []

    async def first_answer_then_hang_up(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        served.append(1)
        if len(served) % 2 == 0:
            return False  # the request arrived, and the connection closes without an answer
        w.write(answer)
        await w.drain()
        return True

    async with RawServer(first_answer_then_hang_up) as server, _client(server.url) as lume:
        await lume.runs.get(RUN_ID)
        run = await lume.runs.get(RUN_ID)  # without retries: the pool sent it again by itself
    assert run.id == RUN_ID
    assert server.requests == 3
    assert server.connections == 2


async def test_the_read_limit_times_out_a_silent_server() -> None:
    async with (
        RawServer(silence) as server,
        _client(server.url, timeout=Timeout(total=20, read=0.1)) as lume,
    ):
        with pytest.raises(APITimeoutError):
            await lume.runs.get(RUN_ID)
        await server.until(lambda: server.open_connections == 0)


async def test_the_read_limit_is_between_segments_not_for_the_whole_answer() -> None:
    data = _head(f"Content-Length: {len(BODY)}") + BODY

    async def slow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        for i in range(0, len(data), len(data) // 6):
            writer.write(data[i : i + len(data) // 6])
            await writer.drain()
            await asyncio.sleep(0.05)
        return True

    async with RawServer(slow) as server, _client(server.url, timeout=Timeout(read=0.5)) as lume:
        assert (await lume.runs.get(RUN_ID)).id == RUN_ID


async def test_no_more_than_max_connections_are_ever_open() -> None:
    answer = _head(f"Content-Length: {len(BODY)}") + BODY
    most = [0]

    async def slow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        most[0] = max(most[0], server.open_connections)
        await asyncio.sleep(0.01)
        writer.write(answer)
        await writer.drain()
        return True

    async with RawServer(slow) as server, _client(server.url, max_connections=3) as lume:
        runs = await asyncio.gather(*(lume.runs.get(RUN_ID) for _ in range(40)))
    assert len(runs) == 40
    assert server.requests == 40
    assert most[0] == 3
    assert server.connections == 3


async def test_a_cancelled_request_closes_its_connection_and_frees_its_slot() -> None:
    answer = _head(f"Content-Length: {len(BODY)}") + BODY
    hang = asyncio.Event()

    async def first_hangs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not hang.is_set():
            hang.set()
            return await silence(reader, writer)
        writer.write(answer)
        await writer.drain()
        return True

    async with RawServer(first_hangs) as server, _client(server.url, max_connections=1) as lume:
        stuck = asyncio.ensure_future(lume.runs.get(RUN_ID))
        await server.until(lambda: server.requests == 1)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        await server.until(lambda: server.open_connections == 0)
        assert (await lume.runs.get(RUN_ID)).id == RUN_ID  # the one slot is free again


async def test_close_closes_every_connection() -> None:
    answer = _head(f"Content-Length: {len(BODY)}") + BODY
    async with RawServer(raw(answer, keep=True)) as server:
        lume = _client(server.url)
        await asyncio.gather(*(lume.runs.get(RUN_ID) for _ in range(5)))
        assert server.open_connections > 0
        await lume.aclose()
        await server.until(lambda: server.open_connections == 0)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@given(st.lists(st.tuples(_TEXT.filter(bool), _TEXT | st.integers()), max_size=5))
@settings(max_examples=200, deadline=None)
def test_a_query_decodes_to_what_was_encoded(params: list[tuple[str, str | int]]) -> None:
    decoded = URL("/?" + encode_query(params)).query
    assert list(decoded.items()) == [(name, str(value)) for name, value in params]


def test_a_query_value_that_is_neither_text_nor_a_number_is_refused() -> None:
    with pytest.raises(TypeError, match="expected str or int"):
        encode_query({"flag": True})  # type: ignore[dict-item]


class _StubPool:
    """What a Connection asks of its pool, without a network."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._live: set[object] = set()

    def _watch(self, conn: object) -> None: ...
    def _unwatch(self, conn: object) -> None: ...
    def _lost(self, conn: object) -> None: ...


class _StubTransport:
    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    abort = close


_ANSWERS = {
    "length": _head(f"Content-Length: {len(BODY)}") + BODY,
    "chunked": _head("Transfer-Encoding: chunked") + _chunked(BODY, 37),
    "gzip, chunked": _head("Content-Encoding: gzip", "Transfer-Encoding: chunked")
    + _chunked(gzip.compress(BODY), 11),
    "interim, then length": _head(status="100 Continue")
    + _head(f"Content-Length: {len(BODY)}")
    + BODY,
}


@given(
    answer=st.sampled_from(sorted(_ANSWERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_an_answer_reads_the_same_however_it_is_cut_into_segments(
    answer: str, cuts: list[int]
) -> None:
    from lume_async._http1 import Connection
    from lume_async._http_types import Unsent

    data = _ANSWERS[answer]
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(_StubPool(loop))  # type: ignore[arg-type]
        conn.connection_made(_StubTransport())  # type: ignore[arg-type]
        conn.waiter = loop.create_future()
        conn.send(Unsent(b"GET / HTTP/1.1\r\n\r\n"), False, None, 1 << 20, 1 << 20)
        points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
        for start, end in itertools.pairwise(points):
            conn.data_received(data[start:end])
        assert conn.waiter.done()
        result = conn.waiter.result()
        assert (result.status, result.body, result.over) == (200, BODY, False)
        assert conn.reusable
    finally:
        loop.close()
