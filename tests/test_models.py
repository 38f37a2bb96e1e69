from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from lume_async import _converter
from lume_async.models import (
    BatchOutcome,
    Flow,
    LogEntry,
    Page,
    RejectedRow,
    RunData,
    RunMetadata,
    RunRequest,
    RunStatus,
    StageError,
    WebhookEvent,
)

FULL_METADATA: dict[str, Any] = {
    "run": {
        "run_id": "run_01",
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://b/x",
        "started_at": "2024-05-01T10:00:01Z",
        "finished_at": "2024-05-01T10:05:00Z",
    },
    "pipeline": {
        "created_at": "2024-05-01T10:00:00Z",
        "completed_at": "2024-05-01T10:05:00Z",
        "duration_seconds": 299.5,
        "stages": {
            "sync_source_seconds": 10,
            "transform_seconds": 250.2,
            "sync_target_seconds": 39,
        },
    },
    "results": {
        "input_rows": 1000,
        "mapped_rows": 990,
        "rejected_rows": 10,
        "target_locations": {"mapped": "s3://o/m", "rejects": "s3://o/r"},
    },
    "validation": {
        "tests_executed": 50,
        "tests_failed": 2,
        "error_rate": 0.01,
        "top_errors": [{"error_code": "invalid_email", "field": "email", "count": 7}],
    },
    "errors": [{"stage": "transform", "error_code": "row_rejected", "message": "10 rejected"}],
}


def run_json(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": "run_01",
        "status": "SUCCEEDED",
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://b/x",
        "label": None,
        "tags": ["a"],
        "run_metadata": {"k": "v"},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:05:00.5Z",
        "metadata": FULL_METADATA,
        "error": None,
    }
    run.update(changes)
    return run


# --- RunStatus ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (RunStatus.CREATED, False),
        (RunStatus.PENDING, False),
        (RunStatus.RUNNING, False),
        (RunStatus.SYNCING_SOURCE, False),
        (RunStatus.TRANSFORMING, False),
        (RunStatus.SYNCING_TARGET, False),
        (RunStatus.SUCCEEDED, True),
        (RunStatus.PARTIAL_FAILED, True),
        (RunStatus.FAILED, True),
        (RunStatus.CRASHED, True),
        (RunStatus.CANCELED, True),
    ],
)
def test_only_the_five_final_statuses_are_terminal(status: RunStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_status_is_a_str_equal_to_its_wire_value() -> None:
    assert RunStatus.SUCCEEDED == "SUCCEEDED"
    assert str(RunStatus.SUCCEEDED) == "SUCCEEDED"
    assert f"{RunStatus.FAILED}" == "FAILED"


def test_incomplete_reads_as_partial_failed() -> None:
    assert RunStatus("INCOMPLETE") is RunStatus.PARTIAL_FAILED


def test_status_lookup_ignores_case() -> None:
    assert RunStatus("succeeded") is RunStatus.SUCCEEDED


def test_unknown_status_is_kept_and_not_terminal() -> None:
    status = RunStatus("QUEUED_FOR_REVIEW")
    assert isinstance(status, RunStatus)
    assert status.value == "QUEUED_FOR_REVIEW"
    assert str(status) == "QUEUED_FOR_REVIEW"
    assert status == "QUEUED_FOR_REVIEW"
    assert not status.is_terminal
    assert not status.is_known
    assert RunStatus.RUNNING.is_known


def test_unknown_status_does_not_join_the_members() -> None:
    RunStatus("SOMETHING_NEW")
    assert len(list(RunStatus)) == 11
    assert "SOMETHING_NEW" not in RunStatus.__members__


def test_unknown_status_survives_pickling() -> None:
    status = RunStatus("ARCHIVED")
    assert pickle.loads(pickle.dumps(status)) == status


@pytest.mark.parametrize("value", ["", 3, None])
def test_status_refuses_non_strings_and_empty(value: Any) -> None:
    with pytest.raises(ValueError, match="is not a valid RunStatus"):
        RunStatus(value)


# --- runs and metadata ----------------------------------------------------------------------------


def test_run_with_full_metadata_parses_every_section() -> None:
    run = _converter.structure(run_json(), RunData)
    md = run.metadata
    assert md is not None
    assert md.run is not None
    assert md.run.finished_at == datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    assert md.pipeline is not None
    assert md.pipeline.stages is not None
    assert md.pipeline.stages.sync_source_seconds == 10.0
    assert md.results is not None
    assert md.results.target_locations is not None
    assert md.results.target_locations.rejects == "s3://o/r"
    assert md.validation is not None
    assert md.validation.top_errors[0].field == "email"
    assert md.errors == (
        StageError(stage="transform", error_code="row_rejected", message="10 rejected"),
    )


def test_run_timestamps_are_aware_utc() -> None:
    run = _converter.structure(run_json(), RunData)
    assert run.created_at.tzinfo is not None
    assert run.updated_at == datetime(2024, 5, 1, 10, 5, 0, 500000, tzinfo=UTC)


def test_naive_timestamp_is_taken_as_utc() -> None:
    run = _converter.structure(run_json(created_at="2024-05-01T10:00:00"), RunData)
    assert run.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"run": {"run_id": "run_01"}},
        {"pipeline": {"created_at": "2024-05-01T10:00:00Z"}, "results": None},
        {"validation": {"tests_executed": 3, "top_errors": None}, "errors": None},
    ],
)
def test_partial_metadata_of_a_run_in_flight_parses(metadata: dict[str, Any]) -> None:
    run = _converter.structure(run_json(status="TRANSFORMING", metadata=metadata), RunData)
    assert isinstance(run.metadata, RunMetadata)
    assert not run.is_terminal


