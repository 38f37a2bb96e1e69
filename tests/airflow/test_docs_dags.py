"""The documentation's Airflow DAGs, run as their readers would: ``python the_dag.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("airflow")

from tests.airflow.conftest import run_dag_file
from tests.docs._blocks import pages, python_params

DAGS = python_params(pages(), needs="airflow")


def test_the_airflow_guide_has_its_dags() -> None:
    assert len(DAGS) >= 3


@pytest.mark.parametrize("code", DAGS)
def test_a_docs_dag_runs_to_success(airflow_db: None, code: str, tmp_path: Path) -> None:
    returncode, output, stats = run_dag_file(code, tmp_path, "docs_dag.py")
    assert returncode == 0, output[-3000:]
    assert "state=success" in output, output[-3000:]
    assert "state=failed" not in output, output[-3000:]
    assert stats["runs_created"] >= 1
