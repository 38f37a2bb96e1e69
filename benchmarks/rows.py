"""Rows in and out: iterating a run's rows through lume_sync, and creating a run with inline rows.

Section ``iterate`` (issue 16, goal 3). The emulator runs in another process with one finished
run of ``2 x N`` synthetic rows, half of them rejected, so the run has N result rows (plain dicts)
and N rejects (typed ``RejectedRow``).
Each path iterates all N of one listing with a ``for`` loop, ``page_size=100``, on one client
warmed up first:

- ``async``: ``async for row in run.results()`` on the caller's loop (``asyncio.run``);
- ``sync``: ``for row in run.results()`` through lume_sync, which goes to its loop thread once a
  page (and hands the page's rows out on the caller's thread);
- ``sync, a trip per row``: the same async iterator driven one item per trip to the loop
  thread, as lume_sync did before it walked pages, for reference.

Every path runs on asyncio's loop and, when ``lume-sdk[speed]`` is installed, on uvloop (the
sync paths switch lume_sync's private loop, the async ones run on ``asyncio.Runner`` with
uvloop's factory). The paths take turns for several rounds; the table gives the median wall
time and the ratio sync/async of the medians, on the same loop. Goal: sync <= 1.3x async for
100,000 result rows.

Section ``create`` (goal 4): ``await AsyncLume.runs.create(flow, source_data=rows)`` with 10,000
inline rows of 10 fields (strings, integers, floats, booleans, a list), against raw aiohttp
posting ``orjson.dumps`` of the same body, both against the emulator in another process; the
client's CPU time per create, median of the rounds (each round a fresh client, a warm-up create,
then ``--creates`` timed ones). Two sets of rows: without nulls, and with ``None`` in a third of
the rows (the SDK then counts the ``None`` values to tell them from NaN, which orjson would also
write as ``null``). Goal: the SDK <= 1.5x raw aiohttp's CPU.

    python benchmarks/rows.py [--rows 100000] [--rounds 3] [--quick] [--section iterate]

Results go to ``benchmarks/results/rows.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from _common import (
    EmulatorProcess,
    ensure_sdk_importable,
    loop_factory,
    loop_kinds,
    machine,
    machine_line,
    median,
    print_table,
    use_sync_loop,
    write_results,
)

ensure_sdk_importable()

from lume_async import AsyncLume  # noqa: E402
from lume_sync import Lume, _loop  # noqa: E402

GOAL_SYNC_OVER_ASYNC = 1.3
GOAL_CREATE_OVER_RAW = 1.5
PAGE_SIZE = 100
FLOW = "customer_cleaner:v1"
LISTINGS = ("results", "rejects")

#: Seconds to iterate one listing of the run, on a loop ("asyncio" / "uvloop").
Timer = Callable[[str, str, str, str], float]


def _count(items: Any) -> int:
    n = 0
    for _ in items:
        n += 1
    return n


async def _acount(items: AsyncIterator[Any]) -> int:
    n = 0
    async for _ in items:
        n += 1
    return n


def time_async(url: str, key: str, run_id: str, listing: str, loop: str) -> tuple[float, int]:
    async def main() -> tuple[float, int]:
        async with AsyncLume(api_key=key, base_url=url) as lume:
            listed = getattr(lume.runs, listing)
            await _acount(aiter(listed(run_id, page_size=PAGE_SIZE)))  # warm-up
            gc.collect()
            start = time.perf_counter()
            n = await _acount(aiter(listed(run_id, page_size=PAGE_SIZE)))
            return time.perf_counter() - start, n

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main())


def time_sync(url: str, key: str, run_id: str, listing: str, loop: str) -> tuple[float, int]:
    use_sync_loop(loop)
    with Lume(api_key=key, base_url=url) as lume:
        listed = getattr(lume.runs, listing)
        _count(listed(run_id, page_size=PAGE_SIZE))  # warm-up
        gc.collect()
        start = time.perf_counter()
        n = _count(listed(run_id, page_size=PAGE_SIZE))
        return time.perf_counter() - start, n


def time_sync_per_row(
    url: str, key: str, run_id: str, listing: str, loop: str
) -> tuple[float, int]:
    use_sync_loop(loop)
    with Lume(api_key=key, base_url=url) as lume:
        listed = getattr(lume._async.runs, listing)  # the async paginator the twin wraps
        _count(_loop.iterate(aiter(listed(run_id, page_size=PAGE_SIZE))))
        gc.collect()
        start = time.perf_counter()
        n = _count(_loop.iterate(aiter(listed(run_id, page_size=PAGE_SIZE))))
        return time.perf_counter() - start, n


PATHS: dict[str, Callable[[str, str, str, str, str], tuple[float, int]]] = {
    "async": time_async,
    "sync": time_sync,
    "sync, a trip per row (before)": time_sync_per_row,
}


def _create_run(url: str, key: str, rows: int) -> str:
    async def main() -> str:
        async with AsyncLume(api_key=key, base_url=url) as lume:
            path = f"synthetic://rows-bench-{secrets.token_hex(4)}?rows={2 * rows}"
            run = await lume.runs.create(FLOW, path + "&duration=0.5&reject_rate=0.5")
            await run.wait(timeout=120, poll_interval=0.1)
            return run.id

    return asyncio.run(main())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    times: dict[tuple[str, str, str], list[float]] = {}
    counts: dict[str, int] = {}
    paths = [p for p in PATHS if args.per_row or "per row" not in p]
    with EmulatorProcess(api_key=f"lume_bench_{secrets.token_urlsafe(12)}") as emu:
        run_id = _create_run(emu.url, emu.api_key, args.rows)
        print(f"emulator at {emu.url}, run {run_id}", flush=True)
        for r in range(args.rounds):
            for listing in LISTINGS:
                for loop in loop_kinds():
                    order = paths if r % 2 == 0 else list(reversed(paths))
                    for path in order:
                        wall, n = PATHS[path](emu.url, emu.api_key, run_id, listing, loop)
                        times.setdefault((listing, loop, path), []).append(wall)
                        counts[listing] = n
                        print(
                            f"  round {r + 1}/{args.rounds}  {listing:<8} {loop:<8} {path:<30}"
                            f" {n:>8,} items  {wall:7.3f} s",
                            flush=True,
                        )
    _loop.shutdown()
    rows = []
    for (listing, loop, path), walls in times.items():
        base = median(times[(listing, loop, "async")])
        rows.append(
            {
                "listing": listing,
                "loop": loop,
                "path": path,
                "items": counts[listing],
                "seconds": round(median(walls), 4),
                "seconds_per_round": [round(w, 4) for w in walls],
                "items_per_s": round(counts[listing] / median(walls), 1),
                "over_async": round(median(walls) / base, 3),
            }
        )
    return {"run_id": run_id, "rows": rows}


def iterate_acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for row in rows:
        if row["path"] != "sync":
            continue
        name = f"sync/async time, {row['items']:,} {row['listing']}, {row['loop']} loop"
        goal = row["listing"] == "results" and row["loop"] == "asyncio"
        out[name] = {
            "value": row["over_async"],
            "goal": f"<= {GOAL_SYNC_OVER_ASYNC}" if goal else None,
            "pass": row["over_async"] <= GOAL_SYNC_OVER_ASYNC if goal else None,
        }
    return out


def section_iterate(args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n[iterate] {args.rows:,} result rows and {args.rows:,} rejects,"
        f" page_size={PAGE_SIZE}, {args.rounds} round(s)",
        flush=True,
    )
    measured = measure(args)
    keys = ["listing", "loop", "path", "items", "seconds", "items_per_s", "over_async"]
    table = [[r[k] for k in keys] for r in measured["rows"]]
    headers = ["listing", "loop", "path", "items", "s (median)", "items/s", "/async"]
    print_table(headers, table, title=f"[iterate] median of {args.rounds} round(s)")
    return {
        "rows": args.rows,
        "page_size": PAGE_SIZE,
        "reads": "every item, counted (result rows: dicts; rejects: RejectedRow)",
        "acceptance": iterate_acceptance(measured["rows"]),
        **measured,
    }


# --- section: create with inline rows -------------------------------------------------------------


def inline_rows(n: int, *, nulls: bool) -> list[dict[str, Any]]:
    """``n`` rows of 10 fields; with ``nulls``, every third row has a ``None``."""
    rng = random.Random(n)
    return [
        {
            "customer_id": i,
            "name": f"Customer {i}",
            "email": f"customer{i}@example.com",
            "score": round(rng.random() * 100, 3),
            "active": i % 2 == 0,
            "country": rng.choice(["DE", "FR", "NL", "PL"]),
            "signup_date": "2024-05-01",
            "balance": round(rng.random() * 1000, 2),
            "note": None if nulls and i % 3 == 0 else "regular",
            "tags": ["a", "b"],
        }
        for i in range(n)
    ]


def _cpu() -> float:
    return time.process_time()


async def _create_sdk(url: str, key: str, rows: list[dict[str, Any]], creates: int) -> float:
    async with AsyncLume(api_key=key, base_url=url) as lume:
        await lume.runs.create(FLOW, source_data=rows)  # warm-up
        gc.collect()
        cpu = _cpu()
        for _ in range(creates):
            await lume.runs.create(FLOW, source_data=rows)
        return (_cpu() - cpu) / creates


async def _create_raw(url: str, key: str, rows: list[dict[str, Any]], creates: int) -> float:
    headers = {"lume-api-key": key, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:

        async def create() -> None:
            body = orjson.dumps({"flow_version": FLOW, "source_data": rows})
            key = {"Idempotency-Key": f"raw-{uuid.uuid4().hex}"}
            async with session.post(f"{url}/v1/runs", data=body, headers=headers | key) as r:
                answer = orjson.loads(await r.read())
                if r.status not in (200, 201):
                    raise RuntimeError(f"raw create failed: {r.status} {answer}")

        await create()  # warm-up
        gc.collect()
        cpu = _cpu()
        for _ in range(creates):
            await create()
        return (_cpu() - cpu) / creates


CREATE_PATHS = {"lume-sdk": _create_sdk, "aiohttp + orjson": _create_raw}


def section_create(args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n[create] {args.inline:,} inline rows per create, {args.creates} creates per round,"
        f" {args.rounds} round(s)",
        flush=True,
    )
    datasets = {"no nulls": False, "None in 1/3 of the rows": True}
    cpu: dict[tuple[str, str], list[float]] = {}
    sizes = {}
    with EmulatorProcess(api_key=f"lume_bench_{secrets.token_urlsafe(12)}") as emu:
        for data, nulls in datasets.items():
            rows = inline_rows(args.inline, nulls=nulls)
            sizes[data] = len(orjson.dumps(rows))
            for r in range(args.rounds):
                order = list(CREATE_PATHS) if r % 2 == 0 else list(reversed(CREATE_PATHS))
                for client in order:
                    run = CREATE_PATHS[client](emu.url, emu.api_key, rows, args.creates)
                    cpu.setdefault((data, client), []).append(asyncio.run(run))
                    print(
                        f"  round {r + 1}/{args.rounds}  {data:<24} {client:<17}"
                        f" {cpu[(data, client)][-1] * 1000:7.2f} ms CPU/create",
                        flush=True,
                    )
    table, results, checks = [], [], {}
    for data in datasets:
        raw = median(cpu[(data, "aiohttp + orjson")])
        for client in CREATE_PATHS:
            value = median(cpu[(data, client)])
            row = {
                "rows": data,
                "client": client,
                "body_bytes": sizes[data],
                "cpu_ms_per_create": round(value * 1000, 3),
                "cpu_ms_per_round": [round(v * 1000, 3) for v in cpu[(data, client)]],
                "over_raw": round(value / raw, 3),
            }
            results.append(row)
            table.append([data, client, sizes[data], row["cpu_ms_per_create"], row["over_raw"]])
        ratio = median(cpu[(data, "lume-sdk")]) / raw
        checks[f"create CPU, {args.inline:,} inline rows ({data}), SDK/raw"] = {
            "value": round(ratio, 3),
            "goal": f"<= {GOAL_CREATE_OVER_RAW}",
            "pass": ratio <= GOAL_CREATE_OVER_RAW,
        }
    headers = ["rows", "client", "body bytes", "CPU ms/create", "/raw"]
    print_table(headers, table, title=f"[create] median of {args.rounds} round(s)")
    return {
        "inline_rows": args.inline,
        "creates": args.creates,
        "acceptance": checks,
        "rows": results,
    }


SECTIONS = {"iterate": section_iterate, "create": section_create}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="items per listing (100000)")
    parser.add_argument("--inline", type=int, default=10_000, help="rows per create (10000)")
    parser.add_argument("--creates", type=int, default=20, help="timed creates per round (20)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every path (3)")
    parser.add_argument("--section", action="append", choices=list(SECTIONS), default=None)
    parser.add_argument(
        "--no-per-row", dest="per_row", action="store_false", help="skip the reference path"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: small N, 1 round")
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = min(args.rows, 2000), 1
        args.inline, args.creates = min(args.inline, 1000), min(args.creates, 3)
    if min(args.rows, args.rounds, args.inline, args.creates) < 1:
        parser.error("counts must be >= 1")
    info = machine()
    print(f"machine: {machine_line(info)}", flush=True)
    sections = {name: SECTIONS[name](args) for name in args.section or SECTIONS}
    checks = {name: v for section in sections.values() for name, v in section["acceptance"].items()}
    print("\nacceptance")
    for name, v in checks.items():
        verdict = "REPORT" if v["pass"] is None else "PASS" if v["pass"] else "FAIL"
        goal = f" (goal {v['goal']})" if v["goal"] else ""
        print(f"  {verdict:<6} {name}: {v['value']:.2f}x{goal}")
    path = write_results(
        "rows",
        {
            "benchmark": "rows",
            "machine": info,
            "rounds": args.rounds,
            "acceptance": checks,
            "sections": sections,
        },
        args.output,
    )
    print(f"\nwrote {path}")
    missed = [name for name, v in checks.items() if v["pass"] is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
