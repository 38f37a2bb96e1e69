"""The run's bytecode, compiled once before its workers start instead of once in each of them.

Each xdist worker imports every test module it collects, and pytest rewrites a test module's
asserts as it imports it: about 6 s of CPU per worker on the 2-core CI machine, four workers a
run. Every Python process the tests start (scripts, fork servers, the CLI) compiles the
project's modules again too. Python and pytest cache both in ``__pycache__`` directories, but
a fresh checkout has none, and with ``PYTHONDONTWRITEBYTECODE`` set (as on CI) none are written:
each process pays again, for the whole run. Reading a cache is allowed either way.

So the process that starts the run writes those caches first, for the project's packages and
for the tests it was asked to run, and only where they are missing or out of date: the workers
and every process after them read them. The caches are what a run without
``PYTHONDONTWRITEBYTECODE`` would leave behind, and git ignores them.

pytest has no public call to rewrite a module without importing it (importing would run each
test module's own set-up in this process); the two private functions it uses for that have
kept their names and pairing across releases. Should they change, nothing is warmed and the
workers rewrite for themselves, as they would without this module.
"""

from __future__ import annotations

import compileall
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from _pytest.assertion import rewrite as rewriter

__all__ = ["warm"]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lume_async", "lume_sync", "lume_pytest", "lume_airflow")
# What pytest rewrites (python_files and conftest.py) it caches under its own name; the rest of
# tests/ (helper modules, fork servers) imports as usual. tests/typing is for mypy only.
REWRITTEN = re.compile(r"(^|/)(test_[^/]*|conftest)\.py$")
MYPY_ONLY = re.compile(r"/tests/typing/")
NOT_COMPILED = re.compile(f"{REWRITTEN.pattern}|{MYPY_ONLY.pattern}")


def warm(config: pytest.Config) -> None:
    """Write the bytecode caches the run's processes will read (see the module docstring)."""
    for package in PACKAGES:
        compile_tree(ROOT / package)
    compile_tree(ROOT / "tests", skip=NOT_COMPILED)
    rewrite(config, test_modules(config))


def compile_tree(path: Path, skip: re.Pattern[str] | None = None) -> None:
    if path.is_dir():
        compileall.compile_dir(path, quiet=2, rx=skip)


def test_modules(config: pytest.Config) -> Iterator[Path]:
    """The test modules (and their conftest.py files) under the paths the run was given."""
    tests = ROOT / "tests"
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
        if not path.is_relative_to(tests):
            continue
        candidates = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        parents = [p / "conftest.py" for p in path.parents if p.is_relative_to(tests)]
        for module in [*candidates, *parents]:
            text = module.as_posix()
            if module.is_file() and REWRITTEN.search(text) and not MYPY_ONLY.search(text):
                yield module


def rewrite(config: pytest.Config, modules: Iterable[Path]) -> None:
    try:
        state = config.stash[rewriter.assertstate_key]  # absent under --assert=plain
        cache_dir, tail, read, compile_module, write = (
            rewriter.get_cache_dir,
            rewriter.PYC_TAIL,
            rewriter._read_pyc,
            rewriter._rewrite_test,
            rewriter._write_pyc,
        )
    except (AttributeError, KeyError):
        return
    stale = []
    for module in dict.fromkeys(modules):
        pyc = cache_dir(module) / (module.name[:-3] + tail)
        if read(module, pyc) is None:
            stale.append((module, pyc))

    def rewrite_each(todo: list[tuple[Path, Path]]) -> None:
        for module, pyc in todo:
            try:
                pyc.parent.mkdir(exist_ok=True)
                source_key, code = compile_module(module, config)
            except (OSError, SyntaxError):
                continue  # pytest reports it when it collects the module
            write(state, code, source_key, pyc)

    # Two processes share the work, as the CI machine has two CPUs (and only before any thread
    # starts: a fork copies the forking thread alone).
    child = 0
    if len(stale) > 8 and hasattr(os, "fork") and threading.active_count() == 1:
        child = os.fork()
        if child == 0:
            try:
                rewrite_each(stale[1::2])
            finally:
                os._exit(0)
        stale = stale[::2]
    rewrite_each(stale)
    if child:
        os.waitpid(child, 0)
