"""Reliability report: the chaos fan-out of the test suite, at scale, and a hostile server.

    python benchmarks/reliability.py [--runs 10000]
                                     [--scenario faults proxy nginx lying resume hostile]
                                     [--json PATH]

Each scenario creates N runs with ``create_many``, waits for them with the shared poller and
reads every result row back, through one kind of trouble:

* ``faults``: the emulator fails 20 % of requests (500/502/503/429, reset, truncated, late),
  half before the work is done and half after it (the answer is lost);
* ``proxy``: a fault proxy between client and emulator adds latency and jitter, caps bandwidth,
  resets and stalls connections mid-answer and swallows requests (client timeout 1 s);
* ``nginx``: Debian's nginx limits the API to 400 requests/s (burst 200) with 429 +
  Retry-After, and the client waits out what it is told;
* ``lying``: a lying proxy (``tests/chaos/_liar.py``) rewrites a fifth of all listing answers:
  pages that claim another number, size or page count, lose a row or repeat one, and run
  listings whose cursor points back or whose empty page points on. Every lie must be refused
  (the listing walked again), and then the whole run listing is walked through the same lies,
  resuming from the last page trusted;
* ``resume``: the fan-out script of ``tests/chaos/_scripts/fanout.py`` (a process of its own,
  keys from one ``idempotency_namespace``, rows kept once per run in a directory) against an
  emulator process that fails 30 % of requests, SIGKILLed at three seeded points (while
  creating, and twice while reading rows) and run again until it ends cleanly.

Then it asks the server, with faults off, how many runs exist per source path, and prints per
scenario: runs requested and created, runs per source path (mean and most), duplicates, rows
expected and fetched, retries, listings refused as untrustworthy, wall time.

``hostile`` is another kind of report: a server that answers with compression bombs, endless
bodies, lying lengths and envelopes, cursor cycles and a 5 MB error ``detail``, one shape at a
time, to a client in a fresh process; per shape it prints the call's outcome, how much the
client process's peak RSS grew, and the wall time (see ``_hostile.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the chaos tools live in the test suite

from lume_async import AsyncLume, Timeout  # noqa: E402
from lume_async.testing import Emulator, FaultProfile  # noqa: E402
from tests.chaos._fanout import (  # noqa: E402
    QUICK_BACKOFF,
    Figures,
    RetryCounter,
    audit,
    chaos_policy,
    fan_out,
    requests_for,
)
from tests.chaos._liar import LyingProxy, walk_runs  # noqa: E402
from tests.chaos._nginx import nginx_available, rate_limited_proxy  # noqa: E402
from tests.chaos._processes import EmulatorProcess  # noqa: E402
from tests.chaos._proxy import FaultProxy, Toxics  # noqa: E402
from tests.chaos._scripts import fanout as fanout_script  # noqa: E402

SCENARIOS = ("faults", "proxy", "nginx", "lying", "resume", "hostile")
COLUMNS = (
    ("scenario", "scenario", "<"),
    ("requested", "requested", ">"),
    ("created", "created", ">"),
    ("runs_per_path", "runs/path", ">"),
    ("max_per_path", "max/path", ">"),
    ("duplicates", "duplicates", ">"),
    ("rows_expected", "rows expected", ">"),
    ("rows_fetched", "rows fetched", ">"),
    ("retries", "retries", ">"),
    ("refused", "refused", ">"),
    ("failures", "failures", ">"),
    ("wall_s", "wall s", ">"),
)


async def scenario(name: str, n: int) -> Figures:
    counter = RetryCounter()
    figures = Figures(name, n)
    requests = requests_for(n, name)
    async with Emulator(time_scale=100, seed=7) as emu:
        if name == "faults":
            emu.set_faults(
                FaultProfile(
                    rate=0.2,
                    kinds=("500", "502", "503", "429", "reset", "truncate", "delay"),
                    phase="both",
                    seed=20,
                    delay=0.05,
                    retry_after=0.01,
                )
            )
            async with AsyncLume(
                api_key=emu.api_key, base_url=emu.url, retry=chaos_policy(counter, **QUICK_BACKOFF)
            ) as lume:
                await fan_out(lume, requests, figures)
        elif name == "proxy":
            toxics = Toxics(
                latency=0.001,
                jitter=0.004,
                bandwidth=2_000_000,
                reset_rate=0.03,
                hang_rate=0.005,
                swallow_rate=0.01,
                slow_close=0.02,
                seed=21,
            )
            async with (
                FaultProxy(emu.port, toxics) as proxy,
                AsyncLume(
                    api_key=emu.api_key,
                    base_url=proxy.url,
                    timeout=Timeout(total=1.0, connect=0.5),
                    retry=chaos_policy(counter, **QUICK_BACKOFF),
                ) as lume,
            ):
                await fan_out(lume, requests, figures)
        elif name == "lying":
            await lying(emu, requests, figures, counter)
        else:
            with rate_limited_proxy(emu.port, rate=400, burst=200) as nginx:
                async with AsyncLume(
                    api_key=emu.api_key, base_url=nginx.url, retry=chaos_policy(counter)
                ) as lume:
                    await fan_out(lume, requests, figures, page_size=100)
        emu.set_faults(None)
        figures.retries = counter.total
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as oracle:
            await audit(oracle, name, figures, emu.stats())
    return figures


async def lying(
    emu: Emulator, requests: list[Any], figures: Figures, counter: RetryCounter
) -> None:
    """The fan-out through a proxy whose listings lie, then every run listed through it."""
    async with (
        LyingProxy(emu.port, rate=0.2, seed=22) as liar,
        AsyncLume(api_key=emu.api_key, base_url=liar.url, retry=chaos_policy(counter)) as lume,
    ):
        await fan_out(lume, requests, figures, read_attempts=100)
        listed, refused = await walk_runs(lume, page_size=100)
        figures.refused += refused
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as oracle:
            truth = [run.id async for run in oracle.runs.list(page_size=100)]
        if listed != truth:
            figures.failures.append(
                f"run listing through lies: {len(listed)} ids, {len(set(listed))} distinct; "
                f"{len(truth)} on the server"
            )
        lies = ", ".join(f"{kind} {n}" for kind, n in sorted(liar.told.items()))
        print(f"lying: lies told: {lies}", file=sys.stderr)


RESUME_FAULTS = {
    "rate": 0.3,
    "kinds": ["500", "502", "503", "429", "reset", "truncate"],
    "phase": "both",
    "seed": 32,
    "retry_after": 0.01,
}


def _run_until(cmd: list[str], reached: Callable[[int], bool]) -> None:
    """Run the fan-out script; SIGKILL it once ``reached(creates done so far)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    done = [0]

    def count() -> None:
        for line in proc.stdout or ():
            if line.startswith("progress "):
                done[0] = int(line.split()[1])

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if reached(done[0]):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the fan-out ended (status {proc.returncode}) before its kill")


