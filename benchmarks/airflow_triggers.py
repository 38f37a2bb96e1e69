"""Deferred Lume waits in one event loop, as Airflow's triggerer runs them.

N runs (default 1,000) are created on the emulator (in another process, clock at 1x), each
lasting a duration drawn uniformly from --durations; then N triggers wait on them concurrently,
each in its own task on one event loop (the triggerer runs ``async for event in trigger.run()``
in a task per trigger), two ways:

  shared      ``LumeRunTrigger``: every trigger borrows the loop's one ``AsyncLume`` of the
              connection, so all waits share its poller (``batch-get`` of 100 ids per request)
  per_client  one client per trigger polling ``GET /v1/runs/{id}`` every poll interval: the
              pattern of the reference providers' triggers (a hook and a loop per trigger)

Reported per pattern:

  status requests   ``batch-get`` + ``GET /v1/runs/{id}`` the emulator answered while the
                    triggers waited, per run, and per waiting run per poll interval (the sum of
                    the triggers' waiting times divided by the poll interval counts the
                    run-sweeps a one-request-per-run poller would make)
  detection lag     trigger event time minus the run's ``completed_at`` at the emulator (same
                    machine, wall clock), in poll intervals
  loop              "lag": how late a task that sleeps 5 ms at a time woke (wall clock: it also
                    counts this process being descheduled on a busy machine); "longest callback":
                    the CPU time of the longest single callback the loop ran (every callback is
                    timed during the run), with and without the garbage collector's passes that
                    fell inside it. A full collection scans the whole process (Airflow alone is
                    ~170,000 objects), whoever allocated last: "excl. GC" is how long the SDK's
                    own code held the loop at a stretch

    python benchmarks/airflow_triggers.py                 # N=1000, poll 2 s, runs of 2-20 s
    python benchmarks/airflow_triggers.py --quick         # N=100, poll 0.5 s, runs of 0.5-3 s
    python benchmarks/airflow_triggers.py --n 2000 --poll 5 --durations 5,60

It needs the ``airflow`` extra (``pip install -e '.[airflow]'``). Airflow gets a temporary
``AIRFLOW_HOME`` unless one is set. Results go to ``benchmarks/results/airflow_triggers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    EmulatorProcess,
    ServerUnavailable,
    ensure_sdk_importable,
    median,
    percentile,
    print_table,
    write_results,
)

ensure_sdk_importable()

FLOW = "customer_cleaner:v1"
PATTERNS = ("shared", "per_client")
STATUS_ROUTES = ("POST /v1/runs/batch-get", "GET /v1/runs/{run_id}")
TICK = 0.005
# Acceptance (issue 14): checked and printed, not enforced unless --strict.
ACCEPT_REQUESTS_PER_RUN_SWEEP = 1 / 50
ACCEPT_LAG_IN_INTERVALS = 1.5
ACCEPT_BLOCK_MS = 10.0


def airflow_home() -> Path | None:
    """A temporary AIRFLOW_HOME (so importing Airflow writes nothing else), unless one is set."""
    if os.environ.get("AIRFLOW_HOME"):
        return None
    home = Path(tempfile.mkdtemp(prefix="lume-bench-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return home


# --- the reference pattern: a client and a polling loop per trigger ------------------------------


def reference_trigger(run_id: str, poll_interval: float) -> Any:
    """A trigger shaped like the reference providers': its own hook, client and loop."""
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from lume_airflow import LumeHook

    class OwnClientTrigger(BaseTrigger):  # type: ignore[misc]
        def serialize(self) -> tuple[str, dict[str, Any]]:
            return "benchmarks.OwnClientTrigger", {"run_id": run_id}

        async def run(self) -> AsyncIterator[Any]:
            client = await LumeHook().get_async_client()
            async with client:
                while True:
                    run = await client.runs.get(run_id)
                    if run.is_terminal:
                        break
                    await asyncio.sleep(poll_interval)
            yield TriggerEvent({"run_id": run.id, "status": run.status.value})

    return OwnClientTrigger()


# --- the loop monitor ----------------------------------------------------------------------------


