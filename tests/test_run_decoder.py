"""The hand-written run decoder gives cattrs' answer on every run, valid or not.

The decoder (``lume_async._run_decoder``) is the fast path; cattrs' generated hooks are the
reference. Runs are generated with a different random value in every field, so a value that
lands in the wrong field, a field the decoder forgets and a check it skips all show up as a
difference. Values are compared with their types (an ``int`` is not a ``float``, a ``+05:30``
time is not the same UTC instant).
"""

from __future__ import annotations

import ast
import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import _converter, _run_decoder
from lume_async._exceptions import ResponseValidationError
from lume_async._run_decoder import run_from_json
from lume_async.models import ResultsMetadata, RunData, RunMetadata, RunStatus, TargetLocations

from ._profiles import examples

ROOT = Path(__file__).resolve().parents[1]


# How the converter keeps the metadata of runs that come many at a time: packed.
keep = _converter.PACKED
# How it keeps the metadata of a run fetched alone: parsed, each section read lazily.
keep_parsed = _converter.PARSED


# --- generated runs -------------------------------------------------------------------------------

zones = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min])
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones
).flatmap(
    lambda when: st.sampled_from(
        [when.isoformat(), when.isoformat().replace("+00:00", "Z"), when.isoformat(" ")]
    )
)
# What orjson can hand over: no lone surrogates, no infinities, integers of 64 bits.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=16)
ints = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = finite | st.integers(-(2**53), 2**53)
statuses = st.sampled_from([s.value for s in RunStatus]) | texts.filter(bool)
json_leaves = st.none() | st.booleans() | ints | finite | texts
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def record(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """An object with the required keys, each optional one absent, null or drawn, and noise."""
    nullable = {key: st.none() | value for key, value in optional.items()}
    extra = st.dictionaries(texts.map("x-{}".format), json_values, max_size=3)
    return st.builds(
        lambda base, more: {**more, **base},
        st.fixed_dictionaries(required, optional=nullable),
        extra,
    )


top_error = record({}, {"error_code": texts, "field": texts, "count": ints})
stage_error = record({}, {"stage": texts, "error_code": texts, "message": texts})
metadata = record(
    {},
    {
        "run": record(
            {},
            {
                "run_id": texts,
                "flow_version": texts,
                "source_path": texts,
                "status": statuses,
                "started_at": timestamps,
                "finished_at": timestamps,
            },
        ),
        "pipeline": record(
            {},
            {
                "created_at": timestamps,
                "completed_at": timestamps,
                "duration_seconds": numbers,
                "stages": record(
                    {},
                    {
                        "sync_source_seconds": numbers,
                        "transform_seconds": numbers,
                        "sync_target_seconds": numbers,
                    },
                ),
            },
        ),
        "results": record(
            {},
            {
                "input_rows": ints,
                "mapped_rows": ints,
                "rejected_rows": ints,
                "target_locations": record({}, {"mapped": texts, "rejects": texts}),
            },
        ),
        "validation": record(
            {},
            {
                "tests_executed": ints,
                "tests_failed": ints,
                "error_rate": numbers,
                "top_errors": st.lists(top_error, max_size=3),
            },
        ),
        "errors": st.lists(stage_error, max_size=3),
    },
)
runs = record(
    {
        "id": texts,
        "status": statuses,
        "flow_version": texts,
        "created_at": timestamps,
        "updated_at": timestamps,
    },
    {
        "source_path": texts,
        "label": texts,
        "tags": st.lists(texts, max_size=4),
        "run_metadata": st.dictionaries(texts, json_values, max_size=3),
        "metadata": metadata,
        "error": st.fixed_dictionaries({"code": texts, "message": texts}),
    },
)


@st.composite
def broken(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with, here and there, a part missing or replaced by any JSON value."""
    if draw(st.integers(0, 24)) == 0:
        return draw(json_values)
    if isinstance(value, dict):
        return {
            key: draw(broken(item)) for key, item in value.items() if draw(st.integers(0, 19)) != 0
        }
    if isinstance(value, list):
        return [draw(broken(item)) for item in value]
    return value


# --- comparison -----------------------------------------------------------------------------------


# Where a model keeps what it has not decoded yet: compared through what it decodes to.
HELD_AS_JSON = {"metadata_json", "sections"}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (public attributes of models)."""
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        names = [f.alias for f in attrs.fields(type(a)) if f.alias not in HELD_AS_JSON]
        return all(same(getattr(a, name), getattr(b, name)) for name in names)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def read_every_section(metadata: RunMetadata) -> None:
    """Decode each section (on first read), raising where one is malformed."""
    for name in ("run", "pipeline", "results", "validation", "errors"):
        getattr(metadata, name)


def reference(obj: Any) -> RunData | None:
    """cattrs' answer: the run, metadata decoded, or None where it refuses the input."""
    try:
        run: RunData = _converter._detailed_run(obj, RunData)
    except Exception:
        return None
    return run


def fast(obj: Any, how: Any = keep) -> RunData | None:
    """The fast path's answer, every section read, or None where it refuses the input."""
    try:
        run = run_from_json(obj, how)
        if run.metadata is not None:
            read_every_section(run.metadata)
    except Exception:
        return None
    return run


# --- properties -----------------------------------------------------------------------------------


# Each generated run goes through both ways of keeping the metadata: one draw, two checks.
KEEPS = {"compact": keep, "parsed": keep_parsed}


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=runs)
def test_a_valid_run_decodes_on_the_fast_path_to_what_cattrs_builds(obj: dict[str, Any]) -> None:
    expected = reference(obj)

    assert expected is not None
    for name, how in KEEPS.items():
        run = run_from_json(obj, how)  # raises if the fast path refuses a valid run
        assert same(run, expected), name


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=runs.flatmap(broken))
def test_a_broken_run_is_refused_by_both_or_decoded_alike(obj: Any) -> None:
    expected = reference(obj)

    for name, how in KEEPS.items():
        decoded = fast(obj, how)
        if expected is None:
            assert decoded is None, name
        else:
            assert decoded is not None, name
            assert same(decoded, expected), name


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata.flatmap(broken).filter(lambda obj: isinstance(obj, dict)))
def test_each_metadata_section_decodes_like_cattrs_or_is_refused_like_it(obj: Any) -> None:
    try:
        expected: RunMetadata | None = _converter.converter.structure(obj, RunMetadata)
    except Exception:
        expected = None
    lazy = _converter._Sections(obj).read()
    try:
        read_every_section(lazy)
    except Exception:
        decoded: RunMetadata | None = None
    else:
        decoded = lazy

    if expected is None:
        assert decoded is None
    else:
        assert same(decoded, expected)


