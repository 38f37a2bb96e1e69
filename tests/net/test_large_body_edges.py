"""Large request bodies (inline rows, batch creates) on the client's own HTTP/1.1 connections:
answers that come before the body is all sent, servers that take the body slowly or not at all,
and what one send holds in memory."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
import pytest

from lume_async import APIConnectionError, APIError, APITimeoutError, AsyncLume, Timeout
from lume_async._http1 import Connection

from ..core._scripted import RUN_ID, run_json
from ._pool import connections, until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

KEY = "lume_test_key_0123456789"
FLOW = "customer_cleaner:v1"
RUN = orjson.dumps(run_json())
TOO_LARGE = orjson.dumps({"error": {"code": "payload_too_large", "message": "too large"}})

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _rows(size: int) -> list[dict[str, Any]]:
    """Inline rows of about ``size`` bytes as JSON."""
    return [{"note": "x" * 1000, "n": n} for n in range(size // 1010)]


def _answer(status: str, body: bytes, *lines: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "x-request-id: req_large", *lines]
    return ("\r\n".join([*head, f"Content-Length: {len(body)}"]) + "\r\n\r\n").encode() + body


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@contextlib.asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server whose connections take little of a body they do not read (a small receive
    buffer); yields its URL and a list that grows by one per connection."""
    seen: list[int] = []
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await handler(reader, writer)
        finally:
            writer.transport.abort()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(serve, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(_length(head))
    return head


# --- what holds -------------------------------------------------------------------------------


async def test_an_early_answer_from_a_server_that_resets_is_read_and_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_answer("413 Payload Too Large", TOO_LARGE, "Connection: close"))
        await writer.drain()  # then closed with the body unread: a reset

    async with _server(handler) as (url, seen), AsyncLume(api_key=KEY, base_url=url) as lume:
        with anyio.fail_after(1), pytest.raises(APIError) as caught:
            await lume.runs.create(FLOW, source_data=_rows(6 << 20))
    assert caught.value.status_code == 413
    assert len(seen) == 1


async def test_an_upload_the_server_stops_taking_trips_the_read_limit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.Event().wait()  # reads no more

    timeout = Timeout(total=None, connect=1, read=0.1)
    async with (
        _server(handler) as (url, _),
        AsyncLume(api_key=KEY, base_url=url, timeout=timeout, max_retries=0) as lume,
    ):
        with anyio.fail_after(1), pytest.raises(APITimeoutError, match="timed out"):
            await lume.runs.create(FLOW, source_data=_rows(8 << 20))
        await until(lambda: not connections(lume)._live, 0.001)


# --- what failed ------------------------------------------------------------------------------


@pytest.mark.parametrize("close", [False, True], ids=["kept alive", "Connection: close"])
async def test_an_answer_before_the_whole_body_went_out_closes_that_connection(
    close: bool,
) -> None:
    # The server answers from the head alone and reads no more. Its connection must not go back
    # to the pool (the next request would sit behind the rest of the body), nor be left open
    # until the unread rest of the body went out.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET"):
            writer.write(_answer("200 OK", RUN))
            await writer.drain()
            await _read_request(reader)
            return
        extra = ("Connection: close",) if close else ()
        writer.write(_answer("413 Payload Too Large", TOO_LARGE, *extra))
        await writer.drain()
        await asyncio.Event().wait()

    timeout = Timeout(total=5, read=2)
    async with (
        _server(handler) as (url, seen),
        AsyncLume(api_key=KEY, base_url=url, timeout=timeout, max_connections=1) as lume,
    ):
        with anyio.fail_after(1):
            with pytest.raises(APIError) as caught:
                await lume.runs.create(FLOW, source_data=_rows(8 << 20))
            assert caught.value.status_code == 413
            await until(lambda: not connections(lume)._live, 0.001)
            run = await lume.runs.get(RUN_ID)
        assert run.id == RUN_ID
        assert len(seen) == 2


async def test_a_server_that_closes_its_side_mid_upload_without_answering_fails_at_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write_eof()  # no answer, and no more of the body read
        await asyncio.Event().wait()

    timeout = Timeout(total=5)
    async with (
        _server(handler) as (url, seen),
        AsyncLume(api_key=KEY, base_url=url, timeout=timeout, max_retries=0) as lume,
    ):
        with anyio.fail_after(1), pytest.raises(APIConnectionError, match="without answering"):
            await lume.runs.create(FLOW, source_data=_rows(8 << 20))
    assert len(seen) == 1


async def test_a_slow_but_steady_upload_is_not_cut_short_by_the_read_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A slow link: the kernel holds little of the body, the server takes it bit by bit. The read
    # limit bounds a silence, and the server taking the body is not one.
    made = Connection.connection_made

    def small_send_buffer(self: Connection, transport: asyncio.BaseTransport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        made(self, transport)

    monkeypatch.setattr(Connection, "connection_made", small_send_buffer)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = _length(await reader.readuntil(b"\r\n\r\n"))
        while length:
            length -= len(await reader.read(min(length, 64 * 1024)))
            await asyncio.sleep(0.004)
        writer.write(_answer("201 Created", RUN))
        await writer.drain()
        await asyncio.Event().wait()

    timeout = Timeout(total=5, read=0.1)
    async with (
        _server(handler) as (url, _),
        AsyncLume(api_key=KEY, base_url=url, timeout=timeout, max_retries=0) as lume,
    ):
        with anyio.fail_after(2):
            started = anyio.current_time()
            run = await lume.runs.create(FLOW, source_data=_rows(3 << 20))
            assert anyio.current_time() - started > 0.2  # the upload took longer than the limit
    assert run.id == RUN_ID


async def test_a_large_body_is_not_copied_whole_to_be_sent() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length = _length(await reader.readuntil(b"\r\n\r\n"))
            while length:
                length -= len(await reader.read(min(length, 64 * 1024)))
            writer.write(_answer("200 OK", RUN))
            await writer.drain()

    body = orjson.dumps({"source_data": _rows(5 << 20)})
    async with _server(handler) as (url, _), AsyncLume(api_key=KEY, base_url=url) as lume:
        await lume.runs.get(RUN_ID)  # the connection is open before measuring
        transport = lume._core.transport
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with anyio.fail_after(2):
                await transport.request(
                    "POST", "/v1/runs", route="/v1/runs", body=body, retryable=False
                )
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    assert peak < len(body) // 4, f"{peak:,} bytes held to send a {len(body):,}-byte body"
