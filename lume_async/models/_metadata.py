"""The run metadata tree (the LumeRun metadata schema), filled in while a run progresses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final, Protocol, final

import attrs

from .._status import RunStatus
from ._schema_view import SchemaView

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


@final
class _Unread:
    """What a section of metadata read from an answer holds until it is first read.

    ``attrs.evolve`` passes each field on as it is, so an evolved copy reads the sections it was
    not given from the answer, and keeps the ones it was given (``None`` included).
    """

    __slots__ = ()

    def __reduce__(self) -> str:
        return "UNREAD"  # pickled and copied as the one module-level instance

    def __repr__(self) -> str:
        return "<unread>"


UNREAD: Final[Any] = _Unread()


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


class MetadataSections(Protocol):
    """The sections of a run's metadata as its answer carried them (made by the converter).

    Each method decodes its section on first call and returns the same value after.
    """

    def run(self) -> RunInfo | None: ...
    def pipeline(self) -> PipelineMetadata | None: ...
    def results(self) -> ResultsMetadata | None: ...
    def validation(self) -> ValidationMetadata | None: ...
    def errors(self) -> tuple[StageError, ...]: ...
    def raw(self, name: str) -> bytes:
        """The section ``name`` as the answer carried it, as compact JSON."""
        ...


@attrs.frozen(kw_only=True, eq=False)
class RunMetadata(SchemaView):
    """Everything the pipeline reports about a run; partial while the run is in flight.

    Typed attributes (``metadata.results.mapped_rows``) are the primary way to read it; it also
    reads as the documented JSON object (``metadata["results"]["mapped_rows"]``, ``.get()``,
    ``.keys()``), and knows two shortcuts besides its keys: ``metadata["target_locations"]`` is
    ``results.target_locations``, and ``metadata.get("error_message")`` the message of the first
    error (None when there is none).

    Read from an answer, each section is decoded when it is first read: most readers look at one
    or two (``results.mapped_rows``), and the models of the whole tree are most of its cost. A
    malformed section raises ResponseValidationError on that first read.

    Attributes:
        run: The run's identity, status and span.
        pipeline: Timings of the pipeline and its stages.
        results: Row counts and output locations.
        validation: The validation tests' outcome.
        errors: Errors raised by the stages of a FAILED or CRASHED run.
    """

    _run: RunInfo | None = attrs.field(default=None, alias="run")
    _pipeline: PipelineMetadata | None = attrs.field(default=None, alias="pipeline")
    _results: ResultsMetadata | None = attrs.field(default=None, alias="results")
    _validation: ValidationMetadata | None = attrs.field(default=None, alias="validation")
    _errors: tuple[StageError, ...] = attrs.field(default=(), alias="errors")
    # Set by the converter, with UNREAD in the sections above: each is then read from it.
    _sections: MetadataSections | None = attrs.field(
        default=None, alias="sections", repr=False, metadata={"schema": False}
    )

    @property
    def run(self) -> RunInfo | None:
        """The run's identity, status and span."""
        run = self._run
        if run is UNREAD:
            return self._sections.run()  # type: ignore[union-attr]
        return run

    @property
    def pipeline(self) -> PipelineMetadata | None:
        """Timings of the pipeline and its stages."""
        pipeline = self._pipeline
        if pipeline is UNREAD:
            return self._sections.pipeline()  # type: ignore[union-attr]
        return pipeline

    @property
    def results(self) -> ResultsMetadata | None:
        """Row counts and output locations."""
        results = self._results
        if results is UNREAD:
            return self._sections.results()  # type: ignore[union-attr]
        return results

    @property
    def validation(self) -> ValidationMetadata | None:
        """The validation tests' outcome."""
        validation = self._validation
        if validation is UNREAD:
            return self._sections.validation()  # type: ignore[union-attr]
        return validation

    @property
    def errors(self) -> tuple[StageError, ...]:
        """Errors raised by the stages of a FAILED or CRASHED run."""
        errors = self._errors
        if errors is UNREAD:
            return self._sections.errors()  # type: ignore[union-attr]
        return errors

    @property
    def target_locations(self) -> TargetLocations | None:
        """Where the mapped and rejected rows were written (``results.target_locations``)."""
        results = self.results
        return results.target_locations if results is not None else None

    @property
    def error_message(self) -> str | None:
        """The message of the first error the run reported, or None."""
        errors = self.errors
        return errors[0].message if errors else None

    _aliases: ClassVar[frozenset[str]] = frozenset({"target_locations", "error_message"})

    def _key(self) -> tuple[Any, ...]:
        """The sections, a malformed one as a marker holding its JSON: ``==``, ``hash`` and
        ``repr`` must not raise whatever the service sent."""
        return tuple(self._section_or_raw(name) for name in _SECTIONS)

    def _section_or_raw(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except Exception:
            assert self._sections is not None  # sections given to the constructor are typed
            return _Malformed(self._sections.raw(name))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RunMetadata:
            return NotImplemented
        assert isinstance(other, RunMetadata)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(_SECTIONS, self._key(), strict=True)
        )
        return f"RunMetadata({shown})"


_SECTIONS: Final = ("run", "pipeline", "results", "validation", "errors")


@attrs.frozen
class _Malformed:
    """A section of metadata that does not decode, in ``RunMetadata``'s ``==`` and ``repr``."""

    json: bytes

    def __repr__(self) -> str:
        return "<malformed>"