def test_a_section_is_decoded_when_first_read_and_once() -> None:
    metadata = _converter._Sections(
        {"results": {"mapped_rows": 3}, "validation": {"error_rate": "bad"}}
    ).read()

    results = metadata.results
    assert results is not None
    assert results.mapped_rows == 3
    assert metadata.results is results
    with pytest.raises(ResponseValidationError, match=r"\$\.metadata\.validation\.error_rate"):
        metadata.validation  # noqa: B018 - the bad section fails on its own first read


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs)
def test_the_public_decoder_gives_the_same_run_from_the_wire(obj: dict[str, Any]) -> None:
    assert same(_converter.decode_run(orjson.dumps(obj)), reference(obj))


def test_strings_every_run_repeats_are_shared_between_runs() -> None:
    first = {"id": "run_a", "status": "CREATED", "flow_version": "flow:v1", "tags": ["nightly"]}
    first |= {"created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z"}
    second = orjson.loads(orjson.dumps({**first, "id": "run_b"}))
    a, b = run_from_json(first, keep), run_from_json(second, keep)

    assert a.flow_version is b.flow_version
    assert a.tags[0] is b.tags[0]
    assert a.updated_at is a.created_at


def test_metadata_is_kept_as_json_until_it_is_read() -> None:
    obj = {"id": "run_a", "status": "SUCCEEDED", "flow_version": "flow:v1"}
    obj |= {"created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:05:00Z"}
    obj["metadata"] = {"results": {"mapped_rows": 7}}
    run = run_from_json(obj, keep)

    assert isinstance(run._metadata, bytes)
    assert run._metadata_json is keep
    assert run.metadata is not None
    assert run.metadata.results is not None
    assert run.metadata.results.mapped_rows == 7
    assert run._metadata is run.metadata  # decoded once, then kept decoded
    assert run._metadata_json is None


