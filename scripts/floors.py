"""Pin every dependency of lume-sdk to its declared floor, for the floors CI run.

    python scripts/floors.py [--extra cli ...] > floors.txt
    pip install -c floors.txt -e '.[cli]'

Each requirement of ``[project].dependencies`` (and of the extras named) must be ``name>=X``:
the script prints ``name==X``, so the install gets exactly the oldest versions the project says
it works with, and CI then runs the tests on them. A requirement of any other shape stops it:
a floor nobody tests is a guess.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*$")


def floors(pyproject: dict[str, object], extras: Iterable[str] = ()) -> dict[str, str]:
    """``{name: floor}`` of the runtime dependencies and of ``extras``'s."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    name = project["name"]
    requirements: list[str] = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"floors.py: no extra named {extra!r}")
        requirements += [r for r in optional[extra] if not r.startswith(f"{name}[")]
    found: dict[str, str] = {}
    for requirement in requirements:
        match = _FLOOR.match(requirement.split(";")[0])
        if match is None:
            raise SystemExit(f"floors.py: {requirement!r} is not of the form 'name>=version'")
        found[match.group(1).lower()] = match.group(2)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="an extra to pin too")
    args = parser.parse_args(argv)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package, version in sorted(floors(pyproject, args.extra).items()):
        sys.stdout.write(f"{package}=={version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
