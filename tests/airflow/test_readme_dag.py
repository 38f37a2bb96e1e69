"""The README's Airflow DAG, run as its readers would: ``python the_dag.py`` (``dag.test()``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("airflow")

from tests.airflow.conftest import run_dag_file
from tests.test_readme import python_blocks


def test_the_readme_has_an_airflow_dag() -> None:
    [block] = python_blocks("airflow")

    assert "LumeRunOperator.partial(" in block.values[0]
    assert "dag.test()" in block.values[0]


@pytest.mark.parametrize("code", python_blocks("airflow"))
def test_the_readme_dag_runs_to_success(airflow_db: None, code: str, tmp_path: Path) -> None:
    returncode, output, stats = run_dag_file(code, tmp_path, "readme_dag.py")
    assert returncode == 0, output[-3000:]
    assert "12 batches: 1200 rows mapped, 0 rejected" in output, output[-3000:]
    assert "state=success" in output
    assert stats["runs_created"] == 12
