"""The floor under goal 7's create: client CPU per create, the SDK against the least a client does.

``scale.py`` measures ``runs.create_many`` against the emulator at about 0.1 ms of client CPU per
run, most of goal 7's budget of 0.15 ms for the create and the wait together. This script puts
that figure next to what the same creates cost two other asyncio clients, on the same emulator
process, in turns:

- ``lume-sdk``: ``AsyncLume.runs.create_many`` (concurrency 64), each outcome unwrapped into its
  run handle, as ``scale.py`` does: up to 100 creates per ``POST /v1/runs/batch-create``;
- ``lume-sdk, one each``: ``AsyncLume.runs.create``, one create per request, 64 at a time (what
  ``create_many`` does with a service that has no batch create), to compare with the other
  clients request for request;
- ``aiohttp+orjson``: raw aiohttp posting ``orjson.dumps`` of the same body with an
  ``Idempotency-Key``, 64 requests at a time, each answer read and parsed with ``orjson``;
- ``bare protocol``: 64 kept-alive connections, each an ``asyncio.Protocol`` that writes every
  request as one block of bytes and reads its answer only as far as the status line and the
  ``Content-Length``: the least an asyncio client can do per create. It keeps nothing, checks
  nothing else, parses no JSON and would not survive a single fault; it is the floor, not a
  client.

Each client runs in a process of its own, after 64 warm-up creates (its connections open, its
imports done), and reports its CPU time (user and system) over N creates of
``synthetic://...?rows=1&duration=3600`` runs. One emulator process per round serves the three;
the order of the clients turns each round. Reported: the median over the rounds of the CPU per
create, and the SDK's over each client's.

    python benchmarks/create_floor.py [--n 10000] [--rounds 3] [--quick]

Results go to ``benchmarks/results/create_floor.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import orjson
from _common import (
    EmulatorProcess,
    ensure_sdk_importable,
    machine,
    machine_line,
    median,
    print_table,
    write_results,
)

FLOW = "customer_cleaner:v1"
CONCURRENCY = 64
CLIENTS = ("lume-sdk", "lume-sdk, one each", "aiohttp+orjson", "bare protocol")


def _path(tag: str, i: int) -> str:
    return f"synthetic://{tag}/{i}?rows=1&duration=3600"


def _body(tag: str, i: int) -> bytes:
    return orjson.dumps({"flow_version": FLOW, "source_path": _path(tag, i)})


def _key() -> str:
    return f"lume-{os.urandom(16).hex()}"


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def _fan_out(n: int, one: Callable[[int], Awaitable[None]]) -> None:
    """``one(i)`` for i in 0..n-1, ``CONCURRENCY`` at a time."""
    indices: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in indices:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _measure(
    warm: Callable[[], Awaitable[None]], timed: Callable[[], Awaitable[None]], n: int
) -> dict[str, Any]:
    await warm()
    (user0, sys0), wall0 = _usage(), time.perf_counter()
    await timed()
    (user1, sys1), wall1 = _usage(), time.perf_counter()
    return {"n": n, "user_s": user1 - user0, "sys_s": sys1 - sys0, "wall_s": wall1 - wall0}


# -- the clients --------------------------------------------------------------------------------


async def _sdk(url: str, key: str, tag: str, n: int) -> dict[str, Any]:
    from lume_async import AsyncLume, RunRequest

    async with AsyncLume(api_key=key, base_url=url, max_connections=CONCURRENCY) as lume:

        async def create(prefix: str, count: int) -> None:
            requests = [RunRequest(FLOW, source_path=_path(prefix, i)) for i in range(count)]
            outcomes = await lume.runs.create_many(requests, concurrency=CONCURRENCY)
            runs = [outcome.unwrap() for outcome in outcomes]
            assert len(runs) == count

        return await _measure(lambda: create(f"{tag}-warm", CONCURRENCY), lambda: create(tag, n), n)


async def _sdk_one_each(url: str, key: str, tag: str, n: int) -> dict[str, Any]:
    from lume_async import AsyncLume

    async with AsyncLume(api_key=key, base_url=url, max_connections=CONCURRENCY) as lume:

        def create(prefix: str) -> Callable[[int], Awaitable[None]]:
            async def one(i: int) -> None:
                await lume.runs.create(FLOW, _path(prefix, i))

            return one

        return await _measure(
            lambda: _fan_out(CONCURRENCY, create(f"{tag}-warm")),
            lambda: _fan_out(n, create(tag)),
            n,
        )


async def _aiohttp(url: str, key: str, tag: str, n: int) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        target = f"{url}/v1/runs"

        def create(prefix: str) -> Callable[[int], Awaitable[None]]:
            async def one(i: int) -> None:
                headers = {
                    "lume-api-key": key,
                    "Content-Type": "application/json",
                    "Idempotency-Key": _key(),
                }
                async with session.post(target, data=_body(prefix, i), headers=headers) as resp:
                    run = orjson.loads(await resp.read())
                    assert resp.status == 201, (resp.status, run)
                    assert run["status"]

            return one

        return await _measure(
            lambda: _fan_out(CONCURRENCY, create(f"{tag}-warm")),
            lambda: _fan_out(n, create(tag)),
            n,
        )


class _Bare(asyncio.Protocol):
    """One kept-alive connection that reads each answer as far as its status and length."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = -1  # the length of the answer being read, once its head is in
        self._status = 0
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.index(b"\r\ncontent-length:") + 17
            stop = head.find(b"\r\n", at)
            self._status = int(head[9:12])
            self._need = end + 4 + int(head[at:] if stop < 0 else head[at:stop])
        if len(buf) >= self._need:
            del buf[: self._need]
            self._need = -1
            assert self.waiter is not None
            self.waiter.set_result(self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("the emulator closed a connection"))


