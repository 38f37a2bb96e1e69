"""Every public name has a docstring that says what it does, and what it raises where it calls out.

Walks ``__all__`` of each package and the public members of every exported class (those it
defines or inherits from this project's own classes): each has a docstring with a summary line.
Model fields are listed in their class's ``Attributes:`` section, and every method that talks to
the service has a ``Raises:`` section. ``lume_airflow`` imports Airflow, which this venv need not
have, so its source is read with ``ast`` instead.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lume_async", "lume_sync", "lume_async.testing", "lume_async.webhooks", "lume_pytest")
#: Classes whose coroutine methods send requests: each says what it raises.
CALLERS = (
    "AsyncLume",
    "AsyncRuns",
    "AsyncRun",
    "AsyncFlows",
    "AsyncWebhookEndpoints",
    "AsyncPaginator",
)
#: Coroutine methods of those classes that send nothing.
SENDS_NOTHING = {"aclose"}


def exported() -> Iterator[tuple[str, str, Any]]:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            if name != "__version__":
                yield package, name, getattr(module, name)


def exported_classes() -> list[Any]:
    seen: dict[int, Any] = {}
    for package, name, obj in exported():
        if inspect.isclass(obj) and id(obj) not in seen:
            seen[id(obj)] = pytest.param(obj, id=f"{package}.{name}")
    return list(seen.values())


def own_members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public functions and properties of ``cls`` and of its bases from this project."""
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith(("lume_async", "lume_sync")):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if isinstance(value, property) or inspect.isfunction(value):
                yield f"{klass.__name__}.{name}", value


def own_doc(obj: Any) -> str:
    doc = obj.fget.__doc__ if isinstance(obj, property) else obj.__doc__
    if inspect.isclass(obj) and "__doc__" not in vars(obj):
        doc = None
    return inspect.cleandoc(doc or "")


def section(doc: str, title: str) -> str:
    """The text of a Google-style section (``Raises:``, ``Attributes:``), or ''."""
    match = re.search(rf"^{title}:\n((?:[ \t]+.*\n?|\n)+)", doc, re.MULTILINE)
    return match.group(1) if match else ""


@pytest.mark.parametrize(("package", "name", "obj"), list(exported()))
def test_every_exported_name_has_a_summary_line(package: str, name: str, obj: Any) -> None:
    obj = inspect.unwrap(obj)  # a pytest fixture: the function it wraps
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        pytest.fail(f"{package}.{name} is neither a class nor a function: document it by hand")
    doc = own_doc(obj)
    assert doc.splitlines() and doc.splitlines()[0].strip(), f"{package}.{name} has no docstring"


@pytest.mark.parametrize("cls", exported_classes())
def test_every_public_member_of_an_exported_class_has_a_docstring(cls: type) -> None:
    missing = [name for name, member in own_members(cls) if not own_doc(member)]
    assert missing == []


@pytest.mark.parametrize("cls", [c for c in exported_classes() if attrs.has(c.values[0])])
def test_every_field_of_an_exported_model_is_described(cls: type) -> None:
    described = section(own_doc(cls), "Attributes")
    fields = [f.alias or f.name for f in attrs.fields(cls) if not f.name.startswith("_")]
    fields += [name.split(".")[1] for name, m in own_members(cls) if isinstance(m, property)]
    undescribed = [
        name
        for name in fields
        if not re.search(rf"^\s+{name}(\s*\(.*\))?:", described, re.MULTILINE)
        and not own_doc(getattr(cls, name, None) or (lambda: None))  # a documented property
    ]
    assert undescribed == []


def service_calls() -> list[Any]:
    import lume_async

    params = []
    for cls_name in CALLERS:
        cls = getattr(lume_async, cls_name)
        for name, member in own_members(cls):
            if name.split(".")[1] in SENDS_NOTHING or isinstance(member, property):
                continue
            if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member):
                params.append(pytest.param(member, id=name))
    return params


@pytest.mark.parametrize("method", service_calls())
def test_every_call_to_the_service_says_what_it_raises(method: Any) -> None:
    raises = section(own_doc(method), "Raises")
    assert re.search(r"^\s+\w+(Error|Exception):", raises, re.MULTILINE), own_doc(method)


def test_the_packages_have_calls_to_the_service() -> None:
    assert len(service_calls()) >= 20


def doctests() -> list[Any]:
    finder = doctest.DocTestFinder(recurse=True)
    found: dict[str, Any] = {}
    for package, name, obj in exported():
        for test in finder.find(obj, f"{package}.{name}"):
            if test.examples and test.name not in found:
                found[test.name] = pytest.param(test, id=test.name)
    return list(found.values())


def test_there_are_docstring_examples() -> None:
    assert len(doctests()) >= 5


@pytest.mark.parametrize("test", doctests())
def test_docstring_example_runs(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=lambda text: None)
    if result.failed:
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=report.append)
        pytest.fail("".join(report))


# -- lume_airflow, read from its source ----------------------------------------------------------


def airflow_classes() -> list[Any]:
    package = ROOT / "lume_airflow"
    init = ast.parse((package / "__init__.py").read_text(encoding="utf-8"))
    names = next(
        ast.literal_eval(node.value)
        for node in init.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
    )
    classes = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name in names:
                classes[node.name] = node
    assert sorted(classes) == sorted(names), "every lume_airflow export is a class of its own"
    return [pytest.param(node, id=f"lume_airflow.{name}") for name, node in classes.items()]


@pytest.mark.parametrize("node", airflow_classes())
def test_every_lume_airflow_class_and_public_method_has_a_docstring(node: ast.ClassDef) -> None:
    assert ast.get_docstring(node), f"{node.name} has no docstring"
    missing = [
        item.name
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
        and not item.name.startswith("_")
        and not ast.get_docstring(item)
    ]
    assert missing == []
