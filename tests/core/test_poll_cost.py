"""What one poll of one run costs the client, by structure: checks, calls and objects per run.

The shared poller asks about every watched run at every sweep, so whatever it does per run and
per poll is paid (polls per run) x (runs) times. These tests count that work, never time it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async._batch_get import RunsAnswer
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._validation import check_batch_ids, check_run_id
from lume_async._watches import Watches
from lume_async.models import RunData

from ._scripted import run_json

VALID_IDS = st.from_regex(r"run_[A-Za-z0-9]{1,60}", fullmatch=True)
NEAR_IDS = st.one_of(
    VALID_IDS,
    VALID_IDS.map(lambda s: s + "\n"),
    VALID_IDS.map(lambda s: "\n" + s),
    VALID_IDS.map(lambda s: s.replace("_", "_\n", 1)),
    VALID_IDS.map(lambda s: s + "x" * 60),
    st.text(max_size=70),
    st.just("run_"),
    st.just(""),
    st.integers(),
    st.none(),
    st.binary(max_size=8),
)


def one_by_one(ids: list[Any]) -> tuple[str, Any]:
    """What checking each id alone says about the batch."""
    try:
        return "ok", [check_run_id(run_id, f"run_ids[{i}]") for i, run_id in enumerate(ids)]
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


@given(st.lists(NEAR_IDS, min_size=1, max_size=100))
def test_a_batch_of_ids_is_refused_exactly_when_one_of_its_ids_is_and_naming_it(
    ids: list[Any],
) -> None:
    try:
        said: tuple[str, Any] = "ok", check_batch_ids(ids, 100)
    except (TypeError, ValueError) as exc:
        said = type(exc).__name__, str(exc)

    assert said == one_by_one(ids)


def test_checked_batch_ids_are_a_new_list_of_the_same_ids() -> None:
    ids = ("run_a", "run_b", "run_a")

    checked = check_batch_ids(ids, 100)

    assert checked == list(ids)
    assert checked.__class__ is list


class CountingCell(RunCell):
    """A cell that counts how often the poller compares an answer with it."""

    __slots__ = ("compared",)

    def __init__(self, data: RunData) -> None:
        super().__init__(data)
        self.compared = 0

    def holds(self, item: dict[str, Any]) -> bool:
        self.compared += 1
        return super().holds(item)


class CountingAnswer(RunsAnswer):
    """An answer that counts its decodes."""

    __slots__ = ("decoded",)

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        super().__init__(items)
        self.decoded = 0

    def decode(self, item: dict[str, Any]) -> RunData:
        self.decoded += 1
        return super().decode(item)


def _itself(cell: RunCell) -> RunCell:
    return cell


@pytest.mark.parametrize("runs", [1, 100])
def test_an_unchanged_answer_costs_one_comparison_per_run_and_no_decode(runs: int) -> None:
    ids = [f"run_{n:026d}" for n in range(runs)]
    cells = [CountingCell(run_from_obj(run_json(run_id, "TRANSFORMING"))) for run_id in ids]
    watches = Watches(on_idle=lambda: None)
    watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
    answer = CountingAnswer({run_id: run_json(run_id, "TRANSFORMING") for run_id in ids})
    missing: list[str] = []

    for _ in range(3):
        assert watches.take(ids, answer, missing) is False

    assert [cell.compared for cell in cells] == [3] * runs
    assert answer.decoded == 0
    assert missing == []


def test_a_moved_run_among_unchanged_ones_is_the_only_one_decoded() -> None:
    ids = [f"run_{n:026d}" for n in range(100)]
    cells = [CountingCell(run_from_obj(run_json(run_id, "TRANSFORMING"))) for run_id in ids]
    watches = Watches(on_idle=lambda: None)
    watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
    items = {run_id: run_json(run_id, "TRANSFORMING") for run_id in ids}
    items[ids[37]] = {**run_json(ids[37], "SYNCING_TARGET"), "updated_at": "2026-01-01T00:00:01Z"}
    answer = CountingAnswer(items)

    assert watches.take(ids, answer, []) is True

    assert answer.decoded == 1
    assert [cell.compared for cell in cells] == [1] * 100  # the moved one too: compared once
    assert [cell.data.status.value for cell in cells].count("SYNCING_TARGET") == 1
    assert cells[37].data.status.value == "SYNCING_TARGET"


class HeldAnswer(RunsAnswer):
    """An answer that keeps the runs it handed to the poller, and records how many of them
    were still there at each decode."""

    __slots__ = ("held", "left")

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        super().__init__(items)
        self.held: dict[str, dict[str, Any]] = {}
        self.left: list[int] = []

    def read(self) -> tuple[dict[str, dict[str, Any]], Any]:
        self.held, unchanged = super().read()
        return self.held, unchanged

    def decode(self, item: dict[str, Any]) -> RunData:
        self.left.append(len(self.held))
        return super().decode(item)


def test_each_parsed_run_of_an_answer_is_let_go_as_it_is_applied() -> None:
    """A cyclic collection in the middle of an answer finds only the runs still to apply alive
    (whatever it finds alive, it promotes, to be walked with every waiting run until it is
    freed)."""
    ids = [f"run_{n:026d}" for n in range(100)]
    cells = [RunCell(run_from_obj(run_json(run_id, "TRANSFORMING"))) for run_id in ids]
    watches = Watches(on_idle=lambda: None)
    watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
    moved = {"updated_at": "2026-01-01T00:00:01Z"}
    answer = HeldAnswer({run_id: {**run_json(run_id, "SYNCING_TARGET"), **moved} for run_id in ids})

    assert watches.take(ids, answer, []) is True

    assert answer.left == list(range(99, -1, -1))
    assert answer.read()[0].keys() == set(ids)  # each reading has runs of its own
