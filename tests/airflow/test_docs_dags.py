"""The documentation's Airflow DAGs, run as their readers would: ``python the_dag.py``."""

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
from tests.docs._blocks import pages, python_params

DAGS = python_params(pages(), needs="airflow")


def test_the_airflow_guide_has_its_dags() -> None:
    assert len(DAGS) >= 3


@pytest.mark.parametrize("code", DAGS)
def test_a_docs_dag_runs_to_success(airflow_db: None, code: str, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / "docs_dag.py"
    path.write_text(code, encoding="utf-8")
    # Runs end within microseconds here, so the DAGs' poll intervals are never waited out.
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
    assert "state=success" in output, output[-3000:]
    assert "state=failed" not in output, output[-3000:]
    assert stats["runs_created"] >= 1
