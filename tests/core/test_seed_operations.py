"""Operations the seeds use that are more than a request: wait by id, rerun, input, flows."""

from __future__ import annotations

from typing import Any

import pytest

from lume_async import (
    AsyncLume,
    AsyncRun,
    FlowVersion,
    InvalidRequestError,
    NotFoundError,
    RunNotFoundError,
    RunStatus,
    RunTimeoutError,
    TargetField,
)
from lume_async.testing import Emulator

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
ROWS: list[dict[str, Any]] = [
    {"name": " Ann ", "email": "ANN@x.io", "age": "41", "signup_date": "2024-02-03"},
    {"name": "", "email": "nope", "age": "old"},
    {"name": "Bo", "email": "bo@x.io", "age": 30, "extra": {"nested": [1, 2]}},
]


# -- runs.wait(run_id) ---------------------------------------------------------------------------


async def test_runs_wait_returns_the_terminal_run_by_id(vlume: AsyncLume) -> None:
    run = await vlume.run(FLOW, "synthetic://wait-by-id?rows=5&duration=300")
    done = await vlume.runs.wait(run.id, timeout=600, poll_interval=10)
    assert isinstance(done, AsyncRun)
    assert done.id == run.id and done.status is RunStatus.SUCCEEDED
    assert done.metadata is not None and done.metadata.results is not None


async def test_runs_wait_times_out_with_the_run(vlume: AsyncLume) -> None:
    run = await vlume.run(FLOW, "synthetic://wait-long?rows=5&duration=3600")
    with pytest.raises(RunTimeoutError) as caught:
        await vlume.runs.wait(run.id, timeout=60, poll_interval=5)
    assert caught.value.run.id == run.id


async def test_runs_wait_on_an_unknown_id_is_run_not_found(vlume: AsyncLume) -> None:
    with pytest.raises(RunNotFoundError):
        await vlume.runs.wait("run_01HY0000000000000000000000")


# -- run.input() ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 2, 100])
async def test_input_reads_back_the_inline_rows_as_given(vlume: AsyncLume, page_size: int) -> None:
    run = await vlume.run(FLOW, source_data=ROWS)
    assert await run.input(page_size=page_size).collect() == ROWS
    assert await vlume.runs.input(run.id).collect() == ROWS


async def test_input_of_a_path_run_is_readable_once_the_source_was_read(
    vlume: AsyncLume, vemu: Emulator
) -> None:
    run = await vlume.run(FLOW, "synthetic://read?rows=7&duration=100")
    with pytest.raises(InvalidRequestError) as caught:
        await run.input().collect()
    assert caught.value.code == "input_not_read"
    vemu.advance(50)
    assert len(await run.input().collect()) == 7


# -- run.rerun() ---------------------------------------------------------------------------------


async def test_rerun_of_a_path_run_is_forced_past_the_duplicate_check(vlume: AsyncLume) -> None:
    first = await vlume.run(
        FLOW, "s3://bucket/rerun", label="nightly", tags=["a", "b"], run_metadata={"k": 1}
    )
    await first.wait()
    again = await first.rerun()
    assert again is not first and again.id != first.id
    assert (again.flow_version, again.source_path) == (first.flow_version, first.source_path)
    assert (again.label, again.tags, again.run_metadata) == ("nightly", ("a", "b"), {"k": 1})
    assert first.status is RunStatus.SUCCEEDED  # the handle rerun from is left as it was


async def test_rerun_of_an_inline_run_sends_the_same_rows(vlume: AsyncLume) -> None:
    first = await (await vlume.run(FLOW, source_data=ROWS, label="inline")).wait()
    again = await (await first.rerun()).wait()
    assert again.id != first.id and again.source_path is None and again.label == "inline"
    assert await again.input().collect() == ROWS
    assert await again.results().collect() == await first.results().collect()


async def test_rerun_of_a_path_still_in_flight_returns_that_run(vlume: AsyncLume) -> None:
    first = await vlume.run(FLOW, "synthetic://busy?rows=5&duration=600")
    again = await first.rerun()
    assert again.id == first.id


# -- flows ---------------------------------------------------------------------------------------


async def test_a_flow_keeps_each_versions_target_schema(vlume: AsyncLume) -> None:
    flow = await vlume.flows.get("customer_cleaner")
    v1, v2 = flow.versions
    assert isinstance(v1, FlowVersion)
    assert list(v1.target_schema) == ["full_name", "email", "age", "signup_date"]
    assert list(v2.target_schema) == [*v1.target_schema, "country"]
    age = v1.target_schema["age"]
    assert age == TargetField(type="integer", source="age", required=True, minimum=0, maximum=150)


async def test_the_mapped_rows_have_the_fields_of_the_target_schema(vlume: AsyncLume) -> None:
    flow = await vlume.flows.get("customer_cleaner")
    result = await vlume.process(FLOW, source_data=ROWS)
    for row in result.rows:
        assert set(row) <= set(flow.version("v1").target_schema)
        required = {n for n, f in flow.version("v1").target_schema.items() if f.required}
        assert required <= set(row)


@pytest.mark.parametrize("name", ["v2", "customer_cleaner:v2"])
async def test_flow_version_finds_a_version_by_name_or_id(vlume: AsyncLume, name: str) -> None:
    flow = await vlume.flows.get("customer_cleaner")
    assert flow.version(name).id == "customer_cleaner:v2"


async def test_flow_version_of_an_unknown_version_is_a_key_error_naming_the_known(
    vlume: AsyncLume,
) -> None:
    flow = await vlume.flows.get("invoice_mapper")
    with pytest.raises(KeyError, match="v1"):
        flow.version("v9")
    with pytest.raises(TypeError, match="version"):
        flow.version(1)  # type: ignore[arg-type]


async def test_a_flow_read_by_a_version_string_is_that_versions_flow(vlume: AsyncLume) -> None:
    assert (await vlume.flows.get("invoice_mapper:v1")).name == "invoice_mapper"
    with pytest.raises(NotFoundError):
        await vlume.flows.get("no_such_flow")


async def test_flows_compare_and_hash_as_values(vlume: AsyncLume) -> None:
    one = await vlume.flows.get("customer_cleaner")
    two = await vlume.flows.get("customer_cleaner")
    assert one == two and hash(one) == hash(two)


# -- results pages -------------------------------------------------------------------------------


async def test_results_page_holds_100_rows_by_default(vlume: AsyncLume) -> None:
    run = await (await vlume.run(FLOW, "synthetic://hundred?rows=250&duration=1")).wait()
    page = await run.results_page()
    assert (page.size, len(page.items), page.pages) == (100, 100, 3)
    by_id = await vlume.runs.results_page(run.id, page=3)
    assert len(by_id.items) == 50
