"""The README's Airflow DAG, run as its readers would: ``python the_dag.py`` (``dag.test()``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from lume_async.testing import Emulator
from tests.airflow.conftest import AIRFLOW_WARNINGS
from tests.test_readme import python_blocks


def test_the_readme_has_an_airflow_dag() -> None:
    [block] = python_blocks("airflow")

    assert "LumeRunOperator.partial(" in block.values[0]
    assert "dag.test()" in block.values[0]


@pytest.mark.parametrize("code", python_blocks("airflow"))
def test_the_readme_dag_runs_to_success(airflow_db: None, code: str, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / "readme_dag.py"
    path.write_text(code, encoding="utf-8")
    # Runs end within microseconds here, so the DAG's 30 s poll interval is never waited out.
    with Emulator(time_scale=1_000_000) as emu:
        env: dict[str, Any] = {
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_LUME_DEFAULT": json.dumps(
                {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
            ),
        }
        warnings = [arg for spec in AIRFLOW_WARNINGS for arg in ("-W", spec)]
        done = subprocess.run(
            [sys.executable, "-W", "error", *warnings, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=80,
            check=False,
        )
        stats = emu.stats()

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "12 batches: 1200 rows mapped, 0 rejected" in output, output[-3000:]
    assert "state=success" in output
    assert stats["runs_created"] == 12