class LoopMonitor:
    """How the loop behaves while the triggers wait.

    ``lags``: a task wakes every TICK seconds and records how late it woke (wall clock, so it
    also counts this process being descheduled on a busy machine). ``longest``: the CPU time of
    the longest single callback the loop ran (each ``Handle._run`` is timed while the monitor
    is on), which is how long the SDK held the loop at a stretch, whatever the machine's load.
    """

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.longest = 0.0
        self.longest_own = 0.0
        self.longest_what = ""
        self.gc_total = 0.0
        self.callbacks = 0
        self._task: asyncio.Task[None] | None = None
        self._run = asyncio.events.Handle._run
        self.gc_pauses: list[float] = []
        self._gc_began = 0.0

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.thread_time()
        else:
            pause = time.thread_time() - self._gc_began
            self.gc_pauses.append(pause)
            self.gc_total += pause

    async def _watch(self) -> None:
        while True:
            wall = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append(max(0.0, time.perf_counter() - wall - TICK))

    def start(self) -> None:
        run, monitor = self._run, self

        # Measurement only: every loop callback (task steps included) goes through Handle._run.
        def timed(handle: asyncio.Handle) -> None:
            began, collected = time.thread_time(), monitor.gc_total
            run(handle)
            took = time.thread_time() - began
            own = took - (monitor.gc_total - collected)
            monitor.callbacks += 1
            monitor.longest = max(monitor.longest, took)
            if own > monitor.longest_own:
                monitor.longest_own = own
                owner = getattr(handle._callback, "__self__", None)
                coro = owner.get_coro() if isinstance(owner, asyncio.Task) else None
                monitor.longest_what = repr(coro or handle)[:300]

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        gc.callbacks.append(self._gc)
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]
        gc.callbacks.remove(self._gc)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- one pattern ----------------------------------------------------------------------------------


async def emulator_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_emulator/stats") as r:
        r.raise_for_status()
        data: dict[str, Any] = await r.json()
        return data


def status_requests(before: dict[str, Any], after: dict[str, Any]) -> int:
    def total(stats: dict[str, Any]) -> int:
        return sum(sum(stats["requests"].get(route, {}).values()) for route in STATUS_ROUTES)

    return total(after) - total(before)


async def create_runs(
    emu: EmulatorProcess, n: int, durations: tuple[float, float], seed: int
) -> list[str]:
    from lume_async import AsyncLume, RunRequest

    rng = random.Random(seed)
    requests = [
        RunRequest(
            FLOW,
            source_path=f"synthetic://s{seed}-{i}?rows=20&duration={rng.uniform(*durations):.3f}",
        )
        for i in range(n)
    ]
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        outcomes = await lume.runs.create_many(requests, concurrency=64)
    return [outcome.unwrap().id for outcome in outcomes]


async def completion_times(emu: EmulatorProcess, run_ids: list[str]) -> dict[str, float]:
    from lume_async import AsyncLume

    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        outcomes = await lume.runs.get_many(run_ids)
    done: dict[str, float] = {}
    for outcome in outcomes:
        run = outcome.unwrap()
        pipeline = run.metadata.pipeline if run.metadata is not None else None
        if pipeline is not None and pipeline.completed_at is not None:
            done[run.id] = pipeline.completed_at.timestamp()
    return done


async def pattern(
    name: str,
    emu: EmulatorProcess,
    *,
    n: int,
    poll: float,
    durations: tuple[float, float],
    seed: int,
    freeze: bool,
) -> dict[str, Any]:
    from lume_airflow import LumeHook, LumeRunTrigger

    run_ids = await create_runs(emu, n, durations, seed)
    # A triggerer has looked connections up long before: Airflow's first lookup in a process
    # loads its secrets backends (~20 ms of CPU), which is not the waits' cost.
    await LumeHook.aget_connection(LumeHook.default_conn_name)  # Airflow >= 3.2
    if name == "shared":
        triggers = [LumeRunTrigger(run_id, poll_interval=poll, timeout=None) for run_id in run_ids]
    else:
        triggers = [reference_trigger(run_id, poll) for run_id in run_ids]

    async def wait_one(trigger: Any) -> tuple[dict[str, Any], float]:
        async for event in trigger.run():
            return event.payload, time.time()
        raise RuntimeError("the trigger ended without an event")

    before = await emulator_stats(emu.url)
    gc.collect()
    if freeze:
        gc.freeze()  # a long-lived process's option: objects made so far are never scanned again
    monitor = LoopMonitor()
    started = time.time()
    began, cpu = time.perf_counter(), time.process_time()
    # Made before the monitor starts timing callbacks: building the triggers is the
    # triggerer's work, not the waits'.
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(wait_one(trigger)) for trigger in triggers]
    monitor.start()
    events = await asyncio.gather(*tasks)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    await monitor.stop()
    if freeze:
        gc.unfreeze()
    after = await emulator_stats(emu.url)

    completed = await completion_times(emu, run_ids)
    lags = [
        (seen - completed[payload["run_id"]]) / poll
        for payload, seen in events
        if payload["run_id"] in completed and completed[payload["run_id"]] > started
    ]
    waited_intervals = sum(seen - started for _, seen in events) / poll
    requests = status_requests(before, after)
    statuses: dict[str, int] = {}
    for payload, _ in events:
        statuses[payload["status"]] = statuses.get(payload["status"], 0) + 1
    return {
        "pattern": name,
        "triggers": n,
        "statuses": statuses,
        "status_requests": requests,
        "requests_per_run": requests / n,
        "requests_per_run_sweep": requests / waited_intervals if waited_intervals else float("nan"),
        "lag_intervals": {
            "p50": median(lags),
            "p95": percentile(lags, 95),
            "max": max(lags, default=float("nan")),
            "runs": len(lags),
        },
        "loop_lag_ms": {
            "p99": percentile(monitor.lags, 99) * 1000,
            "max": max(monitor.lags, default=float("nan")) * 1000,
        },
        "longest_callback_ms": monitor.longest * 1000,
        "longest_callback_without_gc_ms": monitor.longest_own * 1000,
        "longest_callback_without_gc": monitor.longest_what,
        "longest_gc_ms": max(monitor.gc_pauses, default=0.0) * 1000,
        "gc_passes": len(monitor.gc_pauses),
        "callbacks": monitor.callbacks,
        "wall_s": wall,
        "cpu_s": cpu,
    }


