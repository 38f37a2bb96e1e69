"""Fan-out and waiting at scale, against the emulator running in a separate process.

For each N (default 1,000 and 10,000) the benchmark creates N runs of
``synthetic://...?rows=R&duration=D`` with D uniform in 0.5..5 s (emulator clock at 1x, so run
times are real), waits for all of them, and counts their result rows, three ways:

  poller    the SDK: ``runs.create_many`` then ``runs.as_completed`` (one shared poller,
            ``batch-get`` of 100 ids per request)
  webhooks  the same, with a ``WebhookReceiver`` served in this process and registered with the
            emulator: completion events end the waits, polling falls to the safety-net rate
  naive     one task per run polling ``GET /v1/runs/{id}``, starting at the same poll interval
            and doubling up to 60 s (the backoff loop the original SDK's docs suggest)

It prints wall times, requests by route (``/_emulator/stats``, reset between scenarios), status
requests per run, and the detection latency: server completion (the run's
``metadata.pipeline.completed_at``) to the moment the client yields the run, both UTC wall clock
of this machine. Latency percentiles are over the runs that completed after the wait began; a run
that finished while the batch was still being created is seen by the first sweep, and its "latency"
would only measure how long creating the batch took.

Then ``create_many`` of N runs at each concurrency is timed against raw aiohttp making the same
creates at the same concurrency (alternating, fresh subprocess per measurement, median of rounds),
with the process's peak RSS and tracemalloc peak.

    python benchmarks/fanout.py [--n 1000,10000] [--poll 0.5] [--create-n 10000]
                                [--concurrency 32,64] [--rounds 2] [--quick]

Results go to ``benchmarks/results/fanout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
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

from lume_async import AsyncLume, AsyncRun, RunRequest  # noqa: E402
from lume_async.models import WebhookEvent  # noqa: E402
from lume_async.webhooks import WebhookReceiver  # noqa: E402

FLOW = "customer_cleaner:v1"
ROWS = 20
PAGE_ALL_UP_TO = 1_000  # count rows by paging every run's results up to this N; above, metadata
SCENARIOS = ("poller", "webhooks", "naive")
STATUS_ROUTES = ("POST /v1/runs/batch-get", "GET /v1/runs/{run_id}")
NAIVE_CAP = 60.0
# Acceptance thresholds (checked and printed, not enforced).
ACCEPT_RUNS_PER_STATUS_REQUEST = 50
ACCEPT_P95_OVER_INTERVAL = 1.5
ACCEPT_WEBHOOK_P95_MS = 100
ACCEPT_CREATE_RATIO = 1.3


# --- the emulator's control plane ----------------------------------------------------------------


class Control:
    """``/_emulator/`` reset and stats, plus webhook registration under ``/v1``."""

    def __init__(self, url: str, api_key: str, pid: int | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self.pid = pid

    def emulator_cpu_s(self) -> float:
        """CPU seconds the emulator process has used (user + system); NaN if unknown."""
        if self.pid is None:
            return float("nan")
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def reset(self) -> None:
        async with aiohttp.ClientSession() as http, http.post(f"{self.url}/_emulator/reset") as r:
            r.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/_emulator/stats") as r:
            r.raise_for_status()
            data: dict[str, Any] = await r.json()
            return data

    async def register_webhook(self, url: str, secret: str) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.url}/v1/webhooks",
                json={"url": url, "secret": secret},
                headers={"lume-api-key": self.api_key},
            ) as r,
        ):
            r.raise_for_status()


def requests_by_route(stats: dict[str, Any]) -> dict[str, int]:
    return {route: sum(by_status.values()) for route, by_status in stats["requests"].items()}


# --- one waiting scenario ------------------------------------------------------------------------


def run_requests(n: int, tag: str, rng: random.Random) -> list[RunRequest]:
    return [
        RunRequest(
            FLOW,
            source_path=f"synthetic://{tag}-{i}?rows={ROWS}&duration={rng.uniform(0.5, 5.0):.3f}",
        )
        for i in range(n)
    ]


def completed_at(run: AsyncRun) -> datetime | None:
    meta = run.metadata
    if meta is None:
        return None
    if meta.pipeline is not None and meta.pipeline.completed_at is not None:
        return meta.pipeline.completed_at
    return meta.run.finished_at if meta.run is not None else None


async def count_rows(lume: AsyncLume, runs: list[AsyncRun], *, page_all: bool) -> dict[str, Any]:
    """Rows mapped by the runs: from metadata, and (for small N) by paging every result."""
    from_metadata = sum(
        (run.metadata.results.mapped_rows or 0)
        for run in runs
        if run.metadata is not None and run.metadata.results is not None
    )
    out: dict[str, Any] = {"rows_from_metadata": from_metadata, "rows_paged": None}
    if page_all:
        began = time.perf_counter()
        limiter = asyncio.Semaphore(32)

        async def rows_of(run: AsyncRun) -> int:
            async with limiter:
                return len(await run.results(page_size=100).collect())

        out["rows_paged"] = sum(await asyncio.gather(*(rows_of(run) for run in runs)))
        out["paging_s"] = time.perf_counter() - began
    return out


async def scenario(
    name: str, n: int, ctl: Control, *, poll: float, concurrency: int, seed: int
) -> dict[str, Any]:
    await ctl.reset()
    rng = random.Random(seed)
    emulator_cpu, own_cpu, wall = ctl.emulator_cpu_s(), time.process_time(), time.perf_counter()
    receiver: WebhookReceiver | None = None
    served: Any = None
    arrived: dict[str, datetime] = {}
    if name == "webhooks":
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        receiver = WebhookReceiver(secret)

        # When each event reached this process: splits the latency into the emulator's delivery
        # and the SDK's own part (event in -> run yielded).
        def note_arrival(event: WebhookEvent) -> None:
            arrived.setdefault(event.data.run_id, datetime.now(UTC))

        receiver.add_listener(note_arrival)
        served = receiver.serve()
        hook_url = await served.__aenter__()
        await ctl.register_webhook(hook_url, secret)
    try:
        async with AsyncLume(
            api_key=ctl.api_key, base_url=ctl.url, webhooks=receiver, max_connections=100
        ) as lume:
            began = time.perf_counter()
            outcomes = await lume.runs.create_many(
                run_requests(n, f"{name}-{seed}", rng), concurrency=concurrency
            )
            runs = [outcome.unwrap() for outcome in outcomes]
            created_s = time.perf_counter() - began
            create_stats = requests_by_route(await ctl.stats())

            wait_began = datetime.now(UTC)
            t0 = time.perf_counter()
            seen: dict[str, datetime] = {}
            intervals: list[float] = []
            if name == "naive":
                await naive_wait_all(lume, runs, seen, first=poll)
            else:
                async for run in lume.runs.as_completed(runs, poll_interval=poll, timeout=600):
                    seen[run.id] = datetime.now(UTC)
                    intervals.append(lume._core.waiting.interval)
            wait_s = time.perf_counter() - t0
            wait_stats = requests_by_route(await ctl.stats())
            sweeps, poller_requests = lume._core.waiting.sweeps, lume._core.waiting.requests

            t0 = time.perf_counter()
            rows = await count_rows(lume, runs, page_all=n <= PAGE_ALL_UP_TO)
            count_s = time.perf_counter() - t0
            final_stats = await ctl.stats()
    finally:
        if served is not None:
            await served.__aexit__(None, None, None)

    wall = time.perf_counter() - wall
    emulator_cpu = ctl.emulator_cpu_s() - emulator_cpu
    own_cpu = time.process_time() - own_cpu
    after, everyone, delivery, sdk_part = [], [], [], []
    for run in runs:
        done = completed_at(run)
        if done is None:
            continue
        latency = (seen[run.id] - done).total_seconds()
        everyone.append(latency)
        if done > wait_began:
            after.append(latency)
            if run.id in arrived:
                delivery.append((arrived[run.id] - done).total_seconds())
                sdk_part.append((seen[run.id] - arrived[run.id]).total_seconds())
    wait_routes = {
        route: count - create_stats.get(route, 0)
        for route, count in wait_stats.items()
        if count - create_stats.get(route, 0)
    }
    status_requests = sum(wait_routes.get(route, 0) for route in STATUS_ROUTES)
    return {
        "scenario": name,
        "n": n,
        "poll_interval": poll,
        "create_s": created_s,
        "wait_s": wait_s,
        "count_s": count_s,
        "total_s": created_s + wait_s + count_s,
        "requests_by_route": requests_by_route(final_stats),
        "wait_requests_by_route": wait_routes,
        "status_requests": status_requests,
        "status_requests_per_run": status_requests / n,
        "sweeps": sweeps if name != "naive" else None,
        "poller_requests": poller_requests if name != "naive" else None,
        "median_interval_s": median(intervals) if intervals else None,
        "completed_after_wait_began": len(after),
        "latency_p50_ms": percentile(after, 50) * 1000,
        "latency_p95_ms": percentile(after, 95) * 1000,
        "latency_max_ms": max(after) * 1000 if after else float("nan"),
        "webhook_delivery_p50_ms": percentile(delivery, 50) * 1000 if delivery else None,
        "webhook_delivery_p95_ms": percentile(delivery, 95) * 1000 if delivery else None,
        "event_to_yield_p50_ms": percentile(sdk_part, 50) * 1000 if sdk_part else None,
        "event_to_yield_p95_ms": percentile(sdk_part, 95) * 1000 if sdk_part else None,
        "latency_all_p50_ms": percentile(everyone, 50) * 1000,
        "latency_all_p95_ms": percentile(everyone, 95) * 1000,
        "webhook_deliveries": final_stats["webhook_deliveries"],
        "client_cpu_share": own_cpu / wall,
        "emulator_cpu_share": emulator_cpu / wall,
        **rows,
    }


async def naive_wait_all(
    lume: AsyncLume, runs: list[AsyncRun], seen: dict[str, datetime], *, first: float
) -> None:
    """Each run waited by its own task: GET, sleep, double the sleep up to a cap."""

    async def wait_one(run: AsyncRun) -> None:
        delay = first
        while True:
            await run.refresh()
            if run.is_terminal:
                seen[run.id] = datetime.now(UTC)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, NAIVE_CAP)

    await asyncio.gather(*(wait_one(run) for run in runs))


# --- create_many against raw aiohttp (one measurement per subprocess) ----------------------------


def _bodies(n: int, tag: str) -> Iterator[RunRequest]:
    rng = random.Random(0)
    for i in range(n):
        yield RunRequest(
            FLOW,
            source_path=f"synthetic://{tag}-{i}?rows={ROWS}&duration={rng.uniform(0.5, 5.0):.3f}",
        )


async def create_sdk(url: str, key: str, n: int, concurrency: int, tag: str) -> int:
    async with AsyncLume(api_key=key, base_url=url, max_connections=100) as lume:
        outcomes = await lume.runs.create_many(_bodies(n, tag), concurrency=concurrency)
    return sum(outcome.ok for outcome in outcomes)


async def create_raw(url: str, key: str, n: int, concurrency: int, tag: str) -> int:
    requests = list(_bodies(n, tag))
    results: list[dict[str, Any] | None] = [None] * n
    indexes = iter(range(n))
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            for i in indexes:
                body = orjson.dumps(requests[i].to_wire())
                headers = {
                    "lume-api-key": key,
                    "content-type": "application/json",
                    "idempotency-key": f"raw-{uuid.uuid4().hex}",
                }
                async with http.post(f"{url}/v1/runs", data=body, headers=headers) as r:
                    raw = await r.read()
                    if r.status in (200, 201):
                        results[i] = orjson.loads(raw)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(result is not None for result in results)


def _rss_now_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def create_worker(args: argparse.Namespace) -> None:
    make = create_sdk if args.client == "sdk" else create_raw
    rss_before = _rss_now_kib()
    began = time.perf_counter()
    ok = asyncio.run(make(args.url, args.key, args.n, args.concurrency, args.tag))
    wall = time.perf_counter() - began
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    traced_peak = None
    if args.trace:
        tracemalloc.start()
        asyncio.run(make(args.url, args.key, args.n, args.concurrency, args.tag + "-t"))
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        json.dumps(
            {
                "ok": ok,
                "wall_s": wall,
                "rss_before_mib": rss_before / 1024,
                "peak_rss_mib": peak_rss / 1024,
                "tracemalloc_peak_mib": None if traced_peak is None else traced_peak / 2**20,
            }
        )
    )


def measure_create(
    ctl: Control, client: str, n: int, concurrency: int, tag: str, *, trace: bool
) -> dict[str, Any]:
    asyncio.run(ctl.reset())
    cmd = [sys.executable, __file__, "--create-worker", "--client", client, "--url", ctl.url]
    cmd += ["--key", ctl.api_key, "--n", str(n), "--concurrency", str(concurrency), "--tag", tag]
    if trace:
        cmd.append("--trace")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"create worker failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["ok"] != n:
        raise RuntimeError(f"{client} created {result['ok']} of {n} runs")
    return result


def create_comparison(
    ctl: Control, n: int, concurrencies: list[int], rounds: int, *, trace: bool
) -> list[dict[str, Any]]:
    rows = []
    for concurrency in concurrencies:
        per: dict[str, list[dict[str, Any]]] = {"sdk": [], "aiohttp": []}
        ratios = []
        for r in range(rounds):
            order = ("sdk", "aiohttp") if r % 2 == 0 else ("aiohttp", "sdk")
            got = {}
            for client in order:
                tag = f"c{concurrency}-r{r}-{client}"
                got[client] = measure_create(
                    ctl, client, n, concurrency, tag, trace=trace and r == 0
                )
                per[client].append(got[client])
            ratios.append(got["sdk"]["wall_s"] / got["aiohttp"]["wall_s"])
        for client, results in per.items():
            wall = median([res["wall_s"] for res in results])
            traced = [
                res["tracemalloc_peak_mib"]
                for res in results
                if res["tracemalloc_peak_mib"] is not None
            ]
            rows.append(
                {
                    "client": client,
                    "n": n,
                    "concurrency": concurrency,
                    "wall_s": wall,
                    "creates_per_s": n / wall,
                    "sdk_over_aiohttp": median(ratios) if client == "sdk" else 1.0,
                    "peak_rss_mib": max(res["peak_rss_mib"] for res in results),
                    "rss_growth_mib": median(
                        [res["peak_rss_mib"] - res["rss_before_mib"] for res in results]
                    ),
                    "tracemalloc_peak_mib": traced[0] if traced else None,
                    "rounds": [res["wall_s"] for res in results],
                }
            )
    return rows


# --- driver --------------------------------------------------------------------------------------


def _fmt_routes(routes: dict[str, int]) -> str:
    return ", ".join(f"{route} {count:,}" for route, count in sorted(routes.items()))


def _check(results: list[dict[str, Any]], creates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []

    def check(what: str, ok: bool, detail: str) -> None:
        checks.append({"check": what, "ok": ok, "detail": detail})

    for res in results:
        n = res["n"]
        if res["scenario"] == "poller":
            requests, sweeps = res["poller_requests"], res["sweeps"]
            per_sweep = requests / max(sweeps, 1)
            check(
                f"poller n={n}: <= 1 status request per {ACCEPT_RUNS_PER_STATUS_REQUEST} runs "
                "per sweep",
                per_sweep <= math.ceil(n / ACCEPT_RUNS_PER_STATUS_REQUEST),
                f"{requests} batch-gets over {sweeps} sweeps = {per_sweep:.1f} per sweep "
                f"for {n:,} runs (1 per {n / per_sweep:.0f} runs)",
            )
            interval = res["median_interval_s"] or res["poll_interval"]
            ratio = res["latency_p95_ms"] / 1000 / interval
            check(
                f"poller n={n}: p95 detection latency < {ACCEPT_P95_OVER_INTERVAL}x interval",
                ratio < ACCEPT_P95_OVER_INTERVAL,
                f"p95 {res['latency_p95_ms']:.0f} ms over interval {interval:.2f} s = {ratio:.2f}x",
            )
        if res["scenario"] == "webhooks":
            check(
                f"webhooks n={n}: p95 detection latency < {ACCEPT_WEBHOOK_P95_MS} ms",
                res["latency_p95_ms"] < ACCEPT_WEBHOOK_P95_MS,
                f"p95 {res['latency_p95_ms']:.1f} ms",
            )
            check(
                f"webhooks n={n}: full sweeps at the safety-net rate only",
                res["sweeps"] <= 1 + res["wait_s"] / 30,
                f"{res['sweeps']} full sweep(s) in {res['wait_s']:.1f} s; "
                f"{res['status_requests']:,} status requests, "
                f"{res['status_requests_per_run']:.3f} per run (event fetches, coalesced)",
            )
    for row in creates:
        if row["client"] != "sdk":
            continue
        check(
            f"create_many n={row['n']} c={row['concurrency']}: within "
            f"{ACCEPT_CREATE_RATIO}x of raw aiohttp",
            row["sdk_over_aiohttp"] <= ACCEPT_CREATE_RATIO,
            f"{row['sdk_over_aiohttp']:.2f}x",
        )
    return checks


async def waiting_benchmarks(
    ctl: Control, ns: list[int], poll: float, concurrency: int, names: list[str]
) -> list[dict[str, Any]]:
    results = []
    for n in ns:
        for seed, name in enumerate(SCENARIOS):
            if name not in names:
                continue
            print(f"  n={n:,} {name} ...", flush=True)
            results.append(
                await scenario(name, n, ctl, poll=poll, concurrency=concurrency, seed=seed)
            )
    return results


def driver(args: argparse.Namespace) -> int:
    try:
        emulator = EmulatorProcess(api_key="lume_bench_" + uuid.uuid4().hex)
        with emulator:
            proc = getattr(emulator, "_proc", None)
            ctl = Control(emulator.url, emulator.api_key, proc.pid if proc else None)
            print(f"emulator at {emulator.url} (separate process, time scale 1)")
            print("waiting scenarios:")
            results = asyncio.run(
                waiting_benchmarks(ctl, args.n, args.poll, args.create_concurrency, args.only)
            )
            creates = []
            if args.create_n:
                print("create_many against raw aiohttp:")
                creates = create_comparison(
                    ctl, args.create_n, args.concurrency, args.rounds, trace=not args.no_trace
                )
    except ServerUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2

    headers = [
        "scenario",
        "N",
        "create s",
        "wait s",
        "count s",
        "status req",
        "req/run",
        "sweeps",
        "p50 ms",
        "p95 ms",
        "max ms",
        "rows",
    ]
    table = []
    for res in results:
        rows = res["rows_paged"] if res["rows_paged"] is not None else res["rows_from_metadata"]
        how = "paged" if res["rows_paged"] is not None else "metadata"
        table.append(
            [
                res["scenario"],
                res["n"],
                res["create_s"],
                res["wait_s"],
                res["count_s"],
                res["status_requests"],
                round(res["status_requests_per_run"], 3),
                res["sweeps"] if res["sweeps"] is not None else "-",
                res["latency_p50_ms"],
                res["latency_p95_ms"],
                res["latency_max_ms"],
                f"{rows:,} ({how})",
            ]
        )
    print_table(
        headers,
        table,
        title=f"Waiting on N runs (poll interval {args.poll:g} s; latency over runs that "
        "completed after the wait began)",
    )
    print("\nrequests by route during the wait (whole scenario in fanout.json):")
    for res in results:
        print(
            f"  {res['scenario']:>8} n={res['n']:>6,}: {_fmt_routes(res['wait_requests_by_route'])}"
        )
    for res in results:
        if res["webhook_delivery_p50_ms"] is not None:
            print(
                f"  webhooks n={res['n']:,}: emulator delivery p50/p95 "
                f"{res['webhook_delivery_p50_ms']:.1f}/{res['webhook_delivery_p95_ms']:.1f} ms, "
                f"event in -> run yielded p50/p95 {res['event_to_yield_p50_ms']:.1f}/"
                f"{res['event_to_yield_p95_ms']:.1f} ms"
            )
    print("\nCPU busy over the scenario (1.0 = one core), client process / emulator process:")
    for res in results:
        print(
            f"  {res['scenario']:>8} n={res['n']:>6,}: {res['client_cpu_share']:.2f} / "
            f"{res['emulator_cpu_share']:.2f}"
        )
    print("\ncompleted after the wait began / latency over all runs p50, p95 (ms):")
    for res in results:
        print(
            f"  {res['scenario']:>8} n={res['n']:>6,}: {res['completed_after_wait_began']:,}"
            f" / {res['latency_all_p50_ms']:.0f}, {res['latency_all_p95_ms']:.0f}"
        )

    print_table(
        [
            "client",
            "N",
            "concurrency",
            "wall s",
            "creates/s",
            "sdk/aiohttp",
            "peak RSS MiB",
            "RSS growth MiB",
            "tracemalloc MiB",
        ],
        [
            [
                row["client"],
                row["n"],
                row["concurrency"],
                row["wall_s"],
                row["creates_per_s"],
                row["sdk_over_aiohttp"],
                row["peak_rss_mib"],
                row["rss_growth_mib"],
                row["tracemalloc_peak_mib"] if row["tracemalloc_peak_mib"] is not None else "-",
            ]
            for row in creates
        ],
        title=f"create_many of {args.create_n:,} runs vs raw aiohttp (median of {args.rounds})",
    )
    checks = _check(results, creates)
    print("\nacceptance:")
    for item in checks:
        print(f"  [{'ok' if item['ok'] else 'FAIL'}] {item['check']}: {item['detail']}")

    path = write_results(
        "fanout",
        {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "settings": {
                "n": args.n,
                "poll_interval": args.poll,
                "rows_per_run": ROWS,
                "duration_s": [0.5, 5.0],
                "create_concurrency_in_scenarios": args.create_concurrency,
                "naive_backoff": {"first": args.poll, "factor": 2, "cap": NAIVE_CAP},
                "rows_paged_up_to_n": PAGE_ALL_UP_TO,
                "create_n": args.create_n,
                "create_concurrency": args.concurrency,
                "rounds": args.rounds,
            },
            "waiting": results,
            "create_many": creates,
            "acceptance": checks,
        },
    )
    print(f"\nwrote {path}")
    return 0


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)}")
    return names


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected integers, e.g. 1000,10000") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=_ints, default=[1_000, 10_000], help="runs to wait on")
    parser.add_argument("--poll", type=float, default=0.5, help="poll_interval (and naive start)")
    parser.add_argument(
        "--only", type=_names, default=list(SCENARIOS), help="scenarios, e.g. poller,webhooks"
    )
    parser.add_argument("--create-n", type=int, default=10_000, help="creates to time (0: skip)")
    parser.add_argument("--concurrency", type=_ints, default=[32, 64], help="create concurrency")
    parser.add_argument("--create-concurrency", type=int, default=64, help="in the scenarios")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--quick", action="store_true", help="n=300, 2,000 creates, 1 round")
    # worker mode (one create measurement)
    parser.add_argument("--create-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=("sdk", "aiohttp"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="c", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.create_worker:
        args.n = args.n[0] if isinstance(args.n, list) else int(args.n)
        args.concurrency = args.concurrency[0]
        create_worker(args)
        return 0
    if args.quick:
        args.n, args.create_n, args.rounds = [300], min(args.create_n, 2_000), 1
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
