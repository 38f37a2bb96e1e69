"""A run's state cell: what every handle shows, brought up to date by one method."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lume_async import RunStatus
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._status import behind

from ._scripted import run_json

STATUSES = st.sampled_from([*(s.value for s in RunStatus), "FUTURE_STATUS"])


@given(st.lists(STATUSES, min_size=1, max_size=12))
def test_a_run_cell_never_moves_back_from_a_terminal_status(statuses: list[str]) -> None:
    cell = RunCell(run_from_obj(run_json(status="PENDING")))
    for status in statuses:
        before = cell.data.status
        moved = cell.apply(run_from_obj(run_json(status=status)))
        if behind(RunStatus(status), before):  # from a terminal status, or to an earlier stage
            assert cell.data.status is before
            assert not moved
        else:
            assert cell.data.status == RunStatus(status)
            assert moved == (before != cell.data.status)


def test_failure_statuses_are_terminal_and_exactly_failed_crashed_canceled() -> None:
    failures = {s for s in RunStatus if s.is_failure}
    assert failures == {RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELED}
    assert all(s.is_terminal for s in failures)
    assert not RunStatus("FUTURE_STATUS").is_failure
