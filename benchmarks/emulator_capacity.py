"""Capacity of the Lume emulator: requests/s and latency under wrk, emulator in its own process.

Usage: ``python benchmarks/emulator_capacity.py [--duration 10] [--connections 64] [--threads 2]``.
Starts ``python -m lume_async.testing --port 0``, seeds runs, then drives each scenario with wrk
(Lua scripts for headers and bodies) and writes ``benchmarks/results/emulator_capacity.json``.
Also pages through every result page of a 1,000,000-row synthetic run and reports the emulator's
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "emulator_capacity.json"

LUA_GET = """
wrk.method = "GET"
wrk.headers["lume-api-key"] = "{key}"
"""
LUA_BATCH = """
wrk.method = "POST"
wrk.headers["lume-api-key"] = "{key}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""
LUA_CREATE = """
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
request = function()
  counter = counter + 1
  local body = '{{"flow_version": "customer_cleaner:v1", "source_path": "s3://bench/'
    .. tid .. '/' .. counter .. '"}}'
  local headers = {{["lume-api-key"] = "{key}", ["Content-Type"] = "application/json"}}
  return wrk.format("POST", "/v1/runs", headers, body)
end
"""
LUA_REPORT = """
done = function(summary, latency, requests)
  local fmt = "JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d, "
    .. "\\"non2xx\\": %d, \\"p50_ms\\": %.3f, \\"p90_ms\\": %.3f, \\"p99_ms\\": %.3f, "
    .. "\\"mean_ms\\": %.3f}\\n"
  io.write(string.format(fmt,
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


def _request(url: str, key: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"lume-api-key": key, "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _rss_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _wrk(url: str, script: str, args: argparse.Namespace, tmp: Path, name: str) -> dict[str, Any]:
    path = tmp / f"{name}.lua"
    path.write_text(script + LUA_REPORT)
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(path),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result


def _start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lume_async.testing", "--port", "0", "--time-scale", "100"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("LUME_EMULATOR "):
            ready = json.loads(line.removeprefix("LUME_EMULATOR "))
            return proc, ready["url"], ready["api_key"]
    raise RuntimeError("the emulator exited before it was ready")


def _page_through(url: str, key: str, pid: int) -> dict[str, Any]:
    path = "synthetic://million?rows=1000000&reject_rate=0.01&duration=1"
    run = _request(
        f"{url}/v1/runs", key, "POST", {"flow_version": "customer_cleaner:v1", "source_path": path}
    )
    _request(f"{url}/_emulator/advance", key, "POST", {"seconds": 5})
    start, rows, page = time.perf_counter(), 0, 1
    while True:
        body = _request(f"{url}/v1/runs/{run['id']}/results?page={page}&size=100", key)
        rows += len(body["items"])
        if page >= body["pages"]:
            break
        page += 1
    return {
        "rows": rows,
        "pages": page,
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(_rss_kb(pid, "VmHWM") / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-page-through", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed", file=sys.stderr)
        return 1
    proc, url, key = _start_emulator()
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}
    try:
        seeded = [
            _request(
                f"{url}/v1/runs",
                key,
                "POST",
                {"flow_version": "customer_cleaner:v1", "source_path": f"s3://seed/{i}"},
            )["id"]
            for i in range(100)
        ]
        _request(f"{url}/_emulator/advance", key, "POST", {"seconds": 10})
        batch_body = json.dumps({"ids": seeded})
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            scenarios = {
                "GET /v1/runs/{run_id}": (f"{url}/v1/runs/{seeded[0]}", LUA_GET.format(key=key)),
                "POST /v1/runs/batch-get (100 ids)": (
                    f"{url}/v1/runs/batch-get",
                    LUA_BATCH.format(key=key, body=batch_body),
                ),
                "POST /v1/runs": (f"{url}/v1/runs", LUA_CREATE.format(key=key)),
            }
            table = {}
            for i, (name, (target, script)) in enumerate(scenarios.items()):
                table[name] = _wrk(target, script, args, tmp, f"s{i}")
        results["scenarios"] = table
        results["rss_after_load_mb"] = round(_rss_kb(proc.pid, "VmRSS") / 1024, 1)
        if not args.skip_page_through:
            results["million_row_page_through"] = _page_through(url, key, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    print(f"{'scenario':40} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'non2xx':>7}")
    for name, r in results["scenarios"].items():
        print(
            f"{name:40} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['errors']:>7} {r['non2xx']:>7}"
        )
    if "million_row_page_through" in results:
        m = results["million_row_page_through"]
        print(
            f"1,000,000-row run: {m['rows']} rows in {m['pages']} pages, {m['seconds']} s, "
            f"emulator peak RSS {m['peak_rss_mb']} MB"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
