"""A stand-in for the task instance ``LumeRunOperator.execute`` is handed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

__all__ = ["task_instance"]


def task_instance(dag_id: str, **changes: Any) -> Any:
    """What LumeRunOperator.execute reads of its task instance; ``pushed`` holds its XComs."""
    pushed: dict[str, Any] = {}
    fields: dict[str, Any] = {
        "dag_id": dag_id,
        "task_id": "clean",
        "run_id": "manual__2026-06-01T00:00:00+00:00",
        "map_index": -1,
        "try_number": 1,
        "pushed": pushed,
        "xcom_push": lambda key, value: pushed.__setitem__(key, value),
    }
    return SimpleNamespace(**{**fields, **changes})
