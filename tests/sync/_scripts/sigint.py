"""Blocks in lume_sync's run() until SIGINT; reports the cleanup order and leftover tasks."""

from __future__ import annotations

import asyncio
import signal
import sys

from lume_sync import _loop


async def _sleep_long() -> None:
    print("started", flush=True)
    try:
        await asyncio.sleep(30)
    finally:
        print("finally", flush=True)


async def _busy() -> None:
    await asyncio.sleep(0)


async def _other_tasks() -> int:
    return len(asyncio.all_tasks() - {asyncio.current_task()})


def main(mode: str) -> None:
    try:
        if mode == "long":
            _loop.run(_sleep_long())
        else:  # many short calls: the interrupt lands anywhere in the hand-off
            print("started", flush=True)
            while True:
                _loop.run(_busy)  # made inside the call, as the facade's coroutines are
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print("tasks", _loop.run(_other_tasks()), flush=True)


if __name__ == "__main__":
    # A shell may start a background process with SIGINT ignored; this test needs Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main(sys.argv[1])
