"""benchmarks/airflow_triggers.py runs end to end in its quick mode and writes its results.

Only that it works is checked: its figures depend on the machine and are for people to read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("airflow")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_trigger_benchmark_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "airflow_triggers.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "airflow_triggers.py"),
            "--quick",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=85,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["benchmark"] == "airflow_triggers"
    assert [row["pattern"] for row in results["rows"]] == ["shared", "per_client"]
    assert all(row["statuses"] == {"SUCCEEDED": 100} for row in results["rows"])
    assert set(results["acceptance"]) == {
        "requests_per_run_sweep",
        "lag_p95_intervals",
        "longest_callback_without_gc_ms",
    }
