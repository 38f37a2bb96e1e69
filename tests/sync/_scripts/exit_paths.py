"""Leaves the interpreter one way (argv[1]) with lume_sync's loop in use; stderr must stay clean."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator

from lume_async._exceptions import SyncFacadeError
from lume_sync import _loop
from tests.sync._support import Client, Server


async def _numbers() -> AsyncIterator[int]:
    for n in range(10):
        yield n


def _call_forever_in_daemon_thread() -> None:
    started = threading.Event()

    async def wait() -> None:
        started.set()
        await asyncio.sleep(30)

    def target() -> None:
        with contextlib.suppress(SyncFacadeError):  # the loop shuts down under it at exit
            _loop.run(wait())

    threading.Thread(target=target, daemon=True).start()
    started.wait(5)


def main(mode: str) -> None:
    server = Server()
    client = Client(server.url)  # never closed, in every mode
    client.get()
    if mode == "normal":
        return
    if mode == "sys_exit":
        sys.exit(3)
    if mode == "uncaught":
        raise RuntimeError("boom")
    if mode == "open_iterator":
        iterator = _loop.iterate(_numbers())
        next(iterator)
        globals()["left_open"] = iterator
        return
    if mode == "daemon_call":
        _call_forever_in_daemon_thread()
        return
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1])