def test_run_without_metadata_parses() -> None:
    run = _converter.structure(run_json(metadata=None, tags=None), RunData)
    assert run.metadata is None
    assert run.tags == ()


def test_unknown_fields_are_ignored_at_every_level() -> None:
    metadata = {**FULL_METADATA, "lineage": {"x": 1}, "run": {"run_id": "r", "host": "h"}}
    run = _converter.structure(run_json(new_field=1, metadata=metadata), RunData)
    assert run.metadata is not None
    assert run.metadata.run is not None
    assert run.metadata.run.run_id == "r"


def test_run_status_incomplete_and_unknown_parse_from_the_wire() -> None:
    assert _converter.structure(run_json(status="INCOMPLETE"), RunData).status is (
        RunStatus.PARTIAL_FAILED
    )
    unknown = _converter.structure(run_json(status="ON_HOLD"), RunData)
    assert unknown.status == "ON_HOLD"
    assert not unknown.is_terminal


def test_run_error_info_parses() -> None:
    run = _converter.structure(
        run_json(status="FAILED", error={"code": "source_unreachable", "message": "no bucket"}),
        RunData,
    )
    assert run.error is not None
    assert run.error.code == "source_unreachable"


def test_models_are_frozen() -> None:
    run = _converter.structure(run_json(), RunData)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        run.label = "x"  # type: ignore[misc]


def test_run_round_trips_through_unstructure() -> None:
    run = _converter.structure(run_json(), RunData)
    plain = _converter.unstructure(run)
    assert plain["created_at"] == "2024-05-01T10:00:00Z"
    assert plain["status"] == "SUCCEEDED"
    assert _converter.structure(plain, RunData) == run


# --- other wire models ----------------------------------------------------------------------------


def test_flow_parses_with_versions() -> None:
    flow = _converter.structure(
        {
            "name": "customer_cleaner",
            "description": "Cleans customers",
            "versions": [
                {"version": "v1", "id": "customer_cleaner:v1", "created_at": "2024-01-01T00:00:00Z"}
            ],
        },
        Flow,
    )
    assert flow.versions[0].id == "customer_cleaner:v1"


def test_rejected_row_parses_with_field_errors() -> None:
    row = _converter.structure(
        {
            "index": 4,
            "source_record": {"email": "nope"},
            "errors": [{"field": "email", "error_code": "invalid_email", "message": "bad"}],
        },
        RejectedRow,
    )
    assert row.index == 4
    assert row.errors[0].error_code == "invalid_email"


def test_log_entry_parses() -> None:
    entry = _converter.structure(
        {"time": "2024-05-01T10:00:00Z", "level": "INFO", "code": None, "message": "started"},
        LogEntry,
    )
    assert entry.details is None
    assert entry.level == "INFO"


def test_webhook_event_parses() -> None:
    event = _converter.structure(
        {
            "id": "evt_1",
            "type": "run.succeeded",
            "created_at": "2024-05-01T10:00:00Z",
            "data": {
                "run_id": "run_01",
                "status": "SUCCEEDED",
                "flow_version": "customer_cleaner:v1",
                "source_path": None,
                "run_metadata": None,
            },
        },
        WebhookEvent,
    )
    assert event.data.status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("page", "pages", "cursor", "has_next"),
    [(1, 3, None, True), (3, 3, None, False), (1, None, "c1", True), (1, None, None, False)],
)
def test_page_has_next(page: int, pages: int | None, cursor: str | None, has_next: bool) -> None:
    p: Page[int] = Page(items=(1, 2), page=page, size=2, pages=pages, next_cursor=cursor)
    assert p.has_next is has_next
    assert len(p) == 2


