"""Every ```python block of README.md runs green, as its reader would run it.

A block that defines ``test_*`` functions is a test module and runs under pytest; any other block
runs as a script (``python -W error example.py``; see ``docs/_blocks.run_python``). Each block
starts the emulator it needs, as the README shows readers to.

A block preceded by ``<!-- needs: airflow -->`` is an Airflow DAG: it needs the ``airflow`` extra,
so it runs in that venv, in ``tests/airflow/test_readme_dag.py``, not here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ._zygote import Zygote
from .docs._blocks import run_python

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^(?:<!-- needs: (\w+) -->\n)?```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)


def python_blocks(needs: str | None = None) -> list[Any]:
    """The README's Python blocks that need ``needs`` (None: those that need nothing extra)."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group(1) != needs:
            continue
        line = text.count("\n", 0, match.start()) + 1
        headings = _HEADING.findall(text, 0, match.start())
        section = re.sub(r"\W+", "-", headings[-1].lower()).strip("-") if headings else "top"
        blocks.append(pytest.param(match.group(2), id=f"{section}-line{line}"))
    return blocks


def test_the_readme_has_its_examples() -> None:
    assert len(python_blocks()) >= 8


def test_the_readme_keeps_its_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install -e '.[dev]' && lume demo" in text
    assert "```sh\npython -m pytest\n```" in text


@pytest.mark.parametrize("code", python_blocks())
def test_readme_block_runs(code: str, tmp_path: Path, zygote: Zygote) -> None:
    run_python(code, tmp_path, zygote)
