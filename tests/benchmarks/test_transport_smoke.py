"""The transport benchmark runs end to end against nginx and writes its results file.

Only that it works is checked: speed depends on the machine and is for people to read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "transport.py"


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


def test_quick_run_against_nginx_exits_0_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "transport.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--servers", "nginx", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["benchmark"] == "transport"
    clients = {row["client"] for row in results["servers"]["nginx"]["rows"]}
    assert clients == {"lume-sdk", "aiohttp", "httpx", "requests"}
