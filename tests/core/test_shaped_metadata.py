"""Metadata of the documented shape is kept as its own values, and reads back exactly as it came.

A run that moves is decoded at every poll that sees it move, and its metadata packed each time:
metadata shaped exactly as documented (its run's id, flow version and source path, and eighteen
values of its own) is kept as the JSON of those values, the last nine left out while they are
still empty (a run in flight), at a sixth of the cost of deflating it. Any other shape, however
close, and values too long to keep as they are, are deflated; either way a run's metadata reads
back equal to the metadata the answer carried.
"""

from __future__ import annotations

import copy
import gc
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async import AsyncLume
from lume_async._converter import run_from_obj
from lume_async._packed_json import pack_shaped, unpack_shaped
from lume_async.testing import Emulator

from .test_run_memory import emulator_run

# The metadata of a run that ended, as the emulator writes it.
ENDED = (
    b'{"run":{"run_id":"run_01M8HTCDSS19EPQAMMAQHYE1M2","flow_version":"customer_cleaner:v1",'
    b'"source_path":"synthetic://x/2?rows=5","status":"PARTIAL_FAILED",'
    b'"started_at":"2026-11-28T19:33:45.601841Z","finished_at":"2026-11-28T19:33:47.401841Z"},'
    b'"pipeline":{"created_at":"2026-11-28T19:33:45.401841Z",'
    b'"completed_at":"2026-11-28T19:33:47.401841Z","duration_seconds":2.0,"stages":'
    b'{"sync_source_seconds":0.6,"transform_seconds":0.8,"sync_target_seconds":0.4}},'
    b'"results":{"input_rows":5,"mapped_rows":3,"rejected_rows":2,"target_locations":'
    b'{"mapped":"lume://runs/run_01M8HTCDSS19EPQAMMAQHYE1M2/mapped",'
    b'"rejects":"lume://runs/run_01M8HTCDSS19EPQAMMAQHYE1M2/rejects"}},'
    b'"validation":{"tests_executed":20,"tests_failed":2,"error_rate":0.1,"top_errors":'
    b'[{"error_code":"empty_value","field":"full_name","count":1}]},"errors":[]}'
)

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
# The values a run in flight still has empty (null, or an empty list).
REST = [
    ("results", "input_rows"),
    ("results", "mapped_rows"),
    ("results", "rejected_rows"),
    ("results", "target_locations"),
    ("validation", "tests_executed"),
    ("validation", "tests_failed"),
    ("validation", "error_rate"),
    ("validation", "top_errors"),
    ("errors",),
]


def in_flight(values: list[Any], run_id: str, flow_version: str, path: str | None) -> Any:
    """A run in flight, as the emulator writes it, with these nine values (or all eighteen)."""
    run = emulator_run(1)
    run.update(id=run_id, flow_version=flow_version, source_path=path)
    metadata = run["metadata"]
    metadata["run"].update(run_id=run_id, flow_version=flow_version, source_path=path)
    for where, value in zip(HOLES + REST, values, strict=False):
        section = metadata
        for key in where[:-1]:
            section = section[key]
        section[where[-1]] = value
    return run


values_of_holes = st.lists(json_values, min_size=len(HOLES), max_size=len(HOLES))
values_of_all = st.lists(json_values, min_size=len(HOLES + REST), max_size=len(HOLES + REST))
run_ids = st.from_regex(r"run_[A-Za-z0-9]{1,30}", fullmatch=True)
flow_versions = st.from_regex(r"[a-z_]{1,12}:v[0-9]{1,3}", fullmatch=True)
paths = st.none() | st.text(max_size=40)


@given(values_of_holes, run_ids, flow_versions, paths)
def test_in_flight_metadata_packs_as_its_values_and_reads_back_equal(
    values: list[Any], run_id: str, flow_version: str, path: str | None
) -> None:
    run = in_flight(values, run_id, flow_version, path)
    metadata = run["metadata"]

    packed = pack_shaped(metadata, run_id, flow_version, path)

    if _too_long(values):
        assert packed is None
        return
    assert packed is not None
    assert len(orjson.loads(packed)) == len(HOLES)  # the empty rest is left out
    assert unpack_shaped(packed, run_id, flow_version, path) == metadata


@given(values_of_all, run_ids, paths)
def test_shaped_metadata_packs_as_its_values_or_deflates_when_long_and_reads_back_equal(
    values: list[Any], run_id: str, path: str | None
) -> None:
    run = in_flight(values, run_id, "customer_cleaner:v1", path)
    metadata = run["metadata"]

    packed = pack_shaped(metadata, run_id, "customer_cleaner:v1", path)

    if _too_long(values):
        assert packed is None
    else:
        assert packed is not None
        assert unpack_shaped(packed, run_id, "customer_cleaner:v1", path) == metadata
        assert list(unpack_shaped(packed, run_id, "customer_cleaner:v1", path)) == list(metadata)
    compact, parsed = run_from_obj(run), run_from_obj(run, compact=False)
    assert _read(compact) == _read(parsed)