def _kept(sink: Path) -> int:
    with os.scandir(sink) as entries:
        return sum(entry.name.endswith(".json") for entry in entries)


def resume_scenario(n: int) -> Figures:
    """Kill the fan-out script three times, run it again until it ends cleanly, then audit."""
    figures = Figures("resume", n)
    rng = random.Random(2026)
    created_at = rng.randint(n // 10, n * 9 // 10)
    kept_at = sorted([rng.randint(n // 20, n // 2), rng.randint(n // 2, n * 9 // 10)])
    started = time.monotonic()
    with EmulatorProcess(time_scale=50, seed=8) as emu, tempfile.TemporaryDirectory() as tmp:
        emu.set_faults(RESUME_FAULTS)
        sink = Path(tmp) / "sink"
        sink.mkdir()
        cmd = [sys.executable, fanout_script.__file__, emu.url, emu.api_key, "resume", "0"]
        cmd += [str(n), "--concurrency", "32", "--namespace", "resume-ns", "--sink", str(sink)]
        _run_until(cmd, lambda done: done >= created_at)
        _run_until(cmd, lambda _: _kept(sink) >= kept_at[0])
        _run_until(cmd, lambda _: _kept(sink) >= kept_at[1])
        summary: dict[str, Any] = {"failed": ["not run"]}
        for _ in range(5):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
            summary = json.loads(done.stdout.splitlines()[-1])
            if done.returncode == 0:
                break
        figures.wall = time.monotonic() - started
        figures.failures = list(summary["failed"])
        emu.set_faults(None)
        stats = asyncio.run(emu.stats())
        # Every injected fault is a request the script had to repeat.
        figures.retries = sum(
            count
            for by_status in stats["requests"].values()
            for status, count in by_status.items()
            if not status.startswith("2")
        )

        async def check() -> None:
            async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as oracle:
                await audit(oracle, "resume", figures, stats)

        asyncio.run(check())
        records = [json.loads(path.read_text()) for path in sink.glob("*.json")]
    figures.rows_expected = sum(fanout_script.rows_of(i) for i in range(n))
    figures.rows_fetched = sum(len(record["rows"]) for record in records)
    for record in records:
        index = int(record["source_path"].split("-")[-1].split("?")[0])
        if record["rows"] != [f"Customer {i}" for i in range(fanout_script.rows_of(index))]:
            figures.rows_wrong += 1
    if len(records) != figures.on_server:
        figures.failures.append(f"{len(records)} runs' rows kept for {figures.on_server} runs")
    print(
        f"resume: killed at {created_at} creates, then at {kept_at[0]} and {kept_at[1]} runs kept",
        file=sys.stderr,
    )
    return figures


def table(rows: list[dict[str, Any]]) -> str:
    widths = {
        key: max(len(title), *(len(str(row[key])) for row in rows)) for key, title, _ in COLUMNS
    }
    lines = ["| " + " | ".join(f"{title:{widths[k]}}" for k, title, _ in COLUMNS) + " |"]
    lines.append(
        "|"
        + "|".join(
            ("-" * (widths[k] + 1) + ":") if a == ">" else "-" * (widths[k] + 2)
            for k, _, a in COLUMNS
        )
        + "|"
    )
    for row in rows:
        cells = [f"{row[k]!s:{a}{widths[k]}}" for k, _, a in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs per scenario")
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    ok = True
    if "hostile" in args.scenario:
        import _hostile

        hostile_rows = _hostile.report()
        print(_hostile.table(hostile_rows))
        ok &= all(row["bounded"] for row in hostile_rows)
        if args.json is not None:
            args.json.with_suffix(".hostile.json").write_text(json.dumps(hostile_rows, indent=2))
    for name in args.scenario:
        if name == "hostile":
            continue
        if name == "nginx" and not nginx_available():
            print("nginx: skipped (not installed; apt-get install nginx-light)", file=sys.stderr)
            continue
        if name == "resume":
            figures = resume_scenario(args.runs)
        else:
            figures = asyncio.run(scenario(name, args.runs))
        row = figures.row()
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr, flush=True)
        for failure in figures.failures[:5]:
            print(f"  {failure}", file=sys.stderr)
        ok &= (
            not figures.failures
            and figures.created == figures.on_server == args.runs
            and figures.duplicates == 0
            and figures.max_per_path == 1
            and figures.rows_fetched == figures.rows_expected
            and figures.rows_wrong == 0
        )
    if rows:
        print(table(rows))
    if args.json is not None and rows:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
