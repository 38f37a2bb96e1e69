"""Inline rows (``source_data``): checked by encoding them once, sent as encoded, never converted.

A row is a JSON object: string keys, values that are JSON (objects, arrays, strings, numbers,
booleans, null) or datetimes. Anything else, at any depth of any row, fails the request before
it is sent, with the index of the row. NaN and infinities are not JSON.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, RunRequest, _converter
from lume_async.testing import Emulator

from .._profiles import examples

FLOW = "customer_cleaner:v1"

keys = st.text(max_size=8)
leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10)
leaves |= st.floats(allow_nan=False, allow_infinity=False)
# Values nested up to four containers deep (five with the row), built out level by level: the
# depths st.recursive(max_leaves=10) reached here, at about half its cost (its
# recursion machinery, not the values, was most of what drawing rows cost).
json_values = leaves
for _ in range(4):
    json_values = (
        leaves | st.lists(json_values, max_size=3) | st.dictionaries(keys, json_values, max_size=3)
    )
rows = st.lists(st.dictionaries(keys, json_values, max_size=5), min_size=1, max_size=20)
BAD_VALUES = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    ({1, 2}, TypeError),
    (b"bytes", TypeError),
    (Decimal("1.5"), TypeError),
    (object(), TypeError),
    ({1: "a non-str key"}, TypeError),
    ({("a", "b"): "a tuple key"}, TypeError),
]


def request(data: list[dict[str, Any]], **extra: Any) -> RunRequest:
    return RunRequest(FLOW, source_data=data, **extra)


@settings(max_examples=examples(100), deadline=None)
@given(rows)
def test_json_rows_are_sent_exactly_as_given(data: list[dict[str, Any]]) -> None:
    sent = orjson.loads(request(data).wire_body())

    assert sent == {"flow_version": FLOW, "source_data": orjson.loads(orjson.dumps(data))}


@st.composite
def rows_with_one_bad_value(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, type[Exception]]:
    data = draw(rows)
    index = draw(st.integers(0, len(data) - 1))
    bad, error = draw(st.sampled_from(BAD_VALUES))
    # Nested at some depth: in the row itself, in a list, in an object.
    depth = draw(st.integers(0, 3))
    for _ in range(depth):
        bad = draw(st.sampled_from([[bad], {"k": bad}, [0, {"k": [bad]}]]))
    data[index] = {**data[index], draw(keys): bad}
    return data, index, error


@settings(max_examples=examples(100), deadline=None)
@given(rows_with_one_bad_value())
def test_a_bad_value_anywhere_in_a_row_fails_with_the_index_of_that_row(
    case: tuple[list[dict[str, Any]], int, type[Exception]],
) -> None:
    data, index, error = case

    with pytest.raises(error, match=rf"source_data\[{index}\]"):
        request(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_fail_between_nones_and_null_strings(bad: float) -> None:
    data: list[dict[str, Any]] = [{"a": None, "b": "null", "c": "not null"} for _ in range(50)]
    data[37]["d"] = bad

    with pytest.raises(ValueError, match=r"source_data\[37\]"):
        request(data)


def test_nones_and_null_strings_alone_are_fine() -> None:
    data = [{"a": None, "b": "null", "c": [None, {"d": None}]} for _ in range(50)]

    assert orjson.loads(request(data).wire_body())["source_data"] == data


def test_nan_in_run_metadata_fails_naming_run_metadata() -> None:
    with pytest.raises(ValueError, match="run_metadata"):
        request([{"a": 1}], run_metadata={"x": [math.nan]})


def test_datetimes_are_sent_as_iso_8601_with_z_for_utc() -> None:
    naive, aware = datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 10, 0, 0, 5, tzinfo=UTC)

    sent = orjson.loads(request([{"at": naive, "also": aware}]).wire_body())

    assert sent["source_data"] == [
        {"at": "2024-05-01T10:00:00Z", "also": "2024-05-01T10:00:00.000005Z"}
    ]


@pytest.mark.anyio
async def test_a_create_with_inline_rows_never_converts_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converted: list[object] = []
    unstructure = _converter.converter.unstructure

    def spy(obj: object, *args: Any, **kwargs: Any) -> Any:
        converted.append(obj)
        return unstructure(obj, *args, **kwargs)

    monkeypatch.setattr(_converter.converter, "unstructure", spy)
    data = [{"name": f"row {i}", "n": i} for i in range(1000)]
    with Emulator() as emu:
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
            run = await lume.runs.create(FLOW, source_data=data)

    assert run.id
    assert converted == []


# Tables like real ones: a few columns, None in some cells, strings that look like JSON nulls
# (or keys), keys with quotes and backslashes. The check reads the columns of the nulls from the
# encoded body, so a value or a key that reads like ``"key":null`` must not fool it.
tricky_text = st.sampled_from(['":null', '"a":null', "null", '\\":null', 'x"', "a", "b", ""])
column_names = st.sampled_from(["a", "b", 'q"uote', "back\\slash", '":null', "null"]) | keys
cells = st.none() | tricky_text | st.integers(-5, 5) | st.floats(-1e6, 1e6)
cells |= st.lists(st.none() | tricky_text, max_size=2)
tables = st.lists(column_names, min_size=1, max_size=6, unique=True).flatmap(
    lambda columns: st.lists(
        st.fixed_dictionaries(dict.fromkeys(columns, cells)), min_size=1, max_size=60
    )
)


@settings(max_examples=examples(100), deadline=None)
@given(tables)
def test_a_table_with_nones_is_sent_exactly_as_given(data: list[dict[str, Any]]) -> None:
    sent = orjson.loads(request(data).wire_body())

    assert sent["source_data"] == orjson.loads(orjson.dumps(data))


@settings(max_examples=examples(100), deadline=None)
@given(tables, st.data(), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_nan_or_infinity_in_a_table_with_nones_fails_with_its_row(
    data: list[dict[str, Any]], draw: st.DataObject, bad: float
) -> None:
    index = draw.draw(st.integers(0, len(data) - 1))
    column = draw.draw(st.sampled_from([*data[index], "extra"]))
    nested = draw.draw(st.booleans())
    data[index] = {**data[index], column: [bad] if nested else bad}

    with pytest.raises(ValueError, match=rf"source_data\[{index}\]"):
        request(data)


def test_nones_in_one_column_do_not_hide_a_nan_in_another() -> None:
    data: list[dict[str, Any]] = [{"a": None, "b": 1.5} for _ in range(200)]
    data[150]["b"] = math.nan

    with pytest.raises(ValueError, match=r"source_data\[150\]"):
        request(data)


def test_a_string_that_reads_like_a_null_column_does_not_hide_a_nan() -> None:
    # The body holds '"a":null' once for the None and once inside the string; the NaN is in b.
    data: list[dict[str, Any]] = [{"a": None, "s": '"a":null', "b": 0.5} for _ in range(30)]
    data[7]["b"] = math.inf

    with pytest.raises(ValueError, match=r"source_data\[7\]"):
        request(data)
