"""Listing runs as Go SDK users do: filters, the TypeScript statuses, resuming from a marker."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, InvalidRequestError, RunStatus
from lume_async.testing import Emulator, VirtualClock

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
_names = itertools.count()


async def _make_runs(lume: AsyncLume, count: int, *, label: str) -> list[str]:
    ids = []
    for _ in range(count):
        run = await lume.run(FLOW, f"s3://bucket/list-{next(_names)}", label=label)
        ids.append(run.id)
    return ids


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    total=st.integers(0, 25),
    page_size=st.integers(1, 7),
    pages_first=st.integers(1, 5),
    created_meanwhile=st.integers(0, 4),
    descending=st.booleans(),
)
async def test_a_listing_resumed_from_a_saved_cursor_by_a_new_client_goes_on_where_it_stopped(
    vemu: Emulator,
    vlume: AsyncLume,
    clock: VirtualClock,
    total: int,
    page_size: int,
    pages_first: int,
    created_meanwhile: int,
    descending: bool,
) -> None:
    label = f"resume-{next(_names)}"
    made = await _make_runs(vlume, total, label=label)
    seen: list[str] = []
    saved: str | None = None
    finished = True
    async for page in vlume.runs.list(
        label=label, page_size=page_size, descending=descending
    ).pages():
        seen += [run.id for run in page.items]
        saved = page.next_cursor
        if len(seen) >= pages_first * page_size:
            finished = saved is None
            break
    later = await _make_runs(vlume, created_meanwhile, label=label)
    if not finished:
        assert saved is not None
        async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock) as fresh:
            resumed = await fresh.runs.list(cursor=saved, page_size=page_size).collect()
        seen += [run.id for run in resumed]
    # Newest first, the runs made later sort before the cursor; oldest first, they come last.
    expected = list(reversed(made)) if descending else made + later * (not finished)
    assert seen == expected


async def test_a_cursor_given_with_the_same_filters_is_accepted(vlume: AsyncLume) -> None:
    await _make_runs(vlume, 5, label="same")
    first = await anext(vlume.runs.list(label="same", page_size=2).pages())
    assert first.next_cursor is not None
    rest = await vlume.runs.list(label="same", page_size=2, cursor=first.next_cursor).collect()
    assert len(first.items) + len(rest) == 5


async def test_a_cursor_given_with_other_filters_is_refused(vlume: AsyncLume) -> None:
    await _make_runs(vlume, 3, label="mine")
    first = await anext(vlume.runs.list(label="mine", page_size=1).pages())
    assert first.next_cursor is not None
    with pytest.raises(InvalidRequestError) as caught:
        await vlume.runs.list(label="other", cursor=first.next_cursor).collect()
    assert caught.value.code == "cursor_mismatch"


async def test_a_damaged_cursor_is_refused_by_the_service(vlume: AsyncLume) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await vlume.runs.list(cursor="not-a-cursor").collect()
    assert caught.value.status_code == 422


async def test_source_path_filter_lists_the_runs_of_that_path_only(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    path = "s3://bucket/by-path"
    first = await vlume.run(FLOW, path)
    vemu.advance(10)
    second = await vlume.run(FLOW, path, force_rerun=True)
    await vlume.run(FLOW, "s3://bucket/another-path")
    listed = await vlume.runs.list(source_path=path).collect()
    assert [run.id for run in listed] == [second.id, first.id]


@pytest.mark.parametrize(
    ("word", "means"),
    [
        ("RUNNING", {"SYNCING_SOURCE", "TRANSFORMING", "SYNCING_TARGET"}),
        ("INCOMPLETE", {"PARTIAL_FAILED"}),
        (RunStatus.RUNNING, {"SYNCING_SOURCE", "TRANSFORMING", "SYNCING_TARGET"}),
    ],
)
async def test_the_typescript_status_words_filter_as_their_statuses(
    vemu: Emulator, vlume: AsyncLume, word: str, means: set[str]
) -> None:
    # At run time 50, a run of this duration is in the status named.
    durations = {
        "CREATED": 5000,
        "PENDING": 1000,
        "SYNCING_SOURCE": 400,
        "TRANSFORMING": 100,
        "SYNCING_TARGET": 60,
        "SUCCEEDED": 10,
    }
    for status, duration in durations.items():
        await vlume.run(FLOW, f"synthetic://{status}?duration={duration}")
    await vlume.run(FLOW, "synthetic://partial?rows=10&reject_rate=0.5&duration=10")
    vemu.advance(50)
    everything = await vlume.runs.list().collect()
    assert {run.status.value for run in everything} == {*durations, "PARTIAL_FAILED"}
    listed = await vlume.runs.list(status=word).collect()
    assert [run.id for run in listed] == [r.id for r in everything if r.status.value in means]


async def test_order_by_updated_at_is_refused_before_any_request(vemu: Emulator) -> None:
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url) as lume:
        with pytest.raises(ValueError, match="order_by") as caught:
            lume.runs.list(order_by="updated_at")
    assert "updated_at changes while you iterate" in str(caught.value)
    assert vemu.stats()["requests"] == {}
