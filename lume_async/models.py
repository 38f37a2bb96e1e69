"""Typed, immutable views of what the Lume API sends and receives.

Every model is a frozen ``attrs`` class: values are safe to share between tasks and threads, and
``attrs.evolve`` gives a changed copy. They are built from the wire by the package's private
converter, which ignores fields it does not know, so a newer server never breaks an older client.
The run metadata tree is fully optional because the service fills it in while a run progresses.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

import attrs
import orjson

__all__ = [
    "BatchOutcome",
    "FieldError",
    "Flow",
    "FlowVersion",
    "LogEntry",
    "Page",
    "PipelineMetadata",
    "RejectedRow",
    "ResultsMetadata",
    "RunData",
    "RunErrorInfo",
    "RunInfo",
    "RunMetadata",
    "RunRequest",
    "RunStatus",
    "StageError",
    "StageTimings",
    "TargetLocations",
    "TopError",
    "ValidationMetadata",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookRunData",
]

T = TypeVar("T")

# Unknown statuses are kept as pseudo-members; past this many distinct ones they are no longer
# cached, so a misbehaving server cannot grow the enum's lookup table without bound.
_MAX_CACHED_UNKNOWN_STATUSES = 64
_unknown_status_lock = threading.Lock()


class RunStatus(enum.StrEnum):
    """Where a run is in its lifecycle.

    The legacy wire value ``INCOMPLETE`` reads as ``PARTIAL_FAILED``. A value this client does not
    know (a status added to the service later) never fails parsing: it becomes a pseudo-member whose
    ``value`` and ``str()`` are the wire string, and which is not terminal, so waiting goes on.
    """

    CREATED = "CREATED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SYNCING_SOURCE = "SYNCING_SOURCE"
    TRANSFORMING = "TRANSFORMING"
    SYNCING_TARGET = "SYNCING_TARGET"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL_FAILED = "PARTIAL_FAILED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        """True for SUCCEEDED, PARTIAL_FAILED, FAILED, CRASHED and CANCELED: no more changes."""
        return self in _TERMINAL_STATUSES

    @property
    def is_known(self) -> bool:
        """False for a status this version of the SDK does not know."""
        return self._name_ in type(self).__members__

    @classmethod
    def _missing_(cls, value: object) -> RunStatus | None:
        if not isinstance(value, str) or not value:
            return None
        canonical = value.upper()
        if canonical == "INCOMPLETE":
            return cls.PARTIAL_FAILED
        known = cls.__members__.get(canonical)
        if known is not None:
            return known
        with _unknown_status_lock:
            cached = cls._value2member_map_.get(value)
            if cached is not None:
                return cast(RunStatus, cached)
            pseudo = str.__new__(cls, value)
            pseudo._name_ = value
            pseudo._value_ = value
            if len(cls._value2member_map_) < len(cls.__members__) + _MAX_CACHED_UNKNOWN_STATUSES:
                cls._value2member_map_[value] = pseudo
            return pseudo


_TERMINAL_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.PARTIAL_FAILED,
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.CANCELED,
    }
)


# --- run metadata (the LumeRun metadata schema) ---------------------------------------------------


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


# --- runs -----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RunErrorInfo:
    """Why a run ended FAILED or CRASHED."""

    code: str
    message: str


# How ``RunData.metadata`` is built from its JSON on first read; set by the private converter.
_metadata_decoder: Callable[[dict[str, Any]], RunMetadata] | None = None


@attrs.frozen(kw_only=True, eq=False)
class RunData:
    """A run exactly as the service returned it (the state behind an ``AsyncRun`` handle).

    ``metadata`` is decoded from the answer when it is first read, not when the run is parsed:
    polling reads many runs and looks at the metadata of few, and the metadata tree is most of
    the cost of a run. A malformed tree raises ResponseValidationError on that first read.
    """

    id: str
    status: RunStatus
    flow_version: str
    source_path: str | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    run_metadata: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    _metadata: RunMetadata | None = attrs.field(default=None, alias="metadata", repr=False)
    error: RunErrorInfo | None = None
    _metadata_json: dict[str, Any] | None = attrs.field(
        default=None, alias="metadata_json", repr=False
    )

    @property
    def metadata(self) -> RunMetadata | None:
        """Everything the pipeline reported about the run; complete once it is terminal."""
        if self._metadata is None and self._metadata_json is not None:
            assert _metadata_decoder is not None
            object.__setattr__(self, "_metadata", _metadata_decoder(self._metadata_json))
            object.__setattr__(self, "_metadata_json", None)
        return self._metadata

    @property
    def is_terminal(self) -> bool:
        """True once the run's status can no longer change."""
        return self.status.is_terminal

    def _key(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.status,
            self.flow_version,
            self.source_path,
            self.label,
            self.tags,
            self.run_metadata,
            self.created_at,
            self.updated_at,
            self.metadata,
            self.error,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RunData:
            return NotImplemented
        assert isinstance(other, RunData)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # run_metadata is a dict

    def __repr__(self) -> str:
        return (
            f"RunData(id={self.id!r}, status={self.status!r}, flow_version={self.flow_version!r}, "
            f"source_path={self.source_path!r}, label={self.label!r}, tags={self.tags!r}, "
            f"created_at={self.created_at!r}, updated_at={self.updated_at!r}, "
            f"metadata={self.metadata!r}, error={self.error!r})"
        )


_FLOW_VERSION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*:v[0-9]+")


def _tags_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise TypeError(f"tags must be a sequence of strings, not a single {type(value).__name__}")
    tags = tuple(value)
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TypeError(f"tags[{i}] must be a str, not {type(tag).__name__}")
    return tags


def _json_error(what: str, exc: Exception) -> str:
    return f"{what} is not JSON-serialisable: {exc}"


@attrs.frozen
class RunRequest:
    """One run to create, checked on construction so a bad batch fails before any request.

    Exactly one of ``source_path`` (a location the service reads) and ``source_data`` (rows sent
    inline, a sequence of JSON objects) is given. ``flow_version`` is written ``name:vN``.
    ``idempotency_key`` is sent as a header, so retries of this create never make a second run.
    """

    flow_version: str
    source_path: str | None = attrs.field(default=None, kw_only=True)
    source_data: Sequence[Mapping[str, Any]] | None = attrs.field(default=None, kw_only=True)
    run_metadata: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)
    force_rerun: bool = attrs.field(default=False, kw_only=True)
    label: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags_tuple)
    idempotency_key: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self._check_flow_version()
        self._check_source()
        if self.run_metadata is not None:
            if not isinstance(self.run_metadata, Mapping):
                raise TypeError(
                    f"run_metadata must be a dict, not {type(self.run_metadata).__name__}"
                )
            try:
                orjson.dumps(dict(self.run_metadata))
            except TypeError as exc:
                raise TypeError(_json_error("run_metadata", exc)) from None
        if not isinstance(self.force_rerun, bool):
            raise TypeError(f"force_rerun must be a bool, not {type(self.force_rerun).__name__}")
        if self.label is not None and not isinstance(self.label, str):
            raise TypeError(f"label must be a str or None, not {type(self.label).__name__}")
        self._check_idempotency_key()

    def _check_flow_version(self) -> None:
        fv = self.flow_version
        if not isinstance(fv, str):
            raise TypeError(f"flow_version must be a str, not {type(fv).__name__}")
        if not fv:
            raise ValueError("flow_version must not be empty (expected 'name:vN')")
        if not _FLOW_VERSION_RE.fullmatch(fv):
            raise ValueError(
                f"flow_version {fv!r} is not of the form 'name:vN', e.g. 'customer_cleaner:v1'"
            )

    def _check_source(self) -> None:
        path, data = self.source_path, self.source_data
        if (path is None) == (data is None):
            raise ValueError("give exactly one of source_path and source_data")
        if path is not None:
            if not isinstance(path, str):
                raise TypeError(f"source_path must be a str, not {type(path).__name__}")
            if not path.strip():
                raise ValueError("source_path must not be empty")
            return
        if isinstance(data, str | bytes | Mapping) or not isinstance(data, Sequence):
            raise TypeError(
                f"source_data must be a sequence of dicts (JSON objects), not {type(data).__name__}"
            )
        rows: list[Any] = list(data)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"source_data[{i}] must be a dict (a JSON object), not {type(row).__name__}"
                )
            if not isinstance(row, dict):
                rows[i] = dict(row)
        try:
            orjson.dumps(rows)
        except TypeError:
            # Serialise row by row only on failure, to name the offending row cheaply.
            for i, row in enumerate(rows):
                try:
                    orjson.dumps(row)
                except TypeError as exc:
                    raise TypeError(_json_error(f"source_data[{i}]", exc)) from None
            raise
        object.__setattr__(self, "source_data", tuple(rows))

    def _check_idempotency_key(self) -> None:
        key = self.idempotency_key
        if key is None:
            return
        if not isinstance(key, str):
            raise TypeError(f"idempotency_key must be a str or None, not {type(key).__name__}")
        if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
            raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs`` (the idempotency key travels as a header)."""
        body: dict[str, Any] = {"flow_version": self.flow_version}
        if self.source_path is not None:
            body["source_path"] = self.source_path
        else:
            body["source_data"] = list(self.source_data or ())
        if self.run_metadata is not None:
            body["run_metadata"] = dict(self.run_metadata)
        if self.force_rerun:
            body["force_rerun"] = True
        if self.label is not None:
            body["label"] = self.label
        if self.tags:
            body["tags"] = list(self.tags)
        return body


# --- pages, rows, logs, flows ---------------------------------------------------------------------


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing: the items and where they sit in the whole.

    ``total`` and ``pages`` are None for cursor-paged listings, which cannot know them cheaply;
    ``next_cursor`` is then where the next page starts.
    """

    items: tuple[T, ...]
    page: int = 1
    size: int = 0
    total: int | None = None
    pages: int | None = None
    next_cursor: str | None = None

    @property
    def has_next(self) -> bool:
        """True when another page may follow this one."""
        if self.next_cursor is not None:
            return True
        if self.pages is not None:
            return self.page < self.pages
        return False

    def __len__(self) -> int:
        return len(self.items)


