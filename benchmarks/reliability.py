"""Reliability report: the chaos fan-out of the test suite, at scale.

    python benchmarks/reliability.py [--runs 10000] [--scenario faults proxy nginx lying]
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
  resuming from the last page trusted.

Then it asks the server, with faults off, how many runs exist per source path, and prints per
scenario: runs requested and created, duplicates, rows expected and fetched, retries, listings
refused as untrustworthy, wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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
from tests.chaos._proxy import FaultProxy, Toxics  # noqa: E402

SCENARIOS = ("faults", "proxy", "nginx", "lying")
COLUMNS = (
    ("scenario", "scenario", "<"),
    ("requested", "requested", ">"),
    ("created", "created", ">"),
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
    for name in args.scenario:
        if name == "nginx" and not nginx_available():
            print("nginx: skipped (not installed; apt-get install nginx-light)", file=sys.stderr)
            continue
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
            and figures.rows_fetched == figures.rows_expected
            and figures.rows_wrong == 0
        )
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
