"""The metadata of a run in flight is kept as its own values, and reads back exactly as it came.

A run that moves is decoded at every poll that sees it move, and its metadata packed each time:
metadata shaped exactly as a run in flight's (its run's id, flow version and source path, nulls,
and nine values of its own) is kept as the JSON of those nine values, at a fifth of the cost of
deflating it. Any other shape, however close, is deflated as before; either way a run's metadata
reads back equal to the metadata the answer carried.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async import AsyncLume
from lume_async._converter import run_from_obj
from lume_async._packed_json import pack_in_flight, unpack_in_flight
from lume_async.testing import Emulator

from .test_run_memory import emulator_run

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
HOLES = [
    ("run", "status"),
    ("run", "started_at"),
    ("run", "finished_at"),
    ("pipeline", "created_at"),
    ("pipeline", "completed_at"),
    ("pipeline", "duration_seconds"),
    ("pipeline", "stages", "sync_source_seconds"),
    ("pipeline", "stages", "transform_seconds"),
    ("pipeline", "stages", "sync_target_seconds"),
]


def in_flight(values: list[Any], run_id: str, flow_version: str, path: str | None) -> Any:
    """Metadata of the in-flight shape, as the emulator writes it, with these values."""
    run = emulator_run(1)
    run.update(id=run_id, flow_version=flow_version, source_path=path)
    metadata = run["metadata"]
    metadata["run"].update(run_id=run_id, flow_version=flow_version, source_path=path)
    for where, value in zip(HOLES, values, strict=True):
        section = metadata
        for key in where[:-1]:
            section = section[key]
        section[where[-1]] = value
    return run


values_of_holes = st.lists(json_values, min_size=len(HOLES), max_size=len(HOLES))
run_ids = st.from_regex(r"run_[A-Za-z0-9]{1,30}", fullmatch=True)
flow_versions = st.from_regex(r"[a-z_]{1,12}:v[0-9]{1,3}", fullmatch=True)
paths = st.none() | st.text(max_size=40)


@given(values_of_holes, run_ids, flow_versions, paths)
def test_in_flight_metadata_packs_as_its_values_and_reads_back_equal(
    values: list[Any], run_id: str, flow_version: str, path: str | None
) -> None:
    run = in_flight(values, run_id, flow_version, path)
    metadata = run["metadata"]

    packed = pack_in_flight(metadata, run_id, flow_version, path)

    assert packed is not None
    assert unpack_in_flight(packed, run_id, flow_version, path) == metadata


def perturbations() -> st.SearchStrategy[tuple[str, Any]]:
    """One change that takes metadata out of the in-flight shape."""
    sections = st.sampled_from(["run", "pipeline", "results", "validation"])
    return st.one_of(
        st.tuples(st.just("extra key"), st.tuples(sections, st.text(min_size=1), json_values)),
        st.tuples(
            st.just("value in a null slot"),
            st.tuples(
                st.sampled_from(["input_rows", "mapped_rows", "rejected_rows", "target_locations"]),
                json_values.filter(lambda v: v is not None),
            ),
        ),
        st.tuples(st.just("an error"), json_values),
        st.tuples(st.just("a missing key"), st.sampled_from(HOLES)),
        st.tuples(st.just("another run's id"), run_ids),
        st.tuples(st.just("another source path"), paths),
        st.tuples(st.just("a section that is not an object"), st.tuples(sections, json_leaves)),
        st.tuples(st.just("a top-level key"), st.text(min_size=1)),
    )


def perturb(run: dict[str, Any], change: tuple[str, Any]) -> bool:
    """Apply ``change`` to ``run``'s metadata; False if it happens to change nothing."""
    metadata = run["metadata"]
    kind, arg = change
    before = copy.deepcopy(metadata)
    if kind == "extra key":
        section, key, value = arg
        if key in metadata[section]:
            return False
        metadata[section][key] = value
    elif kind == "value in a null slot":
        key, value = arg
        metadata["results"][key] = value
    elif kind == "an error":
        metadata["errors"].append(arg)
    elif kind == "a missing key":
        section = metadata
        for key in arg[:-1]:
            section = section[key]
        del section[arg[-1]]
    elif kind == "another run's id":
        metadata["run"]["run_id"] = arg
    elif kind == "another source path":
        metadata["run"]["source_path"] = arg
    elif kind == "a section that is not an object":
        section, value = arg
        metadata[section] = value
    else:
        if arg in metadata:
            return False
        metadata[arg] = None
    return metadata != before


@given(values_of_holes, perturbations())
def test_metadata_of_any_other_shape_is_deflated_and_reads_back_equal(
    values: list[Any], change: tuple[str, Any]
) -> None:
    run = in_flight(values, "run_1", "flow:v1", "s3://b/k")
    if not perturb(run, change):
        return
    metadata = run["metadata"]

    assert pack_in_flight(metadata, "run_1", "flow:v1", "s3://b/k") is None
    compact, parsed = run_from_obj(run), run_from_obj(run, compact=False)
    assert compact._metadata_json.__class__.__name__ == "_MetadataJSON"
    assert _read(compact) == _read(parsed)


@given(values_of_holes, run_ids, paths)
def test_a_run_in_flight_reads_the_same_metadata_kept_either_way(
    values: list[Any], run_id: str, path: str | None
) -> None:
    run = in_flight(values, run_id, "customer_cleaner:v1", path)

    compact, parsed = run_from_obj(run), run_from_obj(run, compact=False)

    assert compact._metadata_json.__class__.__name__ == "_InFlightJSON"
    assert _read(compact) == _read(parsed)
    assert compact == parsed


def _read(run: Any) -> Any:
    """A run's metadata, or the class of the error reading it raises."""
    try:
        return run.metadata
    except Exception as exc:
        return type(exc)


@pytest.mark.anyio
async def test_the_emulators_runs_keep_their_metadata_as_values_in_flight_and_deflated_at_the_end(
    emu: Emulator, lume: AsyncLume
) -> None:
    created = await lume.runs.create(
        "customer_cleaner:v1", "synthetic://in-flight/1?rows=3&duration=3000"
    )
    ended = await lume.runs.create("customer_cleaner:v1", "synthetic://in-flight/2?rows=3")
    await ended.wait(poll_interval=0.05)
    answers = await lume.runs.batch_get([created.id, ended.id])
    moving, done = answers[created.id], answers[ended.id]

    assert not moving.is_terminal
    assert moving._metadata_json.__class__.__name__ == "_InFlightJSON"
    assert done._metadata_json.__class__.__name__ == "_MetadataJSON"
    assert moving.metadata is not None and moving.metadata.run is not None
    assert moving.metadata.run.run_id == created.id
    assert moving.metadata == (await lume.runs.get(created.id)).metadata
