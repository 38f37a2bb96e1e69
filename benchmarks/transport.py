"""Transport throughput: the SDK's ``runs.get`` against raw aiohttp, httpx and requests.

Every client makes the same N GETs of one run, at each concurrency, against two servers: nginx
serving a canned run (so the client is what is measured) and the SDK's emulator. Each client
reads what a user reads, the run's status *and* its metadata (``run.metadata.results
.mapped_rows`` for the SDK, the same keys of the parsed dict for the others); ``lume-sdk
(status)`` reads the status only, which spares the SDK decoding the metadata. Each
measurement runs in a fresh subprocess (warm-up first, then wall time and the process's CPU
time), the clients' order rotates between rounds, and the median of the rounds is reported,
because a shared machine is noisy. Ratios are taken per round, between measurements made
minutes apart at most, and their median is reported.

    python benchmarks/transport.py [--n 4000] [--concurrency 1,64] [--rounds 3] [--quick]
    python benchmarks/transport.py --loop uvloop        # every asyncio client on uvloop

Results go to ``benchmarks/results/transport.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import json
import platform
import pstats
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _common import (
    RESULTS_DIR,
    EmulatorProcess,
    Nginx,
    ServerUnavailable,
    ensure_sdk_importable,
    loop_factory,
    machine,
    machine_line,
    median,
    print_table,
    sample_run,
    write_results,
)

SDK = "lume-sdk"
SDK_STATUS = "lume-sdk (status)"
AIOHTTP, AIOHTTP_ORJSON = "aiohttp", "aiohttp+orjson"
CLIENTS = (SDK, SDK_STATUS, AIOHTTP, AIOHTTP_ORJSON, "httpx", "requests")
#: What each client reads of every answer.
READS = {
    SDK: "typed run: .status, .metadata.results.mapped_rows",
    SDK_STATUS: "typed run: .status only (metadata left undecoded)",
    AIOHTTP: "json.loads(body): ['status'], ['metadata']['results']['mapped_rows']",
    AIOHTTP_ORJSON: "orjson.loads(body): the same keys",
    "httpx": "resp.json(): the same keys",
    "requests": "resp.json(): the same keys",
}
REQUESTS_THREADS = 16
RUN_ID = "run_01HYB6ZX8R4J5K7W9Q2N3M4P5T"
# At concurrency 64 against nginx, the SDK reading metadata: req/s over raw aiohttp's (with
# json.loads) and over httpx's; CPU per request over raw aiohttp's with orjson.
ACCEPT_CONCURRENCY = 64
ACCEPT_VS_AIOHTTP = 0.95
ACCEPT_CPU_VS_AIOHTTP_ORJSON = 1.0
ACCEPT_VS_HTTPX = 5.0


# --- one measurement (runs in a worker subprocess) ------------------------------------------------


def _headers(api_key: str) -> dict[str, str]:
    """What the SDK sends on a GET, so every client sends the same request."""
    from lume_async._transport import USER_AGENT

    return {"lume-api-key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}


def _read(body: Any) -> Any:
    """What a user reads of a run parsed into a dict: its status and a metadata figure."""
    body["status"]
    body["metadata"]["results"]["mapped_rows"]
    return body


async def _drive(fetch: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> None:
    """``n`` calls of ``fetch``, ``concurrency`` at a time, by that many looping tasks."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await fetch()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))


class _Stopwatch:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextmanager
    def measure(self, profile: str | None) -> Iterator[None]:
        gc.collect()
        profiler = cProfile.Profile() if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            yield
        finally:
            if profiler is not None:
                profiler.disable()
            self.wall = time.perf_counter() - wall0
            self.cpu = time.process_time() - cpu0
            if profiler is not None and profile:
                profiler.dump_stats(profile)


