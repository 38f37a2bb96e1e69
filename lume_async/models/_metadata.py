"""The run metadata tree (the LumeRun metadata schema), filled in while a run progresses."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import attrs

from .._status import RunStatus
from ._schema_view import SchemaView

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
class RunInfo(SchemaView):
    """Identity, status and wall-clock span of a run, as recorded by the pipeline.

    Attributes:
        run_id: The run's id.
        flow_version: The flow version applied.
        source_path: Where the source rows were read; None for inline rows.
        status: The run's status, as the pipeline recorded it.
        started_at: When the pipeline started (UTC).
        finished_at: When it finished (UTC).
    """

    run_id: str | None = None
    flow_version: str | None = None
    source_path: str | None = None
    status: RunStatus | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@attrs.frozen(kw_only=True)
class StageTimings(SchemaView):
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
class PipelineMetadata(SchemaView):
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
class TargetLocations(SchemaView):
    """Where the mapped rows and the rejected rows were written.

    Attributes:
        mapped: The location of the mapped rows.
        rejects: The location of the rejected rows.
    """

    mapped: str | None = None
    rejects: str | None = None


@attrs.frozen(kw_only=True)
class ResultsMetadata(SchemaView):
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
class TopError(SchemaView):
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
class ValidationMetadata(SchemaView):
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
class StageError(SchemaView):
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
class RunMetadata(SchemaView):
    """Everything the pipeline reports about a run; partial while the run is in flight.

    Typed attributes (``metadata.results.mapped_rows``) are the primary way to read it; it also
    reads as the documented JSON object (``metadata["results"]["mapped_rows"]``, ``.get()``,
    ``.keys()``), and knows two shortcuts besides its keys: ``metadata["target_locations"]`` is
    ``results.target_locations``, and ``metadata.get("error_message")`` the message of the first
    error (None when there is none).

    Attributes:
        run: The run's identity, status and span.
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

    @property
    def target_locations(self) -> TargetLocations | None:
        """Where the mapped and rejected rows were written (``results.target_locations``)."""
        return self.results.target_locations if self.results is not None else None

    @property
    def error_message(self) -> str | None:
        """The message of the first error the run reported, or None."""
        return self.errors[0].message if self.errors else None

    _aliases: ClassVar[frozenset[str]] = frozenset({"target_locations", "error_message"})
