"""The run metadata tree (the LumeRun metadata schema), filled in while a run progresses."""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = [
    "PipelineMetadata",
    "ResultsMetadata",
    "RunInfo",
    "RunMetadata",
    "StageError",
    "StageTimings",
    "TargetLocations",
    "TopError",
    "ValidationMetadata",
]


@attrs.frozen(kw_only=True)
class RunInfo:
    """Identity and wall-clock span of a run, as recorded by the pipeline."""

    run_id: str | None = None
    flow_version: str | None = None
    source_path: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@attrs.frozen(kw_only=True)
class StageTimings:
    """Seconds spent in each of the three pipeline stages."""

    sync_source_seconds: float | None = None
    transform_seconds: float | None = None
    sync_target_seconds: float | None = None


@attrs.frozen(kw_only=True)
class PipelineMetadata:
    """When the pipeline ran and how long it took."""

    created_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    stages: StageTimings | None = None


@attrs.frozen(kw_only=True)
class TargetLocations:
    """Where the mapped rows and the rejected rows were written."""

    mapped: str | None = None
    rejects: str | None = None


@attrs.frozen(kw_only=True)
class ResultsMetadata:
    """Row counts of a run and where its outputs live."""

    input_rows: int | None = None
    mapped_rows: int | None = None
    rejected_rows: int | None = None
    target_locations: TargetLocations | None = None


@attrs.frozen(kw_only=True)
class TopError:
    """One of the most frequent validation errors: which code, on which field, how often."""

    error_code: str | None = None
    field: str | None = None
    count: int | None = None


@attrs.frozen(kw_only=True)
class ValidationMetadata:
    """Outcome of the flow's validation tests."""

    tests_executed: int | None = None
    tests_failed: int | None = None
    error_rate: float | None = None
    top_errors: tuple[TopError, ...] = ()


@attrs.frozen(kw_only=True)
class StageError:
    """An error raised by one pipeline stage."""

    stage: str | None = None
    error_code: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class RunMetadata:
    """Everything the pipeline reports about a run; partial while the run is in flight."""

    run: RunInfo | None = None
    pipeline: PipelineMetadata | None = None
    results: ResultsMetadata | None = None
    validation: ValidationMetadata | None = None
    errors: tuple[StageError, ...] = ()
