"""DAGs built by the tests of this process, served to Airflow's DAG parser (see conftest)."""

from __future__ import annotations

from typing import Any

__all__ = ["DAGS"]

DAGS: dict[str, Any] = {}
