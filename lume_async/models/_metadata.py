"""The run metadata tree (the LumeRun metadata schema), filled in while a run progresses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import attrs

__all__ = [
    "MetadataSections",
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


class MetadataSections(Protocol):
    """The sections of a run's metadata as its answer carried them (made by the converter).

    Each method decodes its section on first call and returns the same value after.
    """

    def run(self) -> RunInfo | None: ...
    def pipeline(self) -> PipelineMetadata | None: ...
    def results(self) -> ResultsMetadata | None: ...
    def validation(self) -> ValidationMetadata | None: ...
    def errors(self) -> tuple[StageError, ...]: ...


@attrs.frozen(kw_only=True, eq=False)
class RunMetadata:
    """Everything the pipeline reports about a run; partial while the run is in flight.

    Read from an answer, each section is decoded when it is first read: most readers look at one
    or two (``results.mapped_rows``), and the models of the whole tree are most of its cost. A
    malformed section raises ResponseValidationError on that first read.
    """

    _run: RunInfo | None = attrs.field(default=None, alias="run")
    _pipeline: PipelineMetadata | None = attrs.field(default=None, alias="pipeline")
    _results: ResultsMetadata | None = attrs.field(default=None, alias="results")
    _validation: ValidationMetadata | None = attrs.field(default=None, alias="validation")
    _errors: tuple[StageError, ...] = attrs.field(default=(), alias="errors")
    # Set by the converter instead of the sections above, which are then read from it.
    _sections: MetadataSections | None = attrs.field(default=None, alias="sections", repr=False)

    @property
    def run(self) -> RunInfo | None:
        """Identity and wall-clock span of the run."""
        return self._run if self._sections is None else self._sections.run()

    @property
    def pipeline(self) -> PipelineMetadata | None:
        """When the pipeline ran and how long it took."""
        return self._pipeline if self._sections is None else self._sections.pipeline()

    @property
    def results(self) -> ResultsMetadata | None:
        """Row counts and where the outputs live."""
        return self._results if self._sections is None else self._sections.results()

    @property
    def validation(self) -> ValidationMetadata | None:
        """Outcome of the flow's validation tests."""
        return self._validation if self._sections is None else self._sections.validation()

    @property
    def errors(self) -> tuple[StageError, ...]:
        """Errors raised by the pipeline's stages."""
        return self._errors if self._sections is None else self._sections.errors()

    def _key(self) -> tuple[Any, ...]:
        return (self.run, self.pipeline, self.results, self.validation, self.errors)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RunMetadata:
            return NotImplemented
        assert isinstance(other, RunMetadata)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RunMetadata(run={self.run!r}, pipeline={self.pipeline!r}, "
            f"results={self.results!r}, validation={self.validation!r}, errors={self.errors!r})"
        )
