"""The seeds' operations with inputs the other seed tests leave out.

A version string naming a version its flow does not have, runs that last a few milliseconds (or
are cancelled part-way through one), and exports of a listing with no rows: each through the
blocking client (``lume``) and the async one (``alume``), against the emulator.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, NotFoundError
from lume_async.testing import Emulator, VirtualClock
from lume_sync import Lume

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
CLEAN = [{"name": "Cy", "email": "cy@example.com", "age": 29}]
REJECT_FIELDS = ["index", "source_record", "errors"]


def fresh(name: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"rows": 5, **query}.items())
    return f"synthetic://unseen-{name}-{uuid.uuid4().hex}?{params}"


@pytest.fixture(scope="module")
def still_emu() -> Iterator[Emulator]:
    """An emulator whose runs move only when told (``advance()``), never on their own."""
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def still_lume(still_emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=still_emu.api_key, base_url=still_emu.url) as client:
        yield client


# -- flows.get of a version string -----------------------------------------------------------------


async def test_a_version_string_of_a_version_the_flow_lacks_is_not_found_async(
    alume: AsyncLume,
) -> None:
    """Seed 000: ``lume.flowService.getFlow("my-long-flow-id")``, asked with a flow version
    (``name:vN``) that was never published: there is no such version to give."""
    with pytest.raises(NotFoundError, match="v9") as caught:
        await alume.flows.get("customer_cleaner:v9")
    assert caught.value.status_code == 404
    assert "v1" in str(caught.value) and "v2" in str(caught.value)  # the versions it has
    flow = await alume.flows.get("customer_cleaner:v2")  # one it has is still that flow
    assert flow.version("customer_cleaner:v2").version == "v2"


def test_a_version_string_of_a_version_the_flow_lacks_is_not_found(lume: Lume) -> None:
    """The same through the blocking client, with a version number written with a leading zero
    (``v01`` is not ``v1``)."""
    for missing in ("invoice_mapper:v2", "invoice_mapper:v01"):
        with pytest.raises(NotFoundError, match="invoice_mapper"):
            lume.flows.get(missing)
    assert lume.flows.get("invoice_mapper:v1").name == "invoice_mapper"


# -- stage timings against the run's duration ------------------------------------------------


def check_timings(pipeline: Any) -> None:
    """Seed 002, pipeline: "duration_seconds: Total time from created_at to completed_at" and
    "stages: Timings for each individual pipeline stage": the stages fit within the total."""
    stages = [pipeline["stages"][key] for key in pipeline["stages"]]
    assert all(stage is not None and stage >= 0 for stage in stages), stages
    assert sum(stages) <= pipeline["duration_seconds"], (stages, pipeline["duration_seconds"])


@pytest.mark.parametrize(
    "query",
    [
        {"duration": 0.0018, "outcome": "FAILED"},
        {"duration": 0.0017, "outcome": "FAILED"},
        {"duration": 0.0023},
        {"duration": 0.0046, "outcome": "CRASHED"},
    ],
)
async def test_stage_timings_of_a_run_of_milliseconds_fit_in_its_duration_async(
    alume: AsyncLume, query: dict[str, Any]
) -> None:
    run = await (await alume.run(FLOW, fresh("ms", **query))).wait()
    assert run.metadata is not None
    check_timings(run.metadata["pipeline"])


@settings(max_examples=examples(60))
@given(
    duration=st.sampled_from([0.0, 0.001, 0.0015, 0.0018, 0.0049, 0.013]) | st.floats(0, 0.05),
    outcome=st.sampled_from(["", "FAILED", "CRASHED"]),
    cancel=st.none() | st.floats(0, 1.2),
)
def test_stage_timings_fit_in_the_duration_whatever_the_run_and_its_cancel(
    still_lume: Lume, still_emu: Emulator, duration: float, outcome: str, cancel: float | None
) -> None:
    """Any short run, ended on its own or cancelled at any point of it, through the blocking
    client: its stages never add up to more than its duration."""
    run = still_lume.run(FLOW, fresh("any", duration=duration, outcome=outcome))
    if cancel is not None:
        still_emu.advance(duration * cancel)
        run.cancel()
    still_emu.advance(duration * 2 + 1)
    run.refresh()
    assert run.is_terminal and run.metadata is not None
    check_timings(run.metadata["pipeline"])


# -- exports of a listing with no rows -------------------------------------------------------------


async def test_an_empty_rejects_listing_gives_a_table_with_its_columns_async(
    alume: AsyncLume, tmp_path: Path
) -> None:
    """Seed 004, Handling Partial Failures: "send the rejected data to a separate workflow",
    for a run that rejected nothing: the Table has the columns the DataFrame and the CSV have."""
    pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")
    run = await (await alume.run(FLOW, source_data=CLEAN)).wait()
    table = await run.rejects().to_arrow()
    assert (table.num_rows, table.column_names) == (0, REJECT_FIELDS)
    assert list((await run.rejects().to_pandas()).columns) == table.column_names
    await run.rejects().to_csv(tmp_path / "rejects.csv")
    assert (tmp_path / "rejects.csv").read_text().strip().split(",") == table.column_names


def test_an_empty_rejects_listing_gives_a_table_with_its_columns(lume: Lume) -> None:
    """The same through the blocking client, for a path whose rows all map."""
    pytest.importorskip("pyarrow")
    run = lume.run(FLOW, fresh("clean", duration=1)).wait(poll_interval=5)
    assert run.status == "SUCCEEDED"
    table = run.rejects().to_arrow()
    assert (table.num_rows, table.column_names) == (0, REJECT_FIELDS)
    assert table.column("index").to_pylist() == []