@pytest.mark.parametrize("how", [keep, keep_parsed], ids=["packed", "parsed"])
def test_a_run_whose_metadata_is_not_read_yet_pickles_copies_and_evolves_whole(how: Any) -> None:
    obj = {"id": "run_a", "status": "SUCCEEDED", "flow_version": "flow:v1"}
    obj |= {"created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:05:00Z"}
    obj["metadata"] = {"results": {"mapped_rows": 7}, "errors": [{"stage": "sync_target"}]}
    expected = run_from_json(obj, how).metadata

    for copied in (
        pickle.loads(pickle.dumps(run_from_json(obj, how))),
        copy.copy(run_from_json(obj, how)),
        copy.deepcopy(run_from_json(obj, how)),
        attrs.evolve(run_from_json(obj, how), label="relabelled"),
    ):
        assert copied.metadata == expected
        assert copied.metadata is not None and copied.metadata.results is not None
        assert copied.metadata.results.mapped_rows == 7


def test_a_run_read_by_two_threads_at_once_never_hands_out_what_was_kept() -> None:
    """What another thread sees between the two slots a first read sets: the tree, already set,
    with its source not yet cleared."""
    obj = {"id": "run_a", "status": "SUCCEEDED", "flow_version": "flow:v1"}
    obj |= {"created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:05:00Z"}
    obj["metadata"] = {"results": {"mapped_rows": 7}}
    run = run_from_json(obj, keep)
    tree = run_from_json(obj, keep).metadata
    assert tree is not None

    RunData.__dict__["_metadata"].__set__(run, tree)  # the first slot a read sets, not the second

    assert run._metadata_json is keep
    assert run.metadata is tree


# --- no code is compiled at run time --------------------------------------------------------------

BANNED = {"exec", "eval", "compile"}


def _calls_of_banned_builtins(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} {node.func.id}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BANNED
    ]


@pytest.mark.parametrize("package", ["lume_async", "lume_sync"])
def test_no_module_compiles_code_with_exec_eval_or_compile(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))

    assert len(files) > 10
    assert [call for path in files for call in _calls_of_banned_builtins(path)] == []


def test_the_exec_check_finds_exec(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("exec('x = 1')\nns = {}\neval('1')\n")

    assert _calls_of_banned_builtins(sample) == ["sample.py:1 exec()", "sample.py:3 eval()"]


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata)
def test_metadata_read_section_by_section_reads_as_the_same_mapping(obj: dict[str, Any]) -> None:
    lazy = _converter._Sections(obj).read()
    eager = _converter.converter.structure(obj, RunMetadata)

    assert dict(lazy) == dict(eager)
    assert list(lazy) == ["run", "pipeline", "results", "validation", "errors"]
    assert lazy["target_locations"] == eager["target_locations"]
    assert lazy.get("error_message") == eager.get("error_message")


@pytest.mark.parametrize(
    ("slots", "cls"),
    [
        (_run_decoder._RunSlots, RunData),
        (_run_decoder._MetadataSlots, RunMetadata),
        (_run_decoder._ResultsSlots, ResultsMetadata),
        (_run_decoder._LocationsSlots, TargetLocations),
    ],
)
def test_a_model_built_slot_by_slot_has_a_setter_for_each_field_setting_that_field(
    slots: type, cls: type
) -> None:
    names = {name for name, value in vars(slots).items() if isinstance(value, staticmethod)}
    assert names == {field.alias or field.name for field in attrs.fields(cls)}
    for field in attrs.fields(cls):
        model = object.__new__(cls)
        marker = object()
        getattr(slots, field.alias or field.name)(model, marker)
        assert getattr(model, field.name) is marker
