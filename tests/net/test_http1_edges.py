"""The client's own HTTP/1.1 connections at the edges of the protocol: answers cut by a reset or
cut inside a compressed body, answers that may not have a body, requests without a body, a
client closed while requests wait for a connection, kept-alive connections that drop requests,
what one answer may send besides its body, and header values with control characters."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import struct

import orjson
import pytest

from lume_async import APIConnectionError, APIError, AsyncLume, LumeError, Timeout

from ..core._scripted import RUN_ID, run_json
from ..hostile._servers import RawServer, Shape, raw, silence
from ._pool import connections, until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

KEY = "lume_test_key_0123456789"
BODY = orjson.dumps(run_json())


def _client(url: str, **kwargs: object) -> AsyncLume:
    return AsyncLume(api_key=KEY, base_url=url, max_retries=0, **kwargs)  # type: ignore[arg-type]


def _head(*lines: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    return (f"{version} {status}\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def _answer(body: bytes = BODY) -> bytes:
    return _head(f"Content-Length: {len(body)}") + body


def _run_id(n: int) -> str:
    return f"{RUN_ID[:-3]}{n:03d}"


# --- what holds -------------------------------------------------------------------------------


async def test_a_request_cancelled_mid_answer_never_hands_that_answer_to_the_next() -> None:
    first = _head(f"Content-Length: {len(BODY)}") + BODY
    served: list[int] = []

    async def shape(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        served.append(1)
        if len(served) == 1:
            writer.write(first[: len(first) - 40])  # the head and most of the body
            await writer.drain()
            return await silence(reader, writer)
        writer.write(_answer(orjson.dumps(run_json(_run_id(2)))))
        await writer.drain()
        return True

    async with RawServer(shape) as server, _client(server.url, max_connections=1) as lume:
        stuck = asyncio.ensure_future(lume.runs.get(RUN_ID))
        await server.until(lambda: server.requests == 1)
        await until(lambda: any(c._received for c in connections(lume)._live))
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        run = await lume.runs.get(_run_id(2))
    assert run.id == _run_id(2)
    assert server.connections == 2


async def test_a_whole_second_answer_after_the_first_is_never_taken_for_the_next() -> None:
    answers = iter(range(1, 100))

    async def shape(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        n = next(answers)
        own = _answer(orjson.dumps(run_json(_run_id(n))))
        stray = _answer(orjson.dumps(run_json(_run_id(99))))
        writer.write(own + stray if n == 1 else own)
        await writer.drain()
        return True

    async with RawServer(shape) as server, _client(server.url) as lume:
        assert (await lume.runs.get(_run_id(1))).id == _run_id(1)
        assert (await lume.runs.get(_run_id(2))).id == _run_id(2)  # not the stray run 99
    assert server.connections == 2


CHUNKINGS: dict[str, bytes] = {
    "uppercase hex and leading zeros": b"00A\r\n" + BODY[:10] + b"\r\n",
    "an extension with a quoted string": b'a;name="x;y"\r\n' + BODY[:10] + b"\r\n",
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
async def test_chunk_sizes_in_every_form_are_read_and_the_connection_kept(chunking: str) -> None:
    rest = BODY[10:]
    data = (
        _head("Transfer-Encoding: chunked")
        + CHUNKINGS[chunking]
        + b"%x\r\n%s\r\n" % (len(rest), rest)
        + b"0000\r\nX-Checksum: 1\r\n\r\n"
    )
    early = _head("Link: </style.css>; rel=preload", status="103 Early Hints")
    async with RawServer(raw(early + data, keep=True)) as server, _client(server.url) as lume:
        for _ in range(2):
            assert (await lume.runs.get(RUN_ID)).id == RUN_ID
    assert server.connections == 1


async def test_many_clients_opened_and_closed_leave_no_descriptors_behind() -> None:
    async def descriptors() -> int:
        await server.until(lambda: server.open_connections == 0)
        for _ in range(3):  # the server's own sockets close a turn after its handlers end
            await asyncio.sleep(0)
        return len(os.listdir("/proc/self/fd"))

    async with RawServer(raw(_answer(), keep=True)) as server:
        async with _client(server.url) as lume:  # what a first client sets up once, for all
            await lume.runs.get(RUN_ID)
        before = await descriptors()
        for _ in range(30):
            async with _client(server.url) as lume:
                await asyncio.gather(*(lume.runs.get(RUN_ID) for _ in range(3)))
        assert await descriptors() <= before


# --- answers taken as whole when they are not -------------------------------------------------


async def test_a_body_read_until_close_that_ends_in_a_reset_is_cut_short() -> None:
    reset = asyncio.Event()

    async def shape(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(_head() + BODY[:40])  # no length: the body ends with the connection
        await writer.drain()
        await reset.wait()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset, not an orderly close
        return False

    async with RawServer(shape) as server, _client(server.url) as lume:
        task = asyncio.ensure_future(lume.runs.get(RUN_ID))
        await server.until(lambda: server.requests == 1)
        await until(lambda: any(c._received for c in connections(lume)._live))
        reset.set()
        with pytest.raises(APIConnectionError, match="cut short"):
            await task


async def test_a_compressed_body_that_stops_before_its_end_is_refused() -> None:
    packed = gzip.compress(BODY)
    cut = packed[: len(packed) // 2]
    data = _head("Content-Encoding: gzip", f"Content-Length: {len(cut)}") + cut
    async with RawServer(raw(data, keep=True)) as server, _client(server.url) as lume:
        with pytest.raises(APIConnectionError, match="not valid HTTP"):
            await lume.runs.get(RUN_ID)


# --- answers that may not have a body ---------------------------------------------------------


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
async def test_an_answer_without_a_body_ends_at_its_head_whatever_its_framing(status: str) -> None:
    answers = iter([_head("Transfer-Encoding: chunked", status=status), _answer()])

    async def shape(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(next(answers))
        await writer.drain()
        return True

    # The read limit is what a client stuck waiting for chunks that never come runs into.
    timeout = Timeout(total=5, read=0.5)
    async with RawServer(shape) as server, _client(server.url, timeout=timeout) as lume:
        if status.startswith("204"):
            await lume.webhook_endpoints.delete("wh_1")
        else:
            with pytest.raises(APIError) as caught:
                await lume.runs.get(RUN_ID)
            assert caught.value.status_code == 304
        assert (await lume.runs.get(RUN_ID)).id == RUN_ID
    assert server.connections == 1


# --- requests ---------------------------------------------------------------------------------


async def test_a_post_without_a_body_says_its_body_is_empty() -> None:
    async with RawServer(raw(_answer(), keep=True)) as server, _client(server.url) as lume:
        await lume.runs.cancel(RUN_ID)
    request = server.heads[0].lower()
    assert request.startswith(b"post ")
    assert b"\r\ncontent-length: 0\r\n" in request


# --- closing the client -----------------------------------------------------------------------


def _first_hangs() -> Shape:
    served: list[int] = []

    async def shape(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        served.append(1)
        if len(served) == 1:
            return await silence(reader, writer)
        writer.write(_answer())
        await writer.drain()
        return True

    return shape


async def test_a_request_waiting_for_a_connection_is_not_sent_once_the_client_closed() -> None:
    async with RawServer(_first_hangs()) as server:
        lume = _client(server.url, max_connections=1)
        try:
            first = asyncio.ensure_future(lume.runs.get(RUN_ID))
            await server.until(lambda: server.requests == 1)
            second = asyncio.ensure_future(lume.runs.get(RUN_ID))
            await until(lambda: len(connections(lume)._waiters) == 1)
            await lume.aclose()
            results = await asyncio.gather(first, second, return_exceptions=True)
        finally:
            await lume.aclose()
        assert all(isinstance(result, LumeError) for result in results), results
        assert server.requests == 1
        assert server.connections == 1


async def test_a_connection_being_opened_as_the_client_closes_sends_nothing() -> None:
    async with RawServer(raw(_answer(), keep=True)) as server:
        lume = _client(server.url)
        try:
            task = asyncio.ensure_future(lume.runs.get(RUN_ID))
            await until(lambda: lume._core.transport.session is not None)
            pool = connections(lume)
            await until(lambda: pool._open == 1)
            assert not pool._live  # still connecting
            await lume.aclose()
            result = (await asyncio.gather(task, return_exceptions=True))[0]
        finally:
            await lume.aclose()
        assert isinstance(result, LumeError), result
        assert server.requests == 0


# --- kept-alive connections that drop requests ------------------------------------------------


async def test_a_request_dropped_on_kept_alive_connections_goes_again_at_most_once() -> None:
    async with RawServer(raw(_answer(), keep=True)) as server:
        async with _client(server.url, max_connections=4) as lume:
            await asyncio.gather(*(lume.runs.get(RUN_ID) for _ in range(4)))
            assert connections(lume).idle == 4
            # From now on, each request is read (its work maybe done) and its answer lost.
            server.shape = raw(b"", keep=False)
            with pytest.raises(APIConnectionError):
                await lume.runs.get(RUN_ID)
        assert server.requests - 4 <= 2  # the attempt and one more on a fresh connection


# --- what one answer may send besides its body ------------------------------------------------

_PAD = "p" * 100
EXTRAS: dict[str, bytes] = {
    "interim answers": _head(f"X-Pad: {_PAD}", status="103 Early Hints") * 1000 + _answer(),
    "trailers": _head("Transfer-Encoding: chunked")
    + b"%x\r\n%s\r\n0\r\n" % (len(BODY), BODY)
    + f"X-Pad: {_PAD}\r\n".encode() * 1000
    + b"\r\n",
}


@pytest.mark.parametrize("extra", EXTRAS)
async def test_heads_beyond_the_answer_s_own_count_toward_the_head_limit(extra: str) -> None:
    async with RawServer(raw(EXTRAS[extra], keep=True)) as server, _client(server.url) as lume:
        with pytest.raises(APIConnectionError, match="not valid HTTP"):
            await lume.runs.get(RUN_ID)


# --- header values ----------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\r", "\n", "\0"], ids=["CR", "LF", "NUL"])
async def test_a_header_value_with_a_control_line_character_is_refused_or_cleaned(
    char: str,
) -> None:
    data = _head(f"x-request-id: req_1{char}forged: yes", "Content-Length: 2", status="500 Oops")
    async with RawServer(raw(data + b"{}", keep=True)) as server, _client(server.url) as lume:
        with pytest.raises(LumeError) as caught:
            await lume.runs.get(RUN_ID)
    error = caught.value
    if not isinstance(error, APIConnectionError):  # refused, or else the value cleaned
        assert isinstance(error, APIError)
        assert not set(error.request_id or "") & {"\r", "\n", "\0"}
