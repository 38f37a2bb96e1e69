"""The sync-overhead benchmark runs end to end (no-op, GET against nginx, create_many).

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
SCRIPT = ROOT / "benchmarks" / "sync_overhead.py"


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


def test_quick_run_exits_0_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "sync_overhead.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["benchmark"] == "sync_overhead"
    assert results["skipped"] == {}
    sections = results["sections"]
    assert set(sections) == {"noop", "get", "create_many"}
    assert len(sections["get"]) == 4
    assert {row["path"] for row in sections["create_many"]} == {
        "await AsyncLume.runs.create_many",
        "Lume(...).runs.create_many (sync facade)",
    }
    assert "create_many: sync/async runs/s" in results["acceptance"]
