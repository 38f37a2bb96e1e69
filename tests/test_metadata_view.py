"""Run metadata reads as the documented JSON object as well as through its typed attributes."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async import _converter
from lume_async.models import (
    ResultsMetadata,
    RunInfo,
    RunMetadata,
    RunStatus,
    StageError,
    TargetLocations,
    TopError,
)

SCHEMA_KEYS = {
    "": ["run", "pipeline", "results", "validation", "errors"],
    "run": ["run_id", "flow_version", "source_path", "status", "started_at", "finished_at"],
    "pipeline": ["created_at", "completed_at", "duration_seconds", "stages"],
    "pipeline.stages": ["sync_source_seconds", "transform_seconds", "sync_target_seconds"],
    "results": ["input_rows", "mapped_rows", "rejected_rows", "target_locations"],
    "results.target_locations": ["mapped", "rejects"],
    "validation": ["tests_executed", "tests_failed", "error_rate", "top_errors"],
}

stamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
counts = st.none() | st.integers(0, 10**9)
seconds = st.none() | st.floats(0, 1e6)
texts = st.none() | st.text(max_size=20)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


metadata_json = st.fixed_dictionaries(
    {},
    optional={
        "run": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "run_id": texts,
                    "flow_version": texts,
                    "source_path": texts,
                    "status": _maybe(st.sampled_from([s.value for s in RunStatus])),
                    "started_at": _maybe(stamps),
                    "finished_at": _maybe(stamps),
                },
            )
        ),
        "pipeline": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "created_at": _maybe(stamps),
                    "completed_at": _maybe(stamps),
                    "duration_seconds": seconds,
                    "stages": _maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "sync_source_seconds": seconds,
                                "transform_seconds": seconds,
                                "sync_target_seconds": seconds,
                            },
                        )
                    ),
                },
            )
        ),
        "results": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "input_rows": counts,
                    "mapped_rows": counts,
                    "rejected_rows": counts,
                    "target_locations": _maybe(
                        st.fixed_dictionaries({}, optional={"mapped": texts, "rejects": texts})
                    ),
                },
            )
        ),
        "validation": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "tests_executed": counts,
                    "tests_failed": counts,
                    "error_rate": _maybe(st.floats(0, 1)),
                    "top_errors": st.lists(
                        st.fixed_dictionaries(
                            {}, optional={"error_code": texts, "field": texts, "count": counts}
                        ),
                        max_size=3,
                    ),
                },
            )
        ),
        "errors": st.lists(
            st.fixed_dictionaries(
                {}, optional={"stage": texts, "error_code": texts, "message": texts}
            ),
            max_size=3,
        ),
    },
)


def _decode(obj: dict[str, Any]) -> RunMetadata:
    return _converter.structure(obj, RunMetadata)


def _through_mapping(value: Any) -> Any:
    """A plain copy made only through the Mapping protocol (keys and []), never attributes."""
    if isinstance(value, Mapping):
        return {key: _through_mapping(value[key]) for key in value}
    if isinstance(value, tuple):
        return tuple(_through_mapping(item) for item in value)
    return value


def _through_attributes(value: Any) -> Any:
    """The same copy made through the typed attributes, by their public names (each field's
    alias: ``RunMetadata`` keeps its sections in private fields, read through properties)."""
    if attrs.has(type(value)):
        return {
            field.alias: _through_attributes(getattr(value, field.alias))
            for field in attrs.fields(type(value))
            if field.alias != "sections"
        }
    if isinstance(value, tuple):
        return tuple(_through_attributes(item) for item in value)
    return value


@given(metadata_json)
def test_the_mapping_view_holds_exactly_what_the_typed_attributes_hold(obj: dict[str, Any]) -> None:
    metadata = _decode(obj)
    assert _through_mapping(metadata) == _through_attributes(metadata)


@given(metadata_json)
def test_every_key_the_service_sent_reads_back_by_name(obj: dict[str, Any]) -> None:
    metadata = _decode(obj)

    def walk(sent: dict[str, Any], view: Mapping[str, Any]) -> None:
        for key, value in sent.items():
            assert key in view
            if isinstance(value, dict):
                walk(value, view[key])
            elif isinstance(value, list):
                assert len(view[key]) == len(value)
                for sent_item, view_item in zip(value, view[key], strict=True):
                    walk(sent_item, view_item)
            elif value is None or key.endswith("_at"):
                assert (view[key] is None) == (value is None)
            elif key == "status":
                assert view[key] == value
            else:
                assert view[key] == value

    walk(obj, metadata)


@given(metadata_json)
def test_to_dict_is_the_json_object_the_service_sent(obj: dict[str, Any]) -> None:
    plain = _decode(obj).to_dict()
    assert json.loads(json.dumps(plain)) == plain  # plain JSON values only
    assert list(plain) == SCHEMA_KEYS[""]

    def walk(sent: dict[str, Any], got: dict[str, Any]) -> None:
        assert type(got) is dict
        for key, value in sent.items():
            if isinstance(value, dict):
                walk(value, got[key])
            elif isinstance(value, list):
                assert type(got[key]) is list and len(got[key]) == len(value)
                for sent_item, got_item in zip(value, got[key], strict=True):
                    walk(sent_item, got_item)
            elif key == "status" and value is not None:
                assert got[key] == RunStatus(value).value  # INCOMPLETE reads as PARTIAL_FAILED
            else:
                assert got[key] == value

    walk(obj, plain)


@given(metadata_json)
def test_every_nested_object_has_all_its_schema_keys_in_order(obj: dict[str, Any]) -> None:
    metadata = _decode(obj)
    assert list(metadata) == SCHEMA_KEYS[""]
    for path, keys in SCHEMA_KEYS.items():
        node: Any = metadata
        for part in filter(None, path.split(".")):
            node = None if node is None else node[part]
        if node is not None:
            assert list(node.keys()) == keys
            assert len(node) == len(keys)
            assert [k for k, _ in node.items()] == keys


def test_seed_shortcut_target_locations_is_the_results_target_locations() -> None:
    metadata = RunMetadata(
        results=ResultsMetadata(target_locations=TargetLocations(mapped="m://x", rejects="r://x"))
    )
    assert metadata["target_locations"]["mapped"] == "m://x"
    assert metadata["target_locations"]["rejects"] == "r://x"
    assert metadata["target_locations"] is metadata["results"]["target_locations"]
    assert metadata.target_locations is metadata.results.target_locations  # type: ignore[union-attr]


def test_seed_shortcut_target_locations_is_none_without_results() -> None:
    assert RunMetadata()["target_locations"] is None


def test_seed_shortcut_error_message_is_the_first_errors_message() -> None:
    metadata = RunMetadata(
        errors=(
            StageError(stage="transform", error_code="transform_failed", message="first"),
            StageError(stage="sync_target", error_code="other", message="second"),
        )
    )
    assert metadata.get("error_message") == "first"
    assert metadata["error_message"] == "first"
    assert metadata.error_message == "first"


def test_seed_shortcut_error_message_is_none_when_there_is_no_error() -> None:
    assert RunMetadata().get("error_message") is None
    assert RunMetadata().get("error_message", "fallback") is None  # the key exists, valued None


@pytest.mark.parametrize("shortcut", ["target_locations", "error_message"])
def test_shortcuts_are_read_but_are_not_keys(shortcut: str) -> None:
    metadata = RunMetadata()
    assert metadata[shortcut] is None
    assert shortcut not in metadata
    assert shortcut not in list(metadata.keys())
    assert shortcut not in list(metadata)
    assert shortcut not in dict(metadata)
    assert len(metadata) == 5


@pytest.mark.parametrize("key", ["nope", "RUN", "", 0, None, ("run",)])
def test_an_unknown_key_is_a_key_error_and_get_gives_the_default(key: Any) -> None:
    metadata = RunMetadata()
    with pytest.raises(KeyError):
        metadata[key]
    assert metadata.get(key) is None
    assert metadata.get(key, "dflt") == "dflt"
    assert key not in metadata


def test_private_names_and_methods_are_not_keys() -> None:
    metadata = RunMetadata()
    for name in ("_aliases", "keys", "get", "__class__", "__slots__"):
        assert name not in metadata
        with pytest.raises(KeyError):
            metadata[name]


def test_the_view_is_read_only() -> None:
    metadata = RunMetadata()
    with pytest.raises(TypeError):
        metadata["run"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        del metadata["run"]  # type: ignore[attr-defined]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        metadata.run = None  # type: ignore[misc]


def test_lists_read_as_tuples_of_views() -> None:
    top_error = {"error_code": "x", "field": "f", "count": 2}
    metadata = _decode({"validation": {"top_errors": [top_error]}})
    top = metadata["validation"]["top_errors"]
    assert isinstance(top, tuple)
    assert top[0]["error_code"] == "x"
    assert top[0] == TopError(error_code="x", field="f", count=2)


def test_run_status_reads_as_a_run_status_equal_to_its_string() -> None:
    metadata = _decode({"run": {"status": "SUCCEEDED"}})
    assert metadata["run"]["status"] == "SUCCEEDED"
    assert metadata["run"]["status"] is RunStatus.SUCCEEDED
    assert metadata.run == RunInfo(status=RunStatus.SUCCEEDED)


def test_equality_and_hash_stay_the_models() -> None:
    one = _decode({"results": {"input_rows": 3}})
    two = _decode({"results": {"input_rows": 3}})
    other = _decode({"results": {"input_rows": 4}})
    assert one == two
    assert hash(one) == hash(two)
    assert one != other
    assert one != dict(one)  # a view equals views, not dicts: compare dict(view) for that
    assert {one: 1}[two] == 1


def test_repr_and_pickle_stay_the_models() -> None:
    metadata = _decode({"run": {"run_id": "run_1", "status": "FAILED"}})
    assert repr(metadata).startswith("RunMetadata(run=RunInfo(run_id='run_1'")
    assert pickle.loads(pickle.dumps(metadata)) == metadata


def test_dict_of_a_view_is_a_shallow_dict_of_its_keys() -> None:
    metadata = _decode({"results": {"mapped_rows": 1}})
    shallow = dict(metadata)
    assert list(shallow) == SCHEMA_KEYS[""]
    assert shallow["results"] is metadata.results
