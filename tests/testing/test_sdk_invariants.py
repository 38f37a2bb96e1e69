"""The emulator's invariants, read through the SDK, over random sources, outcomes and cancels.

For any run, once it has ended: mapped + rejected = input; the rejects the SDK pages through are
as many as reported, and so are the results; error_rate is tests_failed / tests_executed; no
timestamp is later than the client's clock; metadata.run.status is the run's status; the
metadata reads the same through its mapping view as through its typed attributes; inline rows
read back as sent; and following the log gives the same entries as reading it afterwards.
The client and the emulator share a virtual clock: nothing sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, AsyncRun, RunStatus
from lume_async.testing import Emulator, VirtualClock

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOWS = ("customer_cleaner:v1", "customer_cleaner:v2", "invoice_mapper:v1")
_paths = itertools.count()

field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 300),
    st.text(max_size=8),
    st.sampled_from(["ada@example.com", "  Ada  ", "2024-02-03", "US", "eur", "1.5", "2024-13-01"]),
)
records = st.dictionaries(
    st.sampled_from(
        [
            *("name", "email", "age", "signup_date", "country"),
            *("invoice_id", "amount", "currency", "issued_at", "extra"),
        ]
    ),
    field_values,
    max_size=7,
)
synthetic = st.builds(
    lambda rows, rate, outcome, duration: "synthetic://sdk{}?{}".format(
        next(_paths),
        urlencode(
            {"rows": rows, "reject_rate": rate, "duration": duration}
            | ({"outcome": outcome} if outcome else {})
        ),
    ),
    st.integers(0, 300),
    st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
    st.sampled_from([None, None, "FAILED", "CRASHED"]),
    st.sampled_from([0.5, 2.0, 600.0]),
)
sources = st.one_of(
    synthetic.map(lambda path: {"source_path": path}),
    st.lists(records, max_size=30).map(lambda rows: {"source_data": rows}),
)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def lume(clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as client,
    ):
        yield client


def _through_mapping(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _through_mapping(value[key]) for key in value}
    if isinstance(value, tuple):
        return tuple(_through_mapping(item) for item in value)
    return value


def _through_attributes(value: Any) -> Any:
    """The typed attributes by their public names (a field's alias: RunMetadata keeps its
    sections in private fields, read through properties)."""
    if attrs.has(type(value)):
        return {
            field.alias: _through_attributes(getattr(value, field.alias))
            for field in attrs.fields(type(value))
            if field.alias != "sections"
        }
    if isinstance(value, tuple):
        return tuple(_through_attributes(item) for item in value)
    return value


def _timestamps(run: AsyncRun) -> list[datetime]:
    md = run.metadata
    assert md is not None and md.run is not None and md.pipeline is not None
    stamps = [run.created_at, run.updated_at, md.pipeline.created_at, md.pipeline.completed_at]
    stamps += [md.run.started_at, md.run.finished_at]
    return [s for s in stamps if s is not None]


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flow=st.sampled_from(FLOWS),
    source=sources,
    cancel_after=st.none() | st.floats(0, 700),
)
async def test_every_run_read_through_the_sdk_tells_the_truth(
    lume: AsyncLume,
    clock: VirtualClock,
    flow: str,
    source: dict[str, Any],
    cancel_after: float | None,
) -> None:
    run = await lume.run(flow, **source)
    if cancel_after is not None:
        await clock.sleep(cancel_after)
        await run.cancel()
    followed = await run.logs(follow=True, poll_interval=3).collect()
    assert run.is_terminal
    md = run.metadata
    assert md is not None and md.results is not None and md.validation is not None

    now = datetime.fromtimestamp(clock.time(), UTC)
    assert all(run.created_at <= stamp <= now for stamp in _timestamps(run))
    assert md["run"]["status"] == run.status
    assert _through_mapping(md) == _through_attributes(md)

    results = md["results"]
    assert results["mapped_rows"] + results["rejected_rows"] == results["input_rows"]
    rejects = await run.rejects(page_size=37).collect()
    assert len(rejects) == results["rejected_rows"]
    assert len(await run.results(page_size=41).collect()) == results["mapped_rows"]

    validation = md["validation"]
    executed, failed = validation["tests_executed"], validation["tests_failed"]
    assert validation["error_rate"] == (failed / executed if executed else 0.0)
    if run.status in (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELED):
        assert results["mapped_rows"] == 0
    if run.status is RunStatus.FAILED and results["rejected_rows"]:
        assert results["rejected_rows"] == results["input_rows"]  # every row was rejected

    if "source_data" in source:
        assert await run.input(page_size=7).collect() == source["source_data"]
    whole = await run.logs().collect()
    assert [(e.time, e.code) for e in followed] == [(e.time, e.code) for e in whole]
