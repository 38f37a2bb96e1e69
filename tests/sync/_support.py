"""Helpers shared by the private-loop tests and their subprocess scripts.

A tiny keep-alive HTTP server and a "client" shaped like ``lume_sync.Lume``: it owns an aiohttp
session on the private loop and registers it with ``register_resource``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from lume_sync import _loop

if TYPE_CHECKING:
    from lume_async.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]

# What asyncio's debug mode (``python -X dev``) logs for a callback that held the loop over
# 0.1 s: on a loaded machine any callback may, so it says nothing about the code under test.
_SLOW_CALLBACK = re.compile(r"^Executing <.*> took \d+\.\d+ seconds\n", re.MULTILINE)


def without_slow_callbacks(stderr: str) -> str:
    """``stderr`` of a ``python -X dev`` process, less asyncio's reports of slow callbacks."""
    return _SLOW_CALLBACK.sub("", stderr)


def run_script(
    code: str, emu: Emulator, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -X dev -W error -c CODE``, told the emulator's URL and key (``EMU_URL``,
    ``EMU_KEY``) and ``env``."""
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMU_URL": emu.url,
        "EMU_KEY": emu.api_key,
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=45,
        check=False,
    )
    done.stderr = without_slow_callbacks(done.stderr)
    return done


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Answers every request on the connection with the client's port, until the client hangs up.
    port = writer.get_extra_info("peername")[1]
    body = str(port).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(head % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    except asyncio.CancelledError:
        # The loop is shutting down. Python 3.11's start_server() logs an error for a handler
        # task that ends cancelled (it calls task.exception() on it), so end it quietly instead.
        pass
    finally:
        writer.close()


class Server:
    """A keep-alive HTTP server on the private loop, closed with the loop."""

    def __init__(self) -> None:
        self._server = _loop.run(asyncio.start_server(_serve_connection, "127.0.0.1", 0))
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        self._handle = _loop.register_resource(self, self._aclose_server(self._server))

    @staticmethod
    def _aclose_server(server: asyncio.Server) -> Callable[[], Awaitable[None]]:
        async def aclose() -> None:
            server.close()
            await server.wait_closed()

        return aclose

    def close(self) -> None:
        self._handle.close()


class Client:
    """A sync client owning an aiohttp session on the private loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        session = _loop.run(_new_session())
        self._session = session
        self._handle = _loop.register_resource(self, session.close)

    def get(self) -> int:
        """GET the server; returns the local port of the connection that carried it."""
        return self._handle.run(_get(self._session, self.url))

    def close(self) -> None:
        self._handle.close()


async def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        return int(await response.text())


def in_forked_child(fn: Callable[[], str], timeout: float = 10) -> str:
    """Run ``fn`` in an os.fork() child; its result (or 'err Type: msg'), or 'HANG'."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        try:
            out = "ok " + fn()
        except BaseException as exc:
            out = f"err {type(exc).__name__}: {exc}"
        os.write(write, out.encode()[:4000])
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + timeout
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read)
            return "HANG"
        time.sleep(0.02)
    out = os.read(read, 8000).decode()
    os.close(read)
    return out
