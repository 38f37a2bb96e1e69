"""The benchmarks run end to end in their quick mode and write their results files.

Only that they work is checked: speed depends on the machine and is for people to read. So the
counts are the smallest that still take every path of a script (each client, section and
server), and runs last a fraction of a second: what is measured does not depend on them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _nginx() -> str | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("nginx", path=search)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        _nginx() is None, reason="nginx is not installed (apt-get install nginx-light)"
    ),
]


def run_quick(script: str, output: Path, *extra: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            "--quick",
            *extra,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results: dict[str, Any] = json.loads(output.read_text())
    return results


def test_transport_quick_run_against_nginx(tmp_path: Path) -> None:
    results = run_quick(
        "transport.py",
        tmp_path / "transport.json",
        *("--servers", "nginx", "--n", "20", "--concurrency", "4"),
    )

    assert results["benchmark"] == "transport"
    clients = {row["client"] for row in results["servers"]["nginx"]["rows"]}
    assert clients == set(results["reads"])
    assert clients == {
        "lume-sdk",
        "lume-sdk (status)",
        "aiohttp",
        "aiohttp+orjson",
        "httpx",
        "requests",
    }
    assert results["servers"]["nginx"]["body_bytes"] > 1000
    assert results["machine"]["cpus"] >= 1


def test_sync_overhead_quick_run(tmp_path: Path) -> None:
    results = run_quick(
        "sync_overhead.py",
        tmp_path / "sync_overhead.json",
        *("--calls", "30", "--get-calls", "20", "--create-n", "30"),
    )

    assert results["benchmark"] == "sync_overhead"
    assert results["skipped"] == {}
    sections = results["sections"]
    assert set(sections) == {"noop", "get", "create_many"}
    assert len(sections["get"]) in (4, 6)  # 6: the facade and the direct await on uvloop too
    assert {row["path"] for row in sections["create_many"]} == {
        "await AsyncLume.runs.create_many",
        "Lume(...).runs.create_many (sync facade)",
    }
    assert "create_many: sync/async runs/s" in results["acceptance"]
    floor = "noop: two threads waking each other, p50 (us): the floor of any hand-off"
    assert results["acceptance"][floor]["value"] > 0
    assert "noop: lume_sync p50 over the floor (us)" in results["acceptance"]


def test_rows_quick_run(tmp_path: Path) -> None:
    results = run_quick(
        "rows.py", tmp_path / "rows.json", *("--rows", "200", "--inline", "100", "--creates", "1")
    )

    assert results["benchmark"] == "rows"
    iterate, create = results["sections"]["iterate"], results["sections"]["create"]
    paths = {(row["listing"], row["path"]) for row in iterate["rows"]}
    assert ("results", "sync") in paths
    assert ("rejects", "async") in paths
    assert {row["items"] for row in iterate["rows"]} == {200}
    assert "sync/async time, 200 results, asyncio loop" in results["acceptance"]
    assert {row["client"] for row in create["rows"]} == {"lume-sdk", "aiohttp + orjson"}
    assert "create CPU, 100 inline rows (no nulls), SDK/raw" in results["acceptance"]


def test_scale_quick_run(tmp_path: Path) -> None:
    results = run_quick(
        "scale.py",
        tmp_path / "scale.json",
        *("--n", "200", "--base", "100", "--min-duration", "0.2"),
    )

    assert results["benchmark"] == "scale"
    loops = results["loops"]
    assert loops[0] == "asyncio"  # and uvloop too, where the speed extra is installed
    assert [row["loop"] for row in results["rows"]] == loops
    for row in results["rows"]:
        assert row["n"] == 200
        assert row["succeeded"] == 200
        assert row["cpu_ms_per_run"] > 0
        assert row["polls_per_run"] >= 1  # every run was asked about
        assert row["poll_interval_s"] == round(row["duration_s"] / results["polls"], 2)
        assert f"N=200 {row['loop']}: KB per waiting run" in results["acceptance"]
        assert results["baseline"][row["loop"]]["n"] == 100


def test_create_floor_quick_run(tmp_path: Path) -> None:
    results = run_quick("create_floor.py", tmp_path / "create_floor.json", "--n", "100")

    assert results["benchmark"] == "create_floor"
    assert set(results["clients"]) == {
        "lume-sdk",
        "lume-sdk, one each",
        "aiohttp+orjson",
        "bare protocol",
    }
    for client, rounds in results["rounds_measured"].items():
        assert [row["n"] for row in rounds] == [100], client
        assert results["clients"][client]["cpu_us"] > 0


def test_poller_quick_run(tmp_path: Path) -> None:
    results = run_quick("poller.py", tmp_path / "poller.json")

    assert results["benchmark"] == "poller"
    assert results["n"] == 300
    assert results["best"]["polls_per_run"] == 8  # every run asked about at every sweep
    assert results["best"]["create_us_per_run"] > 0
    assert results["best"]["create_requests_per_run"] == 8 / 300  # eight batches in flight
    assert results["best"]["wait_us_per_run"] > 0
    assert results["best"]["wait_every_us_per_run"] > 0
