"""Importing the SDK changes nothing it did not define: no module or class is patched at import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lume_async", "lume_sync", "lume_pytest")

# Run in a fresh interpreter: the models (and what they import) first, then everything else, with
# a fingerprint of every loaded SDK module and of the classes it defines taken after each step.
SNAPSHOT = r"""
import importlib, json, sys

def fingerprint():
    found = {}
    for name, module in sorted(sys.modules.items()):
        if not name.startswith(("lume_async", "lume_sync")) or module is None:
            continue
        for attr, value in vars(module).items():
            found[f"{name}:{attr}"] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for key, member in vars(value).items():
                    found[f"{name}:{attr}.{key}"] = id(member)
    return found

importlib.import_module("lume_async.models")
before = fingerprint()
for name in sys.argv[1:]:
    importlib.import_module(name)
after = fingerprint()
changed = sorted(key for key in before if after.get(key) != before[key])
print(json.dumps({"checked": len(before), "changed": changed}))
"""

LATER = ["lume_async", "lume_sync", "lume_async.testing", "lume_async._cli", "lume_async.webhooks"]


def test_importing_the_rest_of_the_sdk_changes_nothing_in_the_models() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SNAPSHOT, *LATER],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    report = json.loads(out.stdout)

    assert report["checked"] > 100  # the models' modules and their classes' members were seen
    assert report["changed"] == []


def _top_level_patches(path: Path) -> list[str]:
    """Module-level statements that assign to an attribute, or call setattr/delattr."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        found += [f"{path.name}:{node.lineno}" for t in targets if isinstance(t, ast.Attribute)]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id in ("setattr", "delattr"):
                found.append(f"{path.name}:{node.lineno}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_assigns_attributes_of_other_objects_when_imported(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))

    assert files
    assert [hit for path in files for hit in _top_level_patches(path)] == []


@pytest.mark.parametrize(
    "source",
    ["import models\nmodels.RunData.__init__ = None\n", "setattr(models, 'x', 1)\n"],
)
def test_the_patch_check_finds_a_patch(tmp_path: Path, source: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(source)

    assert _top_level_patches(sample) != []
