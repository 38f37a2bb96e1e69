"""The goals plot reads every bounded goal of the results files and draws them as SVG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "goals_plot.py"

pytestmark = pytest.mark.timeout(120)

RESULTS = {
    "machine": {"cpus": 2, "cpu_model": "test CPU", "python": "CPython 3.11"},
    "acceptance": {
        "met, upper bound": {"value": 18.0, "goal": "<= 25", "pass": True},
        "missed, upper bound": {"value": 53.0, "goal": "<= 40", "pass": False},
        "met, lower bound": {"ratio": 1.2, "goal": ">= 0.95x", "verdict": "PASS"},
        "missed, lower bound": {"ratio": 0.8, "goal": ">= 0.95x", "verdict": "FAIL"},
        "reported only": {"value": 13.0, "goal": None, "pass": None},
        "not measured": {"ratio": None, "goal": ">= 5x", "verdict": "not measured"},
    },
}


def test_every_bounded_measured_goal_is_drawn_and_counted(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    image = tmp_path / "goals.svg"

    done = subprocess.run(
        [sys.executable, str(SCRIPT), f"sync={results}", "--image", str(image)],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "MPLBACKEND": "Agg"},
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "2 of 4 goals met" in done.stdout
    svg = image.read_text()
    for name in ("met, upper bound", "missed, upper bound", "met, lower bound"):
        assert f"sync: {name}" in svg
    assert "reported only" not in svg
    assert "not measured" not in svg


def test_no_results_file_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), f"x={tmp_path / 'missing.json'}"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert done.returncode == 1
    assert "does not exist" in done.stderr
