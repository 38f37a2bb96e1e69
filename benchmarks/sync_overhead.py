"""What the blocking facade costs per call: lume_sync's loop hand-off against the alternatives.

Section ``noop`` times one call of a coroutine that does nothing, through each path:

- ``await noop()`` on the caller's own loop: the floor, what ``lume_async`` users pay;
- ``lume_sync._loop.run(noop())``, with and without a timeout;
- ``asyncio.run_coroutine_threadsafe(noop(), loop).result()`` on a loop in another thread;
- an anyio blocking portal (``start_blocking_portal()`` once, then ``portal.call(noop)``).

Every call is timed on its own; the table gives p50 and p99 in microseconds, and the p50
overhead over the direct await. The target for ``lume_sync`` is p50 overhead <= 40 us and
p99 <= 200 us (``--check`` exits non-zero when it is missed). Results are written to
``benchmarks/results/sync_overhead.json``.

Each section is a function from the options to a list of rows, registered in ``SECTIONS``, so
more (a GET against nginx, create_many sync vs async) slot in beside ``noop``.

    python benchmarks/sync_overhead.py [--calls N] [--repeats R] [--section noop] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import ensure_sdk_importable, percentile, print_table, write_results

ensure_sdk_importable()

from anyio.from_thread import start_blocking_portal  # noqa: E402

from lume_sync import _loop  # noqa: E402

TARGET_P50_OVERHEAD_US = 40.0
TARGET_P99_US = 200.0


@dataclass(frozen=True)
class Options:
    calls: int  # timed calls per path and repeat
    repeats: int  # rounds; the paths take turns within each round
    warmup: int  # untimed calls before each path's timed ones


Row = dict[str, Any]
#: A path under test: given a number of calls, make them and return each one's time in ns.
Timer = Callable[[int], list[int]]


async def noop() -> None:
    return None


# --- section: noop ------------------------------------------------------------------------------


def time_direct_await(calls: int) -> list[int]:
    async def main() -> list[int]:
        clock, samples = time.perf_counter_ns, []
        for _ in range(calls):
            start = clock()
            await noop()
            samples.append(clock() - start)
        return samples

    return asyncio.run(main())


def time_lume_run(calls: int) -> list[int]:
    run, clock, samples = _loop.run, time.perf_counter_ns, []
    for _ in range(calls):
        start = clock()
        run(noop())
        samples.append(clock() - start)
    return samples


def time_lume_run_with_timeout(calls: int) -> list[int]:
    run, clock, samples = _loop.run, time.perf_counter_ns, []
    for _ in range(calls):
        start = clock()
        run(noop(), timeout=60)
        samples.append(clock() - start)
    return samples


def time_run_coroutine_threadsafe(calls: int) -> list[int]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        submit, clock, samples = asyncio.run_coroutine_threadsafe, time.perf_counter_ns, []
        for _ in range(calls):
            start = clock()
            submit(noop(), loop).result()
            samples.append(clock() - start)
        return samples
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def time_anyio_portal(calls: int) -> list[int]:
    with start_blocking_portal() as portal:
        call, clock, samples = portal.call, time.perf_counter_ns, []
        for _ in range(calls):
            start = clock()
            call(noop)
            samples.append(clock() - start)
        return samples


NOOP_PATHS: dict[str, Timer] = {
    "await noop() (direct, same loop)": time_direct_await,
    "lume_sync _loop.run(noop())": time_lume_run,
    "lume_sync _loop.run(noop(), timeout=60)": time_lume_run_with_timeout,
    "asyncio.run_coroutine_threadsafe().result()": time_run_coroutine_threadsafe,
    "anyio blocking portal.call(noop)": time_anyio_portal,
}


def section_noop(options: Options) -> list[Row]:
    samples: dict[str, list[int]] = {name: [] for name in NOOP_PATHS}
    repeat_p50s: dict[str, list[float]] = {name: [] for name in NOOP_PATHS}
    for _ in range(options.repeats):
        for name, timer in NOOP_PATHS.items():
            timer(options.warmup)
            timed = timer(options.calls)
            samples[name] += timed
            repeat_p50s[name].append(percentile(timed, 50) / 1000)
    _loop.shutdown()

    floor = percentile(samples["await noop() (direct, same loop)"], 50) / 1000
    rows = []
    for name, ns in samples.items():
        p50 = percentile(ns, 50) / 1000
        rows.append(
            {
                "path": name,
                "calls": len(ns),
                "p50_us": round(p50, 3),
                "p99_us": round(percentile(ns, 99) / 1000, 3),
                "p50_overhead_us": round(p50 - floor, 3),
                "p50_us_per_repeat": [round(v, 3) for v in repeat_p50s[name]],
            }
        )
    return rows


# --- runner -------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Options], list[Row]]] = {"noop": section_noop}


def print_section(name: str, rows: list[Row]) -> None:
    headers = ["path", "calls", "p50 us", "p99 us", "p50 overhead us", "p50 range us"]
    table = [
        [
            row["path"],
            row["calls"],
            row["p50_us"],
            row["p99_us"],
            row["p50_overhead_us"],
            f"{min(row['p50_us_per_repeat']):.1f}-{max(row['p50_us_per_repeat']):.1f}",
        ]
        for row in rows
    ]
    print_table(headers, table, title=f"[{name}]")


def check_targets(results: dict[str, list[Row]]) -> list[str]:
    """The targets that were missed, as messages (only sections that ran are checked)."""
    missed = []
    for row in results.get("noop", []):
        if row["path"] != "lume_sync _loop.run(noop())":
            continue
        if row["p50_overhead_us"] > TARGET_P50_OVERHEAD_US:
            missed.append(f"p50 overhead {row['p50_overhead_us']} us > {TARGET_P50_OVERHEAD_US}")
        if row["p99_us"] > TARGET_P99_US:
            missed.append(f"p99 {row['p99_us']} us > {TARGET_P99_US}")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per path and repeat")
    parser.add_argument("--repeats", type=int, default=5, help="rounds over all paths")
    parser.add_argument("--warmup", type=int, default=500, help="untimed calls before each round")
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), default=None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    options = Options(calls=args.calls, repeats=args.repeats, warmup=args.warmup)

    results = {name: SECTIONS[name](options) for name in args.section or SECTIONS}
    for name, rows in results.items():
        print_section(name, rows)
    missed = check_targets(results)
    print("\ntargets:", "; ".join(missed) if missed else "met")

    path = write_results(
        "sync_overhead",
        {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "options": vars(options),
            "targets": {"p50_overhead_us": TARGET_P50_OVERHEAD_US, "p99_us": TARGET_P99_US},
            "targets_missed": missed,
            "sections": results,
        },
    )
    print(f"wrote {path}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
