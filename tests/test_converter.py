from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import _converter
from lume_async._exceptions import ResponseValidationError
from lume_async.models import Flow, LogEntry, Page, RejectedRow, RunData, RunStatus

from ._profiles import examples
from .test_models import FULL_METADATA, run_json


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def decode(data: bytes, item_cls: type[Any] | None) -> object:
    if item_cls is None:
        run = _converter.decode_run(data)
        if run.metadata is not None:  # each section is decoded (and checked) on its first read
            for section in ("run", "pipeline", "results", "validation", "errors"):
                getattr(run.metadata, section)
        return run
    return _converter.decode_page(data, item_cls)


def error_of(data: bytes, item_cls: type[Any] | None = None) -> str:
    with pytest.raises(ResponseValidationError) as caught:
        decode(data, item_cls)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{", b"not json", b'{"id": "x",}', b"\xff\xfe"])
def test_malformed_json_is_a_response_validation_error(data: bytes) -> None:
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        _converter.loads(data)


def test_malformed_json_error_chains_the_parser_error() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        _converter.decode_run(b"{")
    assert isinstance(caught.value.__cause__, ValueError)


def test_dumps_writes_models_and_plain_values_as_json() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert json.loads(_converter.dumps({"at": when, "s": RunStatus.FAILED, "t": ("a",)})) == {
        "at": "2024-05-01T00:00:00Z",
        "s": "FAILED",
        "t": ["a"],
    }


# --- decode_run -----------------------------------------------------------------------------------


def test_decode_run_matches_the_generated_structure() -> None:
    data = encode(run_json())
    assert _converter.decode_run(data) == _converter.structure(orjson.loads(data), RunData)


def test_decode_run_ints_are_accepted_where_floats_belong() -> None:
    run = _converter.decode_run(encode(run_json()))
    assert run.metadata is not None
    assert run.metadata.pipeline is not None
    assert run.metadata.pipeline.stages is not None
    assert isinstance(run.metadata.pipeline.stages.sync_target_seconds, float)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": 5}, "expected a string, got integer @ $.id"),
        ({"status": 3}, "@ $.status"),
        ({"status": ""}, "not a run status: '' @ $.status"),
        ({"created_at": "yesterday"}, "not an ISO-8601 timestamp: 'yesterday' @ $.created_at"),
        ({"created_at": 1714557600}, "@ $.created_at"),
        ({"tags": "a,b"}, "expected an array, got string @ $.tags"),
        ({"tags": ["a", 2]}, "@ $.tags[1]"),
        ({"run_metadata": []}, "expected a JSON object, got array @ $.run_metadata"),
        ({"error": {"code": "x"}}, "required field missing @ $.error.message"),
        (
            {"metadata": {**FULL_METADATA, "results": {"input_rows": "10"}}},
            "expected an integer, got string @ $.metadata.results.input_rows",
        ),
        (
            {"metadata": {"validation": {"top_errors": [{"count": 1.5}]}}},
            "@ $.metadata.validation.top_errors[0].count",
        ),
        (
            {"metadata": {"pipeline": {"stages": {"transform_seconds": True}}}},
            "@ $.metadata.pipeline.stages.transform_seconds",
        ),
        ({"metadata": "done"}, "expected an object, got string @ $.metadata"),
    ],
)
def test_wrong_types_name_the_bad_field(changes: dict[str, Any], expected: str) -> None:
    message = error_of(encode(run_json(**changes)))
    assert message.startswith("unexpected run in response: ")
    assert expected in message


def test_missing_required_fields_are_named() -> None:
    body = run_json()
    del body["flow_version"]
    assert "required field missing @ $.flow_version" in error_of(encode(body))


def test_a_body_that_is_not_an_object_says_so() -> None:
    assert "expected an object, got array @ $" in error_of(b"[1, 2]")


def test_many_errors_are_summarised_on_one_line() -> None:
    message = error_of(b"{}")
    assert "required field missing @ $.id" in message
    assert "more" in message


def test_validation_error_chains_the_cattrs_error() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        _converter.decode_run(encode(run_json(id=5)))
    assert caught.value.__cause__ is not None