# --- RunRequest -----------------------------------------------------------------------------------


def test_run_request_with_source_path_builds_the_wire_body() -> None:
    request = RunRequest(
        "customer_cleaner:v1", source_path="s3://b/x", label="l", tags=["a", "b"], force_rerun=True
    )
    assert request.tags == ("a", "b")
    assert request.to_wire() == {
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://b/x",
        "force_rerun": True,
        "label": "l",
        "tags": ["a", "b"],
    }


def test_run_request_with_source_data_sends_rows_not_the_key() -> None:
    request = RunRequest(
        "invoice_mapper:v1",
        source_data=[{"a": 1}],
        run_metadata={"by": "me"},
        idempotency_key="k-1",
    )
    assert request.to_wire() == {
        "flow_version": "invoice_mapper:v1",
        "source_data": [{"a": 1}],
        "run_metadata": {"by": "me"},
    }


def test_run_request_accepts_rows_as_any_mapping() -> None:
    from types import MappingProxyType

    request = RunRequest("a:v1", source_data=[MappingProxyType({"a": 1})])
    assert request.to_wire()["source_data"] == [{"a": 1}]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"flow_version": ""}, ValueError, "flow_version must be a non-empty"),
        ({"flow_version": "customer_cleaner"}, ValueError, "name:vN"),
        ({"flow_version": "customer_cleaner:1"}, ValueError, "name:vN"),
        ({"flow_version": ":v1"}, ValueError, "name:vN"),
        ({"flow_version": 3}, TypeError, "flow_version must be a str"),
        ({"source_path": None}, ValueError, "exactly one of source_path and source_data"),
        ({"source_data": [{"a": 1}]}, ValueError, "exactly one"),
        ({"source_path": "  "}, ValueError, "source_path must be a non-blank str"),
        ({"source_path": 5}, TypeError, "source_path must be a str"),
        ({"source_path": None, "source_data": {"a": 1}}, TypeError, "sequence of dicts"),
        ({"source_path": None, "source_data": "rows"}, TypeError, "sequence of dicts"),
        ({"source_path": None, "source_data": [{"a": 1}, 2]}, TypeError, r"source_data\[1\]"),
        (
            {"source_path": None, "source_data": [{"a": 1}, {"b": object()}]},
            TypeError,
            r"source_data\[1\] must be JSON-serialisable, got dict",
        ),
        (
            {"run_metadata": {"x": {1, 2}}},
            TypeError,
            "run_metadata must be JSON-serialisable, got dict",
        ),
        ({"run_metadata": ["x"]}, TypeError, "run_metadata must be a dict"),
        ({"tags": "abc"}, TypeError, "tags must be a list of strings, not str"),
        ({"tags": ["a", 1]}, TypeError, r"tags\[1\] must be a str"),
        ({"label": 1}, TypeError, "label must be a str"),
        ({"force_rerun": "yes"}, TypeError, "force_rerun must be a bool"),
        ({"idempotency_key": ""}, ValueError, "idempotency_key"),
        ({"idempotency_key": "k\n"}, ValueError, "idempotency_key"),
        ({"idempotency_key": 5}, TypeError, "idempotency_key"),
    ],
)
def test_run_request_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"flow_version": "customer_cleaner:v1", "source_path": "s3://b/x"}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        RunRequest(**arguments)


def test_run_request_checks_again_on_evolve() -> None:
    request = RunRequest("customer_cleaner:v1", source_path="s3://b/x")
    assert attrs.evolve(request, idempotency_key="k").idempotency_key == "k"
    with pytest.raises(ValueError, match="name:vN"):
        attrs.evolve(request, flow_version="bad")


# --- BatchOutcome ---------------------------------------------------------------------------------


def test_successful_outcome_unwraps_to_its_value() -> None:
    outcome = BatchOutcome.success(2, "run_1")
    assert outcome.ok
    assert outcome.index == 2
    assert outcome.error is None
    assert outcome.unwrap() == "run_1"


def test_failed_outcome_unwrap_raises_its_error() -> None:
    error = KeyError("boom")
    outcome: BatchOutcome[str] = BatchOutcome.failure(0, error)
    assert not outcome.ok
    assert outcome.value is None
    with pytest.raises(KeyError) as caught:
        outcome.unwrap()
    assert caught.value is error
