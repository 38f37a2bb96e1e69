"""A run's owner and permission lists, as read from the wire: typed, strict, and the same on the
fast decoding path as on the detailed one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import _converter
from lume_async._exceptions import ResponseValidationError
from lume_async._run_decoder import run_from_json
from lume_async.models import RunData

from ._profiles import examples


def fast_run(run: dict[str, Any]) -> RunData:
    """The hand-written decoder, metadata kept the way the converter keeps it."""
    return run_from_json(run, _converter.PACKED)


PERMISSIONS: dict[str, Any] = {
    "created_by": "bo@example.com",
    "run_owner": "ana@example.com",
    "monitoring_by": ["cy@example.com"],
    "monitoring_groups": ["analysts", "finance"],
    "managing_by": [],
    "managing_groups": ["data-eng"],
}


def run_json(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": "run_01",
        "status": "PENDING",
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://b/x",
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:05:00Z",
        "metadata": None,
        "error": None,
        **PERMISSIONS,
    }
    run.update(changes)
    return run


def test_a_run_reads_its_owner_creator_and_lists_as_typed_fields() -> None:
    run = _converter.decode_run(orjson.dumps(run_json()))
    assert run.created_by == "bo@example.com"
    assert run.run_owner == "ana@example.com"
    assert run.monitoring_by == ("cy@example.com",)
    assert run.monitoring_groups == ("analysts", "finance")
    assert run.managing_by == ()
    assert run.managing_groups == ("data-eng",)


def test_a_run_from_a_service_that_says_nothing_of_permissions_has_none() -> None:
    bare = {k: v for k, v in run_json().items() if k not in PERMISSIONS}
    run = _converter.decode_run(orjson.dumps(bare))
    assert (run.created_by, run.run_owner) == (None, None)
    assert (
        run.monitoring_by == run.monitoring_groups == run.managing_by == () == run.managing_groups
    )


def test_null_lists_read_as_empty() -> None:
    run = _converter.decode_run(orjson.dumps(run_json(monitoring_by=None, managing_groups=None)))
    assert run.monitoring_by == () == run.managing_groups


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("run_owner", 7),
        ("created_by", ["ana"]),
        ("monitoring_by", "ana@example.com"),
        ("monitoring_groups", [1]),
        ("managing_by", {"a": 1}),
        ("managing_groups", [None]),
    ],
)
def test_a_permission_field_of_the_wrong_type_is_named(field: str, value: Any) -> None:
    with pytest.raises(ResponseValidationError, match=rf"\$\.{field}"):
        _converter.decode_run(orjson.dumps(run_json(**{field: value})))


def test_permissions_take_part_in_equality_and_survive_unstructure() -> None:
    run = _converter.decode_run(orjson.dumps(run_json()))
    again = _converter.decode_run(_converter.dumps(run))
    assert again == run
    other = _converter.decode_run(orjson.dumps(run_json(monitoring_by=[])))
    assert other != run
    assert "monitoring_groups=('analysts', 'finance')" in repr(run)


names = st.lists(st.text(max_size=6), max_size=3)
small_ints = st.integers(-(2**63), 2**63 - 1)
noise = st.one_of(st.none(), small_ints, st.text(max_size=4), st.lists(small_ints, max_size=2))


@settings(max_examples=examples(100), deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "created_by": st.one_of(st.text(max_size=6), noise),
            "run_owner": st.one_of(st.text(max_size=6), noise),
            "monitoring_by": st.one_of(names, noise),
            "monitoring_groups": st.one_of(names, noise),
            "managing_by": st.one_of(names, noise),
            "managing_groups": st.one_of(names, noise),
        },
    )
)
def test_the_fast_decoder_agrees_with_the_detailed_one_on_permissions(
    fields: dict[str, Any],
) -> None:
    run = {k: v for k, v in run_json().items() if k not in PERMISSIONS} | fields
    try:
        fast: RunData | None = fast_run(run)
    except Exception:
        fast = None
    try:
        detailed: RunData | None = _converter._detailed_run(run, RunData)
    except Exception:
        detailed = None
    assert fast == detailed
    if detailed is None:  # and the public path says which field is wrong
        with pytest.raises(ResponseValidationError):
            _converter.decode_run(orjson.dumps(run))
