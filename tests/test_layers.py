"""The core packages stand alone: nothing in lume_async or lume_sync imports lume_airflow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_of_lume_async_or_lume_sync_imports_the_airflow_provider() -> None:
    core = [
        path for package in ("lume_async", "lume_sync") for path in (ROOT / package).rglob("*.py")
    ]
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] == "lume_airflow"
        )
        for path in core
    }

    assert len(core) > 30
    assert {path: names for path, names in offenders.items() if names} == {}