async def _measure_async(
    client: str,
    url: str,
    run_id: str,
    api_key: str,
    n: int,
    concurrency: int,
    warmup: int,
    profile: str | None,
) -> tuple[_Stopwatch, Any]:
    watch = _Stopwatch()
    run_url = f"{url}/v1/runs/{run_id}"
    headers = _headers(api_key)
    last: list[Any] = [None]

    if client in (SDK, SDK_STATUS):
        from lume_async import AsyncLume

        async with AsyncLume(
            api_key=api_key, base_url=url, max_connections=max(100, concurrency)
        ) as lume:
            get = lume.runs.get

            if client == SDK:

                async def fetch() -> None:
                    run = await get(run_id)
                    last[0] = (run, run.status, run.metadata.results.mapped_rows)  # type: ignore[union-attr]

            else:

                async def fetch() -> None:
                    run = await get(run_id)
                    last[0] = (run, run.status)

            await _drive(fetch, warmup, concurrency)
            with watch.measure(profile):
                await _drive(fetch, n, concurrency)
        run = last[0][0]
        return watch, {"id": run.id, "status": str(run.status), "typed": type(run).__name__}

    if client in (AIOHTTP, AIOHTTP_ORJSON):
        import aiohttp

        loads = json.loads if client == AIOHTTP else orjson.loads
        connector = aiohttp.TCPConnector(limit=max(100, concurrency))
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def fetch() -> None:
                async with session.get(run_url) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                    body = loads(await resp.read())
                    _read(body)
                    last[0] = body

            await _drive(fetch, warmup, concurrency)
            with watch.measure(profile):
                await _drive(fetch, n, concurrency)
        return watch, last[0]

    if client == "httpx":
        import httpx

        limits = httpx.Limits(
            max_connections=max(100, concurrency), max_keepalive_connections=max(20, concurrency)
        )
        async with httpx.AsyncClient(trust_env=False, limits=limits, headers=headers) as hx:

            async def fetch() -> None:
                resp = await hx.get(run_url)
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code}")
                last[0] = _read(resp.json())

            await _drive(fetch, warmup, concurrency)
            with watch.measure(profile):
                await _drive(fetch, n, concurrency)
        return watch, last[0]

    raise ValueError(f"not an asyncio client: {client}")


def _requests_threads(concurrency: int) -> int:
    return 1 if concurrency == 1 else min(REQUESTS_THREADS, concurrency)


def _measure_requests(
    url: str,
    run_id: str,
    api_key: str,
    n: int,
    concurrency: int,
    warmup: int,
    profile: str | None,
) -> tuple[_Stopwatch, Any]:
    import requests
    from requests.adapters import HTTPAdapter

    watch = _Stopwatch()
    threads = _requests_threads(concurrency)
    run_url = f"{url}/v1/runs/{run_id}"
    last: list[Any] = [None]
    with requests.Session() as session:
        session.trust_env = False
        session.headers.update(_headers(api_key))
        session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))

        def run(count: int) -> None:
            counter = itertools.count()  # next() on it is atomic under the GIL

            def worker() -> None:
                while next(counter) < count:
                    resp = session.get(run_url)
                    if resp.status_code != 200:
                        raise RuntimeError(f"HTTP {resp.status_code}")
                    last[0] = _read(resp.json())

            with ThreadPoolExecutor(threads) as pool:
                for future in [pool.submit(worker) for _ in range(threads)]:
                    future.result()

        run(warmup)
        with watch.measure(profile):
            run(n)
    return watch, last[0]


def worker_main(args: argparse.Namespace) -> None:
    """Measure one client once and print one JSON line for the driver."""
    common = (args.url, args.run_id, args.api_key, args.n, args.c, args.warmup, args.cprofile)
    if args.worker == "requests":
        watch, sample = _measure_requests(*common)
    else:
        with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
            watch, sample = runner.run(_measure_async(args.worker, *common))
    if not isinstance(sample, dict) or sample.get("id") != args.run_id:
        raise SystemExit(f"{args.worker}: the last answer is not the run: {str(sample)[:200]}")
    print(
        json.dumps(
            {
                "client": args.worker,
                "concurrency": args.c,
                "n": args.n,
                "wall_s": watch.wall,
                "cpu_s": watch.cpu,
                "rps": args.n / watch.wall,
                "cpu_us_per_req": watch.cpu / args.n * 1e6,
            }
        )
    )