def test_structure_uses_what_in_its_message() -> None:
    with pytest.raises(ResponseValidationError, match="unexpected flow in response"):
        _converter.structure({"name": 1}, Flow, what="flow")


# --- decode_page ----------------------------------------------------------------------------------


def envelope(items: list[Any], **changes: Any) -> bytes:
    body: dict[str, Any] = {"items": items, "page": 1, "size": 50, "total": 120, "pages": 3}
    body.update(changes)
    return encode(body)


def test_page_of_runs_decodes() -> None:
    page = _converter.decode_page(envelope([run_json(), run_json(id="run_02")]), RunData)
    assert isinstance(page, Page)
    assert [r.id for r in page.items] == ["run_01", "run_02"]
    assert (page.page, page.size, page.total, page.pages, page.has_next) == (1, 50, 120, 3, True)


def test_page_of_dicts_keeps_rows_as_they_are() -> None:
    rows = [{"a": 1, "nested": {"b": [1, 2]}}, {}]
    assert _converter.decode_page(envelope(rows), dict).items == tuple(rows)


@pytest.mark.parametrize(
    ("item_cls", "item"),
    [
        (RejectedRow, {"index": 0, "source_record": {}, "errors": []}),
        (LogEntry, {"time": "2024-05-01T10:00:00Z", "level": "INFO", "message": "m"}),
        (Flow, {"name": "f", "description": None, "versions": []}),
    ],
)
def test_page_of_each_item_type_decodes(item_cls: type[Any], item: dict[str, Any]) -> None:
    page = _converter.decode_page(envelope([item]), item_cls)
    assert isinstance(page.items[0], item_cls)


def test_bad_item_in_a_page_is_named_by_index() -> None:
    message = error_of(envelope([run_json(), run_json(id=7)]), RunData)
    assert "expected a string, got integer @ $.items[1].id" in message
    assert message.startswith("unexpected page of RunData in response")


def test_page_with_a_missing_total_says_which_field() -> None:
    assert "expected an integer, got string @ $.page" in error_of(envelope([], page="1"), dict)


def test_empty_page_past_the_end() -> None:
    page = _converter.decode_page(envelope([], page=4), RunData)
    assert page.items == ()
    assert not page.has_next


# --- fuzz -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    [*run_json().keys(), "items", "page", "size", "total", "pages", "run", "pipeline", "results"]
)
run_like = st.fixed_dictionaries(
    {},
    optional={name: json_values | st.just(value) for name, value in run_json().items()},
)


def only_validation_errors(data: bytes, item_cls: type[Any] | None) -> None:
    message = ""
    try:
        decode(data, item_cls)
    except ResponseValidationError as exc:
        message = str(exc)
    assert "\n" not in message


@settings(max_examples=examples(100), deadline=None)
@given(json_values)
def test_any_json_value_decodes_or_raises_response_validation_error(value: Any) -> None:
    data = encode(value)
    only_validation_errors(data, None)
    for item_cls in (dict, RunData, RejectedRow, LogEntry, Flow):
        only_validation_errors(data, item_cls)


@settings(max_examples=examples(100), deadline=None)
@given(run_like, st.dictionaries(field_names, json_values, max_size=3))
def test_runs_with_arbitrary_fields_only_raise_response_validation_error(
    run: dict[str, Any], extra: dict[str, Any]
) -> None:
    only_validation_errors(encode({**run, **extra}), None)
    only_validation_errors(envelope([run, extra]), RunData)


@st.composite
def mutations(draw: st.DrawFn, template: Any) -> Any:
    """Values shaped like ``template`` where, now and then, a part is missing or is noise."""
    if draw(st.integers(0, 39)) == 0:
        return draw(json_values)
    if isinstance(template, dict):
        return {
            key: draw(mutations(value))
            for key, value in template.items()
            if draw(st.integers(0, 29)) != 0
        }
    if isinstance(template, list) and template:
        return [draw(mutations(template[0])) for _ in range(draw(st.integers(0, 3)))]
    return template
