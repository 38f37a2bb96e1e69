"""A Ctrl-C that lands as a blocking call is entered leaves no coroutine never awaited.

The interrupt is raised at the start of any Python function the main thread enters. A coroutine
made by the caller and handed to ``run()`` would be dropped unawaited (and warn) by one landing
on ``run()``'s first instruction; so the facade hands over a function that makes the coroutine,
and the call makes it where it is looked after.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any

import pytest

import lume_sync
from lume_sync import _loop, _loop_thread

pytestmark = pytest.mark.timeout(30)

SYNC = Path(lume_sync.__file__).parent


def test_every_generated_member_hands_over_a_function_that_makes_its_coroutine() -> None:
    handed: list[str] = []
    for path in SYNC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run"
                and ast.unparse(node.func.value) == "self._bridge"
            ):
                handed.append(f"{path.name}: {ast.unparse(node.args[0])[:60]}")
    assert len(handed) > 20
    assert [h for h in handed if ": lambda: self._async." not in h] == []


class Interrupted(Exception):
    """Stands for the KeyboardInterrupt a Ctrl-C raises."""


@pytest.mark.parametrize("where", ["refused", "submit"])
def test_a_call_interrupted_after_making_its_coroutine_closes_it(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    made: list[Any] = []

    async def work() -> None:
        raise AssertionError("never runs")

    def make() -> Any:
        made.append(work())
        return made[-1]

    def interrupt(*_: object) -> None:
        raise Interrupted

    _loop.run(lambda: _settled())  # the loop is up
    if where == "refused":
        monkeypatch.setattr(_loop_thread, "Call", interrupt)
    else:
        monkeypatch.setattr(_loop_thread.LoopThread, "_submit", interrupt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Interrupted):
            _loop.run(make)
    monkeypatch.undo()
    assert _loop.run(_settled) is None
    (coro,) = made
    assert coro.cr_frame is None  # closed, never to warn about being never awaited


async def _settled() -> None:
    return None