async def _bare(url: str, key: str, tag: str, n: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    connections = [
        (await loop.create_connection(_Bare, host, int(port)))[1] for _ in range(CONCURRENCY)
    ]
    head = (
        f"POST /v1/runs HTTP/1.1\r\nHost: {host}:{port}\r\nlume-api-key: {key}\r\n"
        "Content-Type: application/json\r\n"
    ).encode()
    free = list(connections)

    def create(prefix: str) -> Callable[[int], Awaitable[None]]:
        async def one(i: int) -> None:
            conn = free.pop()
            body = _body(prefix, i)
            conn.waiter = loop.create_future()
            assert conn.transport is not None
            conn.transport.write(
                b"%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (head, _key().encode(), len(body), body)
            )
            status = await conn.waiter
            free.append(conn)
            assert status == 201, status

        return one

    try:
        return await _measure(
            lambda: _fan_out(CONCURRENCY, create(f"{tag}-warm")),
            lambda: _fan_out(n, create(tag)),
            n,
        )
    finally:
        for conn in connections:
            assert conn.transport is not None
            conn.transport.close()


WORKERS: dict[str, Callable[[str, str, str, int], Coroutine[Any, Any, dict[str, Any]]]] = {
    "lume-sdk": _sdk,
    "lume-sdk, one each": _sdk_one_each,
    "aiohttp+orjson": _aiohttp,
    "bare protocol": _bare,
}


# -- the driver ---------------------------------------------------------------------------------


def _run_client(client: str, url: str, key: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", client, "--url", url]
    cmd += ["--key", key, "--n", str(n), "--tag", f"floor-{secrets.token_hex(4)}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the {client} client failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="creates per client and round (10000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=300, one round")
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ensure_sdk_importable()
    n = args.n or (300 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 3)
    if args.worker:
        result = asyncio.run(WORKERS[args.worker](args.url, args.key, args.tag, n))
        print(json.dumps(result))
        return 0
    if n < 1 or rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    info = machine()
    print(
        f"create_floor: {n:,} creates per client and round at concurrency {CONCURRENCY},"
        f" {rounds} round(s), one emulator process per round, each client in a process of its"
        f" own\nmachine: {machine_line(info)}",
        flush=True,
    )
    measured: dict[str, list[dict[str, Any]]] = {client: [] for client in CLIENTS}
    for r in range(rounds):
        with EmulatorProcess(api_key=f"lume_bench_{secrets.token_urlsafe(12)}") as emu:
            order = CLIENTS[r % len(CLIENTS) :] + CLIENTS[: r % len(CLIENTS)]
            for client in order:
                row = _run_client(client, emu.url, emu.api_key, n)
                measured[client].append(row)
                cpu_us = (row["user_s"] + row["sys_s"]) * 1e6 / n
                print(
                    f"  round {r + 1}/{rounds}  {client:<18} {n / row['wall_s']:7,.0f} creates/s"
                    f"  {cpu_us:6.1f} µs CPU/create",
                    flush=True,
                )
    summary: dict[str, dict[str, float]] = {}
    for client, rows in measured.items():
        summary[client] = {
            "creates_per_s": median([n / row["wall_s"] for row in rows]),
            "user_us": median([row["user_s"] * 1e6 / n for row in rows]),
            "sys_us": median([row["sys_s"] * 1e6 / n for row in rows]),
            "cpu_us": median([(row["user_s"] + row["sys_s"]) * 1e6 / n for row in rows]),
        }
    sdk = summary["lume-sdk"]["cpu_us"]
    table = [
        [
            client,
            s["creates_per_s"],
            s["user_us"],
            s["sys_us"],
            s["cpu_us"],
            sdk / s["cpu_us"],
        ]
        for client, s in summary.items()
    ]
    print_table(
        ["client", "creates/s", "user µs", "system µs", "CPU µs/create", "SDK/this CPU"],
        table,
        title=f"median of {rounds} round(s), client CPU per create",
    )
    floor, raw = summary["bare protocol"]["cpu_us"], summary["aiohttp+orjson"]["cpu_us"]
    one_each = summary["lume-sdk, one each"]["cpu_us"]
    print(
        f"\nthe SDK's CPU per create over the bare protocol's (the floor, one create per request):"
        f" {sdk / floor:.2f}x batched, {one_each / floor:.2f}x one each; over raw aiohttp +"
        f" orjson's: {sdk / raw:.2f}x batched, {one_each / raw:.2f}x one each"
    )
    path = write_results(
        "create_floor",
        {
            "benchmark": "create_floor",
            "machine": info,
            "n": n,
            "rounds": rounds,
            "concurrency": CONCURRENCY,
            "clients": summary,
            "rounds_measured": measured,
        },
        args.output,
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
