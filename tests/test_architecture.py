"""The shape of the packages, read from their source with ``ast``.

- The client (``lume_async`` without its emulator and its command line) imports neither the
  emulator, nor the command line, nor ``lume_sync``, nor the Airflow provider: they sit above it.
- No import cycles among the modules: no chain of imports run when a module is loaded leads back
  to it. Imports under ``if TYPE_CHECKING:`` are for annotations only and do not count; the
  client defers no import into a function either, so its graph below is the whole story.
- Modules are a comfortable read: none past ``MAX_LINES``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lume_async", "lume_sync", "lume_airflow", "lume_pytest")
ABOVE_THE_CLIENT = (
    "lume_async.testing",
    "lume_async._cli",
    "lume_async.__main__",
    "lume_sync",
    "lume_airflow",
    "lume_pytest",
)
MAX_LINES = 450


@attrs.frozen
class Import:
    source: str
    target: str
    line: int
    typing_only: bool  # under ``if TYPE_CHECKING:``
    deferred: bool  # inside a function: runs when it is called, not when the module loads


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache  # the sources do not change while the suite runs: read once, by every test here
def source_files() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[_module_name(path)] = path
    return files


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _walk(
    node: ast.AST, typing_only: bool = False, deferred: bool = False
) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node under ``node``: under ``if TYPE_CHECKING:``? inside a function?"""
    for child in ast.iter_child_nodes(node):
        inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, typing_only, deferred
            for stmt in child.body:
                yield stmt, True, deferred
                yield from _walk(stmt, True, deferred)
            for stmt in child.orelse:
                yield stmt, typing_only, deferred
                yield from _walk(stmt, typing_only, deferred)
            continue
        yield child, typing_only, deferred
        yield from _walk(child, typing_only, inner)


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """The imports of one module that point into the packages, resolved to module names."""
    tree = parsed(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node, typing_only, deferred in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.append(submodule if submodule in known else module)
        for target in targets:
            if _within(target, PACKAGES):
                line = getattr(node, "lineno", 0)
                found.append(Import(name, target, line, typing_only, deferred))
    return found


@cache
def import_graph() -> tuple[Import, ...]:
    files = source_files()
    known = set(files)
    return tuple(imp for name, path in files.items() for imp in imports_of(name, path, known))


def test_the_packages_are_found() -> None:
    names = set(source_files())
    assert {"lume_async._client", "lume_async.models", "lume_sync._client"} <= names
    assert any(name.startswith("lume_async.testing.") for name in names)


def test_the_client_imports_nothing_that_sits_above_it() -> None:
    offending = [
        f"{imp.source} imports {imp.target} (line {imp.line})"
        for imp in import_graph()
        if _is_client(imp.source) and _within(imp.target, ABOVE_THE_CLIENT)
    ]
    assert offending == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _is_client(name: str) -> bool:
    return name.startswith("lume_async") and not _within(name, ABOVE_THE_CLIENT)


def test_no_import_cycles_among_the_modules() -> None:
    edges: dict[str, set[str]] = {}
    for imp in import_graph():
        if not imp.typing_only and not imp.deferred:
            edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_the_client_defers_no_import_into_a_function() -> None:
    deferred = [
        f"{imp.source} imports {imp.target} inside a function (line {imp.line})"
        for imp in import_graph()
        if imp.deferred and _is_client(imp.source)
    ]
    assert deferred == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(source_files()))
def test_no_module_is_longer_than_a_comfortable_read(name: str) -> None:
    lines = source_files()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by noun"


@pytest.mark.parametrize("name", sorted(source_files()))
def test_every_module_says_what_it_owns_in_its_first_line(name: str) -> None:
    docstring = ast.get_docstring(parsed(source_files()[name]))
    assert docstring, f"{name} has no module docstring"
    assert docstring.splitlines()[0].strip(), f"{name}'s docstring starts with a blank line"
