"""A real forward proxy process, a TLS front for the emulator, and a CA the client can trust."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from lume_async.testing import Emulator

from ..core._scripted import ScriptedServer

PROXY_SCRIPT = Path(__file__).with_name("_forward_proxy.py")
NAME = "lume.test"  # a host name only the proxy can resolve


class ProxyProcess:
    """``tests/net/_forward_proxy.py`` running as a process; ``seen`` is what it relayed.

    The proxy prints each request's line before it relays a byte of it, so by the time a client
    has an answer, the line is in the pipe: ``seen`` reads what is there, without waiting.
    """

    def __init__(self, *args: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(PROXY_SCRIPT), "--map", f"{NAME}=127.0.0.1", *args],
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self._fd = self._process.stdout.fileno()
        self._buffer = b""
        self._seen: list[dict[str, Any]] = []
        while b"\n" not in self._buffer:
            chunk = os.read(self._fd, 4096)
            assert chunk, "the proxy exited before it was ready"
            self._buffer += chunk
        ready, self._buffer = self._buffer.split(b"\n", 1)
        assert ready.startswith(b"READY "), ready
        self.port = int(ready.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[dict[str, Any]]:
        while select.select([self._fd], [], [], 0)[0]:
            chunk = os.read(self._fd, 65536)
            if not chunk:
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self._seen += [json.loads(line) for line in lines]
        return list(self._seen)

    def targets(self) -> list[str]:
        return [f"{seen['method']} {seen['target']}" for seen in self.seen]

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        assert self._process.stdout is not None
        self._process.stdout.close()


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    process = ProxyProcess()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def auth_proxy() -> Iterator[ProxyProcess]:
    process = ProxyProcess("--auth", "proxy-user:proxy-secret")
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator


class TlsFront:
    """TLS on a loopback port, relayed in clear to the emulator (certificate for ``NAME``)."""

    def __init__(self, upstream: int, context: ssl.SSLContext) -> None:
        self._upstream = upstream
        self._context = context
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def __aenter__(self) -> TlsFront:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # every relayed connection ends with the test
            writer.close()
        if self._relays:
            await asyncio.wait(self._relays, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
            self._writers.add(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._relays.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@pytest.fixture
async def tls_front(emu: Emulator, ca: trustme.CA) -> AsyncIterator[TlsFront]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME, "localhost", "127.0.0.1").configure_cert(context)
    async with TlsFront(emu.port, context) as front:
        yield front


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    """A scripted HTTP server on the test's loop: it answers what each test tells it to."""
    async with ScriptedServer() as server:
        yield server