# --- the driver -----------------------------------------------------------------------------------


def _run_worker(
    client: str,
    url: str,
    run_id: str,
    api_key: str,
    n: int,
    concurrency: int,
    *,
    loop: str = "asyncio",
    cprofile: str | None = None,
) -> dict[str, Any]:
    warmup = max(2 * concurrency, min(500, n // 4))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", client]
    cmd += ["--url", url, "--run-id", run_id, "--api-key", api_key]
    cmd += ["--n", str(n), "--c", str(concurrency), "--warmup", str(warmup), "--loop", loop]
    if cprofile:
        cmd += ["--cprofile", cprofile]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(
            f"{client} at concurrency {concurrency} failed (exit {out.returncode}):\n"
            f"{out.stderr.strip()[-2000:]}"
        )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _measure_server(
    server: str,
    url: str,
    run_id: str,
    api_key: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every client at every concurrency, ``rounds`` times, rotating the clients' order."""
    clients = list(args.clients)
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        order = clients[r % len(clients) :] + clients[: r % len(clients)]
        for c in args.concurrency:
            for client in order:
                m = _run_worker(client, url, run_id, api_key, args.n, c, loop=args.loop)
                rounds.setdefault((client, c), []).append(m)
                print(
                    f"  [{server}] round {r + 1}/{args.rounds}  {client:<9} c={c:<3} "
                    f"{m['rps']:>8,.0f} req/s  {m['cpu_us_per_req']:>6,.0f} µs CPU/req",
                    flush=True,
                )
    return _summarise(server, clients, args, rounds)


def _summarise(
    server: str,
    clients: list[str],
    args: argparse.Namespace,
    rounds: dict[tuple[str, int], list[dict[str, Any]]],
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for c in args.concurrency:
        sdk = rounds.get((SDK, c))
        for client in clients:
            ms = rounds[(client, c)]
            row: dict[str, Any] = {
                "client": client,
                "concurrency": c,
                "threads": _requests_threads(c) if client == "requests" else None,
                "rps": median([m["rps"] for m in ms]),
                "rps_min": min(m["rps"] for m in ms),
                "rps_max": max(m["rps"] for m in ms),
                "cpu_us_per_req": median([m["cpu_us_per_req"] for m in ms]),
                "rounds": [
                    {"rps": round(m["rps"], 1), "cpu_us_per_req": round(m["cpu_us_per_req"], 2)}
                    for m in ms
                ],
            }
            if sdk is not None:
                # Per-round ratios pair measurements taken close together; their median is robust.
                row["sdk_over_client_rps"] = median(
                    [s["rps"] / m["rps"] for s, m in zip(sdk, ms, strict=True)]
                )
                row["sdk_over_client_cpu"] = median(
                    [
                        s["cpu_us_per_req"] / m["cpu_us_per_req"]
                        for s, m in zip(sdk, ms, strict=True)
                    ]
                )
            rows.append(row)
    return {"server": server, "rows": rows}


def _print_server(result: dict[str, Any]) -> None:
    table = []
    for row in result["rows"]:
        label = row["client"]
        if row["threads"] is not None:
            label += f" ({row['threads']} thr)"
        table.append(
            [
                label,
                row["concurrency"],
                row["rps"],
                f"{row['rps_min']:,.0f}-{row['rps_max']:,.0f}",
                row["cpu_us_per_req"],
                row.get("sdk_over_client_rps", float("nan")),
                row.get("sdk_over_client_cpu", float("nan")),
            ]
        )
    print_table(
        ["client", "conc", "req/s", "req/s range", "CPU µs/req", "SDK/this req/s", "SDK/this CPU"],
        table,
        title=(
            f"{result['server']}: {result['url']}, a run of {result['body_bytes']:,} bytes"
            f" (median of {result['rounds_done']} rounds)"
        ),
    )


def _acceptance(nginx: dict[str, Any] | None) -> dict[str, Any]:
    """Issue 16's goal 1 and the httpx floor, each with its goal, from the nginx rows at c=64."""

    def row(client: str) -> dict[str, Any]:
        for r in (nginx or {}).get("rows", []):
            if r["client"] == client and r["concurrency"] == ACCEPT_CONCURRENCY:
                return dict(r)
        return {}

    c = ACCEPT_CONCURRENCY
    checks = {
        f"SDK reading metadata >= {ACCEPT_VS_AIOHTTP}x raw aiohttp + json.loads req/s (c={c})": (
            row(AIOHTTP).get("sdk_over_client_rps"),
            f">= {ACCEPT_VS_AIOHTTP}x",
            lambda v: v >= ACCEPT_VS_AIOHTTP,
        ),
        f"SDK reading metadata CPU/req <= raw aiohttp + orjson's (c={c})": (
            row(AIOHTTP_ORJSON).get("sdk_over_client_cpu"),
            f"<= {ACCEPT_CPU_VS_AIOHTTP_ORJSON}x",
            lambda v: v <= ACCEPT_CPU_VS_AIOHTTP_ORJSON,
        ),
        f"SDK reading metadata >= {ACCEPT_VS_HTTPX:g}x httpx req/s (c={c})": (
            row("httpx").get("sdk_over_client_rps"),
            f">= {ACCEPT_VS_HTTPX:g}x",
            lambda v: v >= ACCEPT_VS_HTTPX,
        ),
    }
    status, aiohttp = row(SDK_STATUS), row(AIOHTTP)
    pairs = zip(status.get("rounds", []), aiohttp.get("rounds", []), strict=True)
    reported = {
        f"SDK reading status only / raw aiohttp + json.loads req/s (c={c})": (
            median([s["rps"] / a["rps"] for s, a in pairs]) if status and aiohttp else None
        ),
    }
    out: dict[str, Any] = {}
    print("\nacceptance (nginx)")
    for name, (value, goal, ok) in checks.items():
        verdict = "not measured" if value is None else "PASS" if ok(value) else "FAIL"
        shown = "-" if value is None else f"{value:.2f}x"
        print(f"  {verdict:<12} {name}: {shown} (goal {goal})")
        out[name] = {"ratio": value, "goal": goal, "verdict": verdict}
    for name, value in reported.items():
        shown = "-" if value is None else f"{value:.2f}x"
        print(f"  {'REPORT':<12} {name}: {shown}")
        out[name] = {"ratio": value, "goal": None, "verdict": "reported"}
    return out


async def _create_emulator_run(url: str, api_key: str) -> str:
    from lume_async import AsyncLume

    async with AsyncLume(api_key=api_key, base_url=url) as lume:
        run = await lume.runs.create(
            "customer_cleaner:v1", "synthetic://transport-bench?rows=200&duration=0.5"
        )
        # A finished run carries all its metadata, and its answer no longer changes.
        await run.wait(timeout=60, poll_interval=0.1)
        return run.id


def _server(name: str, args: argparse.Namespace) -> AbstractContextManager[Any]:
    if name == "nginx":
        return Nginx(orjson.dumps(sample_run(RUN_ID)))
    return EmulatorProcess(api_key=f"lume_bench_{secrets.token_urlsafe(12)}")


def _profile_sdk(url: str, args: argparse.Namespace) -> None:
    c = max(args.concurrency)
    path = RESULTS_DIR / "transport-sdk.prof"
    path.parent.mkdir(parents=True, exist_ok=True)
    m = _run_worker(SDK, url, RUN_ID, "bench-key", args.n, c, cprofile=str(path))
    print(f"\ncProfile of the SDK loop at c={c} ({m['rps']:,.0f} req/s under the profiler): {path}")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)


def _versions() -> dict[str, str]:
    import aiohttp
    import httpx
    import requests

    import lume_async

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "lume_async": f"{lume_async.__version__} ({Path(lume_async.__file__).parent})",
        "aiohttp": aiohttp.__version__,
        "httpx": httpx.__version__,
        "requests": requests.__version__,
        "orjson": orjson.__version__,
    }


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind normally, so the servers started here are stopped."""

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)


def driver_main(args: argparse.Namespace) -> int:
    _stop_on_signals()
    results: dict[str, Any] = {
        "benchmark": "transport",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loop": args.loop,
        "reads": {client: READS[client] for client in args.clients},
        "versions": _versions(),
        "n": args.n,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "clients": list(args.clients),
        "requests_threads": REQUESTS_THREADS,
        "run_bytes": len(orjson.dumps(sample_run(RUN_ID))),
        "servers": {},
        "skipped": {},
    }
    print(
        f"transport: {args.n} GETs per measurement, concurrency {args.concurrency}, "
        f"{args.rounds} round(s), clients {', '.join(args.clients)}, {args.loop} event loop\n"
        f"machine: {machine_line(results['machine'])}\nwhat each client reads of an answer:",
        flush=True,
    )
    for client in args.clients:
        print(f"  {client:<18} {READS[client]}")
    for name in args.servers:
        try:
            with _server(name, args) as server:
                if name == "nginx":
                    run_id, api_key = RUN_ID, "bench-key"
                    results["nginx_version"] = server.version()
                else:
                    api_key = server.api_key
                    run_id = asyncio.run(_create_emulator_run(server.url, api_key))
                size = _body_size(server.url, run_id, api_key)
                print(f"\n{name} at {server.url}, run {run_id}: {size:,} bytes", flush=True)
                result = _measure_server(name, server.url, run_id, api_key, args)
                result.update(
                    url=server.url, run_id=run_id, rounds_done=args.rounds, body_bytes=size
                )
                results["servers"][name] = result
                _print_server(result)
                if args.profile and name == "nginx" and SDK in args.clients:
                    _profile_sdk(server.url, args)
        except ServerUnavailable as exc:
            print(f"\nSKIPPED {name}: {exc}", flush=True)
            results["skipped"][name] = str(exc)
    acceptance = _acceptance(results["servers"].get("nginx"))
    results["acceptance"] = acceptance
    path = write_results("transport", results, args.output)
    print(f"\nwrote {path}")
    failed = any(v["verdict"] == "FAIL" for v in acceptance.values())
    return 1 if (args.strict and failed) else 0


def _body_size(url: str, run_id: str, api_key: str) -> int:
    """The size of the run's JSON as the server sends it."""
    import requests

    with requests.Session() as session:
        session.trust_env = False
        resp = session.get(f"{url}/v1/runs/{run_id}", headers=_headers(api_key), timeout=10)
        resp.raise_for_status()
        return len(resp.content)


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,64")
    return values


def _name_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in names if v not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return names

    return parse


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="GETs per measurement (4000)")
    parser.add_argument(
        "--concurrency", type=_int_list, default=[1, 64], help="in-flight requests (1,64)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; medians are shown (3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small N, one round")
    parser.add_argument(
        "--servers",
        type=_name_list(("nginx", "emulator")),
        default=["nginx", "emulator"],
        help="nginx,emulator (both)",
    )
    parser.add_argument(
        "--clients", type=_name_list(CLIENTS), default=list(CLIENTS), help=",".join(CLIENTS)
    )
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop (asyncio)"
    )
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile the SDK loop against nginx"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when an acceptance check fails"
    )
    # Worker mode: one measurement, in its own process.
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--c", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cprofile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ensure_sdk_importable()
    if args.worker:
        worker_main(args)
        return 0
    if args.quick:
        args.n = min(args.n, 300)
        args.rounds = 1
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be >= 1")
    return driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
