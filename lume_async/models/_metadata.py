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
    """Identity and wall-clock span of a run, as recorded by the pipeline.

    Attributes:
        run_id: The run's id.
        flow_version: The flow version applied.
        source_path: Where the source rows were read; None for inline rows.
        started_at: When the pipeline started (UTC).
        finished_at: When it finished (UTC).
    """

    run_id: str | None = None
    flow_version: str | None = None
    source_path: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@attrs.frozen(kw_only=True)
class StageTimings:
    """Seconds spent in each of the three pipeline stages.

    Attributes:
        sync_source_seconds: Reading the source.
        transform_seconds: Applying the flow.
        sync_target_seconds: Writing the mapped and rejected rows.
    """

    sync_source_seconds: float | None = None
    transform_seconds: float | None = None
    sync_target_seconds: float | None = None


@attrs.frozen(kw_only=True)
class PipelineMetadata:
    """When the pipeline ran and how long it took.

    Attributes:
        created_at: When the run was created (UTC).
        completed_at: When it reached a terminal status (UTC).
        duration_seconds: Seconds from creation to completion.
        stages: The time spent in each stage.
    """

    created_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    stages: StageTimings | None = None


@attrs.frozen(kw_only=True)
class TargetLocations:
    """Where the mapped rows and the rejected rows were written.

    Attributes:
        mapped: The location of the mapped rows.
        rejects: The location of the rejected rows.
    """

    mapped: str | None = None
    rejects: str | None = None


@attrs.frozen(kw_only=True)
class ResultsMetadata:
    """Row counts of a run and where its outputs live.

    Attributes:
        input_rows: Rows read from the source.
        mapped_rows: Rows the flow mapped (written to the target).
        rejected_rows: Rows the flow rejected; ``mapped_rows + rejected_rows == input_rows``.
        target_locations: Where both kinds of rows were written.
    """

    input_rows: int | None = None
    mapped_rows: int | None = None
    rejected_rows: int | None = None
    target_locations: TargetLocations | None = None


@attrs.frozen(kw_only=True)
class TopError:
    """One of the most frequent validation errors: which code, on which field, how often.

    Attributes:
        error_code: The error, such as ``invalid_email``.
        field: The field it was found on.
        count: How many rows had it.
    """

    error_code: str | None = None
    field: str | None = None
    count: int | None = None


@attrs.frozen(kw_only=True)
class ValidationMetadata:
    """Outcome of the flow's validation tests.

    Attributes:
        tests_executed: Validation tests run.
        tests_failed: Validation tests that failed.
        error_rate: ``tests_failed / tests_executed``.
        top_errors: The most frequent errors, most frequent first.
    """

    tests_executed: int | None = None
    tests_failed: int | None = None
    error_rate: float | None = None
    top_errors: tuple[TopError, ...] = ()


@attrs.frozen(kw_only=True)
class StageError:
    """An error raised by one pipeline stage.

    Attributes:
        stage: The stage, such as ``transform``.
        error_code: A short machine-readable code.
        message: What happened, for people.
    """

    stage: str | None = None
    error_code: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class RunMetadata:
    """Everything the pipeline reports about a run; partial while the run is in flight.

    Attributes:
        run: The run's identity and span.
        pipeline: Timings of the pipeline and its stages.
        results: Row counts and output locations.
        validation: The validation tests' outcome.
        errors: Errors raised by the stages of a FAILED or CRASHED run.
    """

    run: RunInfo | None = None
    pipeline: PipelineMetadata | None = None
    results: ResultsMetadata | None = None
    validation: ValidationMetadata | None = None
    errors: tuple[StageError, ...] = ()
