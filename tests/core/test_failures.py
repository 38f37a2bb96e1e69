"""What a failed run tells the caller: the error, the row counts, the reasons, the rejected rows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, RunFailedError, RunStatus

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
BAD_ROWS = [
    {"name": "", "email": "nope", "age": "old"},
    {"name": "Al", "email": "al.example.com", "age": 30},
    {"name": "Bea", "email": "bea@x.io", "age": 400},
]


async def test_process_of_an_all_rejected_run_raises_with_its_rejects(vlume: AsyncLume) -> None:
    with pytest.raises(RunFailedError) as caught:
        await vlume.process(FLOW, source_data=BAD_ROWS)
    error = caught.value
    assert error.run.status is RunStatus.FAILED
    assert [r.index for r in error.rejects] == [0, 1, 2]
    assert [r.source_record for r in error.rejects] == BAD_ROWS
    assert all(r.errors for r in error.rejects)
    results = error.run.metadata.results
    assert (results.input_rows, results.mapped_rows, results.rejected_rows) == (3, 0, 3)


async def test_the_error_message_names_counts_and_top_errors(vlume: AsyncLume) -> None:
    with pytest.raises(RunFailedError) as caught:
        await vlume.process(FLOW, source_data=BAD_ROWS)
    message = str(caught.value)
    assert caught.value.run.id in message
    assert "FAILED" in message
    assert "3 of 3 rows rejected" in message
    for top in caught.value.run.metadata.validation.top_errors:
        assert top.error_code in message


async def test_raise_for_status_of_an_all_rejected_run_carries_no_rows_but_the_counts(
    vlume: AsyncLume,
) -> None:
    run = await (await vlume.run(FLOW, source_data=BAD_ROWS)).wait()
    with pytest.raises(RunFailedError, match="3 of 3 rows rejected") as caught:
        run.raise_for_status()
    assert caught.value.run is run
    assert caught.value.rejects == []


@pytest.mark.parametrize("outcome", ["FAILED", "CRASHED"])
async def test_a_run_that_wrote_nothing_raises_with_no_rejects(
    vlume: AsyncLume, outcome: str
) -> None:
    path = f"synthetic://nothing-{outcome}?rows=50&reject_rate=0.5&outcome={outcome}"
    with pytest.raises(RunFailedError, match=outcome) as caught:
        await vlume.process(FLOW, path)
    assert caught.value.rejects == []
    assert caught.value.run.error is not None
    assert caught.value.run.error.code in str(caught.value)
    assert "rows rejected" not in str(caught.value)


rows = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["", "  ", "Ann", None]),
            "email": st.sampled_from(["x", "a@b.c", None]),
            "age": st.sampled_from([-1, 30, 999, "old", None]),
        },
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(source=rows)
async def test_process_either_returns_every_row_or_raises_with_every_reject(
    vlume: AsyncLume, source: list[dict[str, Any]]
) -> None:
    failure: RunFailedError | None = None
    try:
        result = await vlume.process(FLOW, source_data=source)
    except RunFailedError as exc:
        failure = exc
    if failure is not None:
        assert failure.run.status is RunStatus.FAILED
        assert sorted(r.index for r in failure.rejects) == list(range(len(source)))
    else:
        assert len(result.rows) + len(result.rejects) == len(source)
        assert result.run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL_FAILED)
