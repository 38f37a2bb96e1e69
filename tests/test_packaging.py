"""What the package says about itself is true: its floors, its Python, its licence, its docs."""

from __future__ import annotations

import builtins
import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import lume_async
from lume_async import _exceptions

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floors = load_script("floors")


# -- dependency floors ----------------------------------------------------------------------------


def test_every_runtime_dependency_has_a_floor_the_script_pins() -> None:
    pinned = floors.floors(PYPROJECT, ["cli"])
    declared = (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["cli"]
    )
    assert sorted(pinned) == sorted(re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in declared)
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: name a release, X.Y.Z"


def test_the_floors_script_prints_pip_constraints(capsys: pytest.CaptureFixture[str]) -> None:
    assert floors.main(["--extra", "cli"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "cattrs==25.2.0" in lines
    assert all(re.fullmatch(r"[a-z0-9._-]+==[0-9.]+", line) for line in lines)


@pytest.mark.parametrize(
    "requirement", ["aiohttp", "aiohttp<4", "aiohttp==3.14.0", "aiohttp~=3.14"]
)
def test_a_requirement_without_a_floor_stops_the_script(requirement: str) -> None:
    project = {"project": {"name": "x", "dependencies": [requirement]}}
    with pytest.raises(SystemExit, match="is not of the form 'name>=version'"):
        floors.floors(project)


def test_an_unknown_extra_stops_the_script() -> None:
    with pytest.raises(SystemExit, match="no extra named 'nope'"):
        floors.floors(PYPROJECT, ["nope"])


def test_ci_runs_the_tests_on_the_floors() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/floors.py --extra cli" in ci
    assert re.search(r"pip install .*-c .*floors", ci)


def test_the_installed_versions_meet_the_floors() -> None:
    from packaging.version import Version

    for name, floor in floors.floors(PYPROJECT, ["cli"]).items():
        assert Version(importlib.metadata.version(name)) >= Version(floor), name


# -- python, licence, changelog -------------------------------------------------------------------


def test_older_pythons_are_refused_by_the_metadata() -> None:
    metadata = importlib.metadata.metadata("lume-sdk")
    assert metadata["Requires-Python"] == ">=3.11"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_the_licence_is_the_apache_license_in_full() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 150


def test_the_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "Keep a Changelog" in text
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert sections and sections[0] == "Unreleased"
    for kind in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert kind in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_readme_shows_how_to_install_before_anything_else() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    assert "pip install lume-sdk" in first_block
    assert "python3 -m venv" in first_block
    assert "'lume-sdk[cli]'" in first_block
    assert "Python 3.11 or newer" in README.split("```sh", 1)[0]


# -- the error tree in the README and in the docstring --------------------------------------------

_NAME = re.compile(r"\b([A-Z][A-Za-z]*Error)\b")
_BLANK_PARENS = re.compile(r"\([^)]*\)")


def parse_tree(text: str) -> tuple[dict[str, str | None], dict[str, str]]:
    """``{class: parent}`` and ``{class: the text after its name}`` from a drawn tree.

    A name first on its line is a child of the nearest name above it that starts in an earlier
    column; names further along a line (``├─ A  └─ B``) are children of the line's first name.
    Text in parentheses is a note, not a class.
    """
    parents: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    drawn: list[tuple[int, str]] = []  # (column, name), in reading order
    for line in text.splitlines():
        masked = _BLANK_PARENS.sub(lambda m: " " * len(m.group()), line)
        matches = list(_NAME.finditer(masked))
        for i, match in enumerate(matches):
            column, name = match.start(), match.group(1)
            if i == 0:
                parents[name] = next((n for c, n in reversed(drawn) if c < column), None)
            else:
                parents[name] = matches[0].group(1)
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            notes[name] = line[match.end() : end].strip(" ├└─│")
            drawn.append((column, name))
    return parents, notes


def readme_tree() -> str:
    section = README.split("## Errors and retries", 1)[1]
    return section.split("```text\n", 1)[1].split("```", 1)[0]


def docstring_tree() -> str:
    doc = _exceptions.__doc__ or ""
    return doc.split("::", 1)[1].split("\n\n", 2)[1]


def lume_errors() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(lume_async).items()
        if isinstance(value, type) and issubclass(value, lume_async.LumeError)
    }


@pytest.mark.parametrize("where", ["README", "docstring"])
def test_the_drawn_error_tree_is_the_class_hierarchy(where: str) -> None:
    parents, _ = parse_tree(readme_tree() if where == "README" else docstring_tree())
    errors = lume_errors()
    assert set(parents) == set(errors)
    for name, parent in parents.items():
        bases = [
            base.__name__
            for base in errors[name].__bases__
            if issubclass(base, lume_async.LumeError)
        ]
        assert bases == ([parent] if parent else []), f"{name}: drawn under {parent}, is a {bases}"


@pytest.mark.parametrize("where", ["README", "docstring"])
def test_the_notes_in_the_tree_are_true(where: str) -> None:
    _, notes = parse_tree(readme_tree() if where == "README" else docstring_tree())
    errors = lume_errors()
    for name, note in notes.items():
        cls = errors[name]
        for also in re.findall(r"also a (\w+)", note):
            assert issubclass(cls, getattr(builtins, also)), f"{name} is not a {also}"
        fields = re.findall(r"\(([a-z_]+)\)", note)
        listed = note if re.fullmatch(r"[a-z_]+(, [a-z_]+)*", note) else ""
        fields += [f for f in listed.split(", ") if f]
        init_args = {"status_code": 400} if issubclass(cls, lume_async.APIError) else {}
        if issubclass(cls, lume_async.RunFailedError):
            init_args = {"run": None}
        if issubclass(cls, lume_async.ResponseTooLargeError):
            init_args["limit"] = 1
        instance = cls("x", **init_args)
        for field in fields:
            assert hasattr(instance, field), f"{name} has no {field}"


def test_the_tree_parser_finds_parents_across_lines_and_within_one() -> None:
    parents, notes = parse_tree(
        "AError\n ├─ BError      x, y   ├─ FError  └─ GError\n"
        " │   └─ CError   └─ DError (also a ValueError)\n └─ EError\n"
    )
    assert parents == {
        "AError": None,
        "BError": "AError",
        "FError": "BError",
        "GError": "BError",
        "CError": "BError",
        "DError": "CError",
        "EError": "AError",
    }
    assert notes["BError"] == "x, y"