@attrs.frozen(kw_only=True)
class LogEntry:
    """One line of a run's log."""

    time: datetime
    level: str
    message: str
    code: str | None = None
    details: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class FieldError:
    """Why one field of a source row was rejected."""

    field: str | None = None
    error_code: str
    message: str | None = None


@attrs.frozen(kw_only=True)
class RejectedRow:
    """A source row the flow refused, with its position in the source and the reasons."""

    index: int
    source_record: dict[str, Any]
    errors: tuple[FieldError, ...] = ()


@attrs.frozen(kw_only=True)
class FlowVersion:
    """One published version of a flow; ``id`` is the ``name:vN`` string runs refer to."""

    version: str
    id: str
    created_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Flow:
    """A transformation flow and its published versions."""

    name: str
    description: str | None = None
    versions: tuple[FlowVersion, ...] = ()


# --- batches --------------------------------------------------------------------------------------


@attrs.frozen
class BatchOutcome(Generic[T]):
    """The result of one item of a batch call, at the item's ``index`` in the input.

    Exactly one of ``value`` (when ``ok``) and ``error`` is set; one failed item never aborts the
    others, so a batch returns one outcome per input.
    """

    index: int
    ok: bool
    value: T | None = None
    error: BaseException | None = None

    @classmethod
    def success(cls, index: int, value: T) -> BatchOutcome[T]:
        """An outcome that holds a value."""
        return cls(index, True, value, None)

    @classmethod
    def failure(cls, index: int, error: BaseException) -> BatchOutcome[T]:
        """An outcome that holds the error the item raised."""
        return cls(index, False, None, error)

    def unwrap(self) -> T:
        """The value, or raise the item's error."""
        if not self.ok:
            if self.error is not None:
                raise self.error
            raise RuntimeError(f"batch item {self.index} failed without an error")
        return cast(T, self.value)


# --- webhooks -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WebhookEndpoint:
    """A URL the service sends run completion events to; ``secret`` signs them (never shown)."""

    id: str
    url: str
    events: tuple[str, ...] = ()
    secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class WebhookRunData:
    """The run a webhook event is about, as it stood when the event was sent."""

    run_id: str
    status: RunStatus
    flow_version: str | None = None
    source_path: str | None = None
    run_metadata: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook delivery; ``type`` is e.g. ``run.succeeded``; ``id`` survives retries."""

    id: str
    type: str
    created_at: datetime
    data: WebhookRunData
