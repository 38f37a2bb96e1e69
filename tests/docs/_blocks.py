"""The code blocks of Markdown pages, and how each runs: the machinery of the docs' example tests.

A ```python block runs as a pytest module when it defines ``test_*`` functions (async ones
too), else as a script (``python -W error example.py``); both fork from a warm interpreter.
```sh blocks of a page run one after the other in one bash session, as a reader would type
them in one terminal. A block preceded by ``<!-- needs: NAME -->`` needs something this venv
may not have (``airflow``: it runs in the Airflow venv) and is left to the tests of that need;
``<!-- not run: REASON -->`` marks a shell block shown but not run (one that installs packages
or serves until Ctrl-C), with its reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from .._zygote import Zygote

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(
    r"^(?:<!-- (needs|not run): ([^>]+?) -->\n)?```(\w+)[^\n]*\n(.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
HEADING = re.compile(r"^#{1,3} (.+)$", re.MULTILINE)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(path: Path, language: str) -> list[tuple[str, str | None, str, str]]:
    """``(id, marker, marker argument, code)`` of each ``language`` block of a page, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(3) != language:
            continue
        line = text.count("\n", 0, match.start()) + 1
        headings = HEADING.findall(text, 0, match.start())
        section = re.sub(r"\W+", "-", headings[-1].lower()).strip("-") if headings else "top"
        name = path.relative_to(path.parents[1] if path.parent != DOCS else DOCS).with_suffix("")
        block_id = f"{name.as_posix()}-{section}-line{line}"
        found.append((block_id, match.group(1), (match.group(2) or "").strip(), match.group(4)))
    return found


def python_params(paths: list[Path], needs: str | None = None) -> list[Any]:
    """A pytest param per Python block of ``paths`` that needs ``needs`` (None: nothing)."""
    params = []
    for path in paths:
        for block_id, marker, argument, code in blocks(path, "python"):
            wanted = marker == "needs" and argument == needs if needs else marker is None
            if wanted:
                params.append(pytest.param(code, id=block_id))
    return params


def run_python(code: str, tmp_path: Path, zygote: Zygote, *, timeout: float = 45) -> None:
    """Run one Python block as its reader would; fail with its output.

    A script runs as ``python -W error example.py`` in a scratch directory; a pytest module (one
    that defines a test, async or not) as ``python -m pytest -W error test_example.py``, with
    the plugins a user's pytest would load: the two that installing the SDK installs (its own
    and anyio's), loaded by their entry points as autoloading would, and not the suite's own
    (schemathesis, hypothesis, xdist...), which a reader does not have and whose packages
    pytest would rewrite in every run. Both fork from the ``zygote`` (processes that have
    imported what they import, see ``tests/_zygote.py``).
    """
    done: Any
    if re.search(r"^(async )?def test_", code, re.MULTILINE):
        path = tmp_path / "test_example.py"
        path.write_text(code, encoding="utf-8")
        args = ["-q", "-W", "error", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
        plugins = ["-p", "lume_emulator", "-p", "anyio"]
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        done = zygote.pytest([*args, *plugins, str(path)], cwd=tmp_path, env=env, timeout=timeout)
        assert re.search(r"^\d+ passed", done.stdout, re.MULTILINE), f"{done.stdout}\n{done.stderr}"
    else:
        path = tmp_path / "example.py"
        path.write_text(code, encoding="utf-8")
        done = zygote.run(path, timeout=timeout)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
