"""Memory and CPU per run at scale: ``create_many`` then ``wait_all`` of N runs in one client.

For each N (default 10,000, 30,000 and 100,000, plus a 1,000-run baseline) a fresh emulator
process (``python -m lume_async.testing``) and a fresh client process are started. The client
creates N runs of ``synthetic://...?rows=1&duration=D`` (``runs.create_many``, concurrency 64)
and waits for all of them (``runs.wait_all``, the shared poller), keeping the N handles as a
user would. D grows with N, so every run is still in flight when the wait begins: the peak holds
N waiting runs. The poll interval grows with D (``poll_interval`` = D / 9: 1 s at 10,000 runs,
5 s, the SDK's default, at 100,000), so each run is asked about the same number of times at every
N, about nine (a run of 45 s waited on with the default interval): the wait's CPU is its polls
per run times the cost of one poll, plus the decodes of the runs that moved, and a D that grew
with N at a fixed interval would charge the larger N more polls per run. The client reports its
peak RSS (``ru_maxrss``), its CPU time (user + system, all threads) for the create and for the
wait, and the polls per run (run ids asked about over N). Each N is measured on asyncio's loop
and, with ``lume-sdk[speed]`` installed, on uvloop's, in turns (``--loop`` picks one).

Per run: memory is the peak RSS above the baseline's, divided by the runs above the baseline's
(``(peak(N) - peak(1,000)) / (N - 1,000)``), so the interpreter, the imports and the connection
pool cancel out; CPU is the client's CPU time over N. Goals (issue 16): <= 1.5 KB per waiting
run (a 1,000,000-run fan-out in one process of about 1.5 GB) and <= 0.15 ms of CPU per run.

    python benchmarks/scale.py [--n 10000,30000,100000] [--base 1000] [--min-duration 5]
        [--polls 9] [--loop all|asyncio|uvloop] [--quick]

Results go to ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    EmulatorProcess,
    ensure_sdk_importable,
    loop_factory,
    loop_kinds,
    machine,
    machine_line,
    print_table,
    write_results,
)

FLOW = "customer_cleaner:v1"
CONCURRENCY = 64
#: Polls per run: the poll interval is the runs' duration over this.
POLLS = 9
GOAL_KB_PER_RUN = 1.5
GOAL_CPU_MS_PER_RUN = 0.15
#: Creates per second the emulator sustains on a small machine, with margin: sizes D.
CREATE_RATE = 2500


def _duration(n: int, floor: float = 5.0) -> float:
    """Seconds each run takes: long enough that none ends before all N exist."""
    return round(floor + n / CREATE_RATE, 1)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _client(
    url: str,
    key: str,
    n: int,
    tag: str,
    floor: float,
    poll_interval: float,
    profile: str | None = None,
) -> dict[str, Any]:
    from lume_async import AsyncLume, RunRequest

    profiler = _Profiler(profile)

    duration = _duration(n, floor)
    requests = [
        RunRequest(FLOW, source_path=f"synthetic://{tag}/{i}?rows=1&duration={duration}")
        for i in range(n)
    ]
    async with AsyncLume(api_key=key, base_url=url, max_connections=CONCURRENCY) as lume:
        await lume.runs.get_many([], concurrency=1)  # the session, before the measurement
        cpu0, wall0 = _cpu(), time.perf_counter()
        with profiler.phase("create"):
            outcomes = await lume.runs.create_many(requests, concurrency=CONCURRENCY)
            runs = [outcome.unwrap() for outcome in outcomes]
        cpu1, wall1 = _cpu(), time.perf_counter()
        create_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        del outcomes, requests
        waiting = sum(not run.is_terminal for run in runs)
        before = _poller_counts(lume)
        with profiler.phase("wait"):
            await lume.runs.wait_all(runs, poll_interval=poll_interval)
        cpu2, wall2 = _cpu(), time.perf_counter()
        sweeps, polls, asked = (a - b for a, b in zip(_poller_counts(lume), before, strict=True))
    return {
        "n": n,
        "duration_s": duration,
        "poll_interval_s": poll_interval,
        "waiting_at_start": waiting,
        "succeeded": sum(run.status.value == "SUCCEEDED" for run in runs),
        "create_cpu_s": cpu1 - cpu0,
        "wait_cpu_s": cpu2 - cpu1,
        "create_wall_s": wall1 - wall0,
        "wait_wall_s": wall2 - wall1,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "create_peak_rss_kb": create_peak,
        "sweeps": sweeps,
        "poll_requests": polls,
        "polls_per_run": round(asked / n, 2),
    }


def _poller_counts(lume: Any) -> tuple[int, int, int]:
    """Full sweeps, requests and run ids asked about by the client's shared poller so far."""
    waiting = lume._core.waiting
    return waiting.sweeps, waiting.requests, waiting.asked