# --- driver ---------------------------------------------------------------------------------------


def durations_arg(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected MIN,MAX seconds, e.g. 2,20") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError("expected 0 < MIN <= MAX")
    return low, high


def patterns_arg(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(part not in PATTERNS for part in chosen):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(PATTERNS)}")
    return chosen


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    shared = next((row for row in rows if row["pattern"] == "shared"), None)
    if shared is None:
        return {}
    checks = {
        "requests_per_run_sweep": (
            shared["requests_per_run_sweep"],
            ACCEPT_REQUESTS_PER_RUN_SWEEP,
        ),
        "lag_p95_intervals": (shared["lag_intervals"]["p95"], ACCEPT_LAG_IN_INTERVALS),
        "longest_callback_without_gc_ms": (
            shared["longest_callback_without_gc_ms"],
            ACCEPT_BLOCK_MS,
        ),
    }
    return {
        name: {"value": value, "goal": f"<= {goal:g}", "ok": bool(value <= goal)}
        for name, (value, goal) in checks.items()
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with EmulatorProcess(api_key="bench-key") as emu:
        os.environ["AIRFLOW_CONN_LUME_DEFAULT"] = json.dumps(
            {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
        )
        rows = []
        for index, name in enumerate(args.patterns):
            print(f"{name}: {args.n} triggers, poll {args.poll:g} s ...", flush=True)
            rows.append(
                await pattern(
                    name,
                    emu,
                    n=args.n,
                    poll=args.poll,
                    durations=args.durations,
                    seed=index,
                    freeze=args.gc_freeze,
                )
            )
    return {
        "benchmark": "airflow_triggers",
        "n": args.n,
        "poll_interval": args.poll,
        "gc_freeze": args.gc_freeze,
        "durations": list(args.durations),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "airflow": _version("apache-airflow"),
            "aiohttp": _version("aiohttp"),
        },
        "rows": rows,
        "acceptance": acceptance(rows),
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def report(results: dict[str, Any]) -> None:
    rows = results["rows"]
    print_table(
        [
            "pattern",
            "triggers",
            "status req",
            "req/run",
            "req/run/sweep",
            "lag p50",
            "lag p95",
            "lag max",
            "loop lag p99 ms",
            "loop lag max ms",
            "longest callback ms",
            "excl. GC ms",
            "longest GC ms",
            "GC passes",
            "wall s",
            "CPU s",
        ],
        [
            [
                row["pattern"],
                row["triggers"],
                row["status_requests"],
                row["requests_per_run"],
                row["requests_per_run_sweep"],
                row["lag_intervals"]["p50"],
                row["lag_intervals"]["p95"],
                row["lag_intervals"]["max"],
                row["loop_lag_ms"]["p99"],
                row["loop_lag_ms"]["max"],
                row["longest_callback_ms"],
                row["longest_callback_without_gc_ms"],
                row["longest_gc_ms"],
                row["gc_passes"],
                row["wall_s"],
                row["cpu_s"],
            ]
            for row in rows
        ],
        title=(
            f"{results['n']} deferred waits in one loop, poll {results['poll_interval']:g} s, "
            f"runs of {results['durations'][0]:g}-{results['durations'][1]:g} s "
            "(lag in poll intervals)"
        ),
    )
    for name, check in results["acceptance"].items():
        verdict = "ok" if check["ok"] else "MISSED"
        print(f"  {name}: {check['value']:.4g} (goal {check['goal']}): {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000, help="triggers (and runs)")
    parser.add_argument("--poll", type=float, default=2.0, help="the triggers' poll_interval")
    parser.add_argument("--durations", type=durations_arg, default=(2.0, 20.0), help="MIN,MAX s")
    parser.add_argument("--patterns", type=patterns_arg, default=list(PATTERNS))
    parser.add_argument("--quick", action="store_true", help="n=100, poll 0.5 s, runs 0.5-3 s")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() before the waits (see the docstring)"
    )
    parser.add_argument("--output", type=Path, default=None, help="results JSON path")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.poll, args.durations = 100, 0.5, (0.5, 3.0)
    if args.n < 1 or args.poll <= 0:
        parser.error("--n and --poll must be positive")
    home = airflow_home()
    try:
        results = asyncio.run(measure(args))
    except ServerUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    report(results)
    path = write_results("airflow_triggers", results, args.output)
    print(f"\nresults: {path}")
    if args.strict and not all(check["ok"] for check in results["acceptance"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