def test_an_unpacked_run_in_flight_owns_its_lists() -> None:
    run = in_flight([None] * len(HOLES), "run_1", "flow:v1", None)
    packed = pack_shaped(run["metadata"], "run_1", "flow:v1", None)
    assert packed is not None

    first = unpack_shaped(packed, "run_1", "flow:v1", None)
    first["errors"].append("changed by a caller")
    first["validation"]["top_errors"].append("changed by a caller")

    assert unpack_shaped(packed, "run_1", "flow:v1", None) == run["metadata"]


def test_the_emulators_ended_metadata_packs_as_its_values() -> None:
    metadata = orjson.loads(ENDED)
    ids = ("run_01M8HTCDSS19EPQAMMAQHYE1M2", "customer_cleaner:v1", "synthetic://x/2?rows=5")

    packed = pack_shaped(metadata, *ids)

    assert packed is not None
    assert len(orjson.loads(packed)) == len(HOLES + REST)
    assert unpack_shaped(packed, *ids) == metadata


def perturbations() -> st.SearchStrategy[tuple[str, Any]]:
    """One change that takes metadata out of the documented shape."""
    sections = st.sampled_from(["run", "pipeline", "results", "validation"])
    return st.one_of(
        st.tuples(st.just("extra key"), st.tuples(sections, st.text(min_size=1), json_values)),
        st.tuples(st.just("a missing key"), st.sampled_from(HOLES + REST)),
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


def test_a_run_keeps_shaped_metadata_in_what_the_collector_stops_walking() -> None:
    run = emulator_run(7)
    decoded = run_from_obj(run)
    kept = decoded._metadata
    assert kept_as(decoded) == "shaped"

    gc.collect()

    assert not gc.is_tracked(kept)  # walked once, then left alone, however long the run waits
    assert decoded.metadata == run_from_obj(run, compact=False).metadata


@given(values_of_holes, perturbations())
def test_metadata_of_any_other_shape_is_deflated_and_reads_back_equal(
    values: list[Any], change: tuple[str, Any]
) -> None:
    run = in_flight(values, "run_1", "flow:v1", "s3://b/k")
    if not perturb(run, change):
        return
    metadata = run["metadata"]

    assert pack_shaped(metadata, "run_1", "flow:v1", "s3://b/k") is None
    compact, parsed = run_from_obj(run), run_from_obj(run, compact=False)
    assert kept_as(compact) == "deflated"
    assert _read(compact) == _read(parsed)


@given(values_of_holes, run_ids, paths)
def test_a_run_in_flight_reads_the_same_metadata_kept_either_way(
    values: list[Any], run_id: str, path: str | None
) -> None:
    run = in_flight(values, run_id, "customer_cleaner:v1", path)

    compact, parsed = run_from_obj(run), run_from_obj(run, compact=False)

    assert kept_as(compact) == ("deflated" if _too_long(values) else "shaped")
    assert _read(compact) == _read(parsed)
    assert compact == parsed


def kept_as(run: Any) -> str:
    """How a run keeps its metadata until it is read: "deflated", plain bytes, which the cyclic
    collector never walks, or "shaped", a JSON array of its values with the run's own strings
    (shared, not copied) in a tuple of bytes and strings only, which the collector stops walking
    after its first look."""
    kept = run._metadata
    if kept.__class__ is bytes:
        assert not gc.is_tracked(kept)
        return "deflated"
    assert kept.__class__ is tuple
    values, run_id, flow_version, source_path = kept
    assert values.__class__ is bytes and values.startswith(b"[")
    assert run_id is run.id and flow_version is run.flow_version
    assert source_path is run.source_path
    return "shaped"


def _too_long(values: list[Any]) -> bool:
    """True if these values are kept deflated: their JSON is longer than 512 bytes."""
    return len(orjson.dumps(values)) > 512


def _read(run: Any) -> Any:
    """A run's metadata, or the class of the error reading it raises."""
    try:
        return run.metadata
    except Exception as exc:
        return type(exc)


@pytest.mark.anyio
async def test_the_emulators_runs_keep_their_metadata_as_values_in_flight_and_at_the_end(
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
    assert kept_as(moving) == "shaped"
    assert kept_as(done) == "shaped"
    assert done.metadata == (await lume.runs.get(ended.id)).metadata
    assert moving.metadata is not None and moving.metadata.run is not None
    assert moving.metadata.run.run_id == created.id
    assert moving.metadata == (await lume.runs.get(created.id)).metadata