class _Profiler:
    """``--profile PREFIX``: cProfile each phase of the client into ``PREFIX.<phase>.prof``."""

    def __init__(self, prefix: str | None) -> None:
        self._prefix = prefix

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self._prefix is None:
            yield
            return
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            profile.dump_stats(f"{self._prefix}.{name}.prof")


def worker_main(args: argparse.Namespace) -> None:
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        result = runner.run(
            _client(
                args.url,
                args.key,
                args.worker,
                args.tag,
                args.min_duration,
                args.poll_interval,
                args.profile,
            )
        )
    print(json.dumps({**result, "loop": args.loop}))


def _poll_interval(n: int, floor: float, polls: int) -> float:
    return round(_duration(n, floor) / polls, 2)


def _measure(
    n: int, floor: float, polls: int, loop: str, profile: str | None = None
) -> dict[str, Any]:
    """One client process, on an asyncio or a uvloop loop, against one fresh emulator process."""
    with EmulatorProcess(api_key=f"lume_bench_{secrets.token_urlsafe(12)}") as emu:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n)]
        cmd += ["--url", emu.url, "--key", emu.api_key, "--tag", f"scale-{secrets.token_hex(4)}"]
        cmd += ["--min-duration", str(floor)]
        cmd += ["--poll-interval", str(_poll_interval(n, floor, polls)), "--loop", loop]
        if profile is not None:
            cmd += ["--profile", f"{profile}.{n}"]
        timeout = 300 + 3 * _duration(n, floor)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the client for N={n} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _per_run(row: dict[str, Any], *, baseline: dict[str, Any], base: int) -> dict[str, Any]:
    """One N's figures per run, memory counted above the baseline's."""
    n = row["n"]
    kb = (row["peak_rss_kb"] - baseline["peak_rss_kb"]) * 1024 / 1000 / (n - base)
    return {
        **row,
        "kb_per_run": round(kb, 3),
        "cpu_ms_per_run": round((row["create_cpu_s"] + row["wait_cpu_s"]) * 1000 / n, 4),
        "create_cpu_ms_per_run": round(row["create_cpu_s"] * 1000 / n, 4),
        "wait_cpu_ms_per_run": round(row["wait_cpu_s"] * 1000 / n, 4),
        "wait_cpu_us_per_poll": round(row["wait_cpu_s"] * 1e6 / (n * row["polls_per_run"] or 1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--n", default=None, help="run counts, comma-separated (10000,30000,100000)"
    )
    parser.add_argument("--base", type=int, default=None, help="baseline run count (1000)")
    parser.add_argument(
        "--min-duration",
        type=float,
        default=5.0,
        help="seconds a run takes at least; N/2500 s more are added (5)",
    )
    parser.add_argument(
        "--polls",
        type=int,
        default=POLLS,
        help=f"polls per run: the poll interval is the runs' duration over this ({POLLS})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: N=2000, base 500 (unless given)"
    )
    parser.add_argument(
        "--loop",
        choices=["all", "asyncio", "uvloop"],
        default="all",
        help="the client's event loop: all = asyncio, and uvloop if installed (all)",
    )
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--poll-interval", type=float, help=argparse.SUPPRESS)
    # cProfile of each client's create and wait, into PREFIX.<N>.<phase>.prof
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ensure_sdk_importable()
    if args.worker:
        worker_main(args)
        return 0
    n_default, base_default = ("2000", 500) if args.quick else ("10000,30000,100000", 1000)
    sizes = [int(v) for v in (args.n or n_default).split(",") if v.strip()]
    base = base_default if args.base is None else args.base
    if base < 1 or not sizes or min(sizes) <= base:
        parser.error("every N must be above --base, which must be >= 1")
    info = machine()
    print(
        f"scale: create_many (concurrency {CONCURRENCY}) then wait_all (poll interval: the runs'"
        f" duration / {args.polls}) of N runs, one client process and one emulator process"
        f" per N\n"
        f"machine: {machine_line(info)}",
        flush=True,
    )
    loops = loop_kinds() if args.loop == "all" else [args.loop]
    measured: dict[str, list[dict[str, Any]]] = {loop: [] for loop in loops}
    for n in [base, *sizes]:
        for loop in loops:  # in turns, so that both loops meet the same machine
            row = _measure(n, args.min_duration, args.polls, loop, args.profile)
            measured[loop].append(row)
            print(
                f"  N={n:>7,} {loop:<7}: peak RSS {row['peak_rss_kb'] / 1024:7.1f} MB, CPU"
                f" create {row['create_cpu_s']:6.2f} s + wait {row['wait_cpu_s']:6.2f} s,"
                f" wall {row['create_wall_s']:5.1f} + {row['wait_wall_s']:5.1f} s,"
                f" {row['waiting_at_start']:,} waiting at the start, poll interval"
                f" {row['poll_interval_s']:g} s,"
                f" {row['sweeps']} sweeps ({row['poll_requests']:,} requests),"
                f" {row['polls_per_run']:g} polls per run",
                flush=True,
            )
    rows = [
        _per_run(row, baseline=runs[0], base=base) for runs in measured.values() for row in runs[1:]
    ]
    table = [
        [
            r["n"],
            r["loop"],
            r["peak_rss_kb"] / 1024,
            r["kb_per_run"],
            r["create_cpu_ms_per_run"],
            r["wait_cpu_ms_per_run"],
            r["cpu_ms_per_run"],
            r["polls_per_run"],
            r["wait_cpu_us_per_poll"],
            r["create_wall_s"],
            r["wait_wall_s"],
        ]
        for r in rows
    ]
    headers = ["N", "loop", "peak RSS MB", "KB/run", "create ms/run", "wait ms/run", "CPU ms/run"]
    headers += ["polls/run", "wait µs/poll", "create s", "wait s"]
    peaks = (f"{runs[0]['peak_rss_kb'] / 1024:.1f} MB ({loop})" for loop, runs in measured.items())
    title = f"baseline N={base:,}: peak RSS {', '.join(peaks)}"
    print_table(headers, table, title=title)
    checks: dict[str, Any] = {}
    for r in rows:
        checks[f"N={r['n']:,} {r['loop']}: KB per waiting run"] = {
            "value": r["kb_per_run"],
            "goal": f"<= {GOAL_KB_PER_RUN}",
            "pass": r["kb_per_run"] <= GOAL_KB_PER_RUN,
        }
        checks[f"N={r['n']:,} {r['loop']}: client CPU ms per run (create + wait)"] = {
            "value": r["cpu_ms_per_run"],
            "goal": f"<= {GOAL_CPU_MS_PER_RUN}",
            "pass": r["cpu_ms_per_run"] <= GOAL_CPU_MS_PER_RUN,
        }
    print("\nacceptance")
    for name, v in checks.items():
        print(f"  {'PASS' if v['pass'] else 'FAIL':<6} {name}: {v['value']} (goal {v['goal']})")
    path = write_results(
        "scale",
        {
            "benchmark": "scale",
            "machine": info,
            "concurrency": CONCURRENCY,
            "polls": args.polls,
            "loops": loops,
            "baseline": {loop: runs[0] for loop, runs in measured.items()},
            "rows": rows,
            "acceptance": checks,
        },
        args.output,
    )
    print(f"\nwrote {path}")
    return 1 if args.check and any(not v["pass"] for v in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
