"""The hand-written run decoder: the fast path of every answer that carries a run.

Plain code, no generated or compiled functions: every model is built by its own keyword-only
constructor, or (``RunData``, the one built for every answer) slot by slot through a setter named
after each field, so a field can only ever receive the value of the JSON key of the same name. It
returns a correct value or raises; on any exception the converter redoes the work with cattrs'
detailed hooks, which are slower but name the failing field. The checks mirror those hooks (exact
JSON types, integers accepted as floats, ``null`` as an empty list, unknown keys ignored), and
``tests/test_run_decoder.py`` holds the two to the same answers over generated runs.

A run's ``metadata`` object is handed to the caller's ``source.keep``, and decoded section by
section as it is read (the ``*_from_json`` functions below): most answers are read for their
status, and the models of the metadata tree are most of a run's cost in time and in memory.
Strings every run repeats (flow versions, tags, principals) are interned, and ``updated_at`` shares
``created_at``'s object when they are equal, so a million handles do not hold a million copies.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, final

from ._wire import parse_datetime, parse_status
from .models import (
    PipelineMetadata,
    ResultsMetadata,
    RunData,
    RunErrorInfo,
    RunInfo,
    RunMetadata,
    StageError,
    StageTimings,
    TargetLocations,
    TopError,
    ValidationMetadata,
)
from .models._metadata import UNREAD

if TYPE_CHECKING:
    from .models._metadata import MetadataSections
    from .models._run_data import MetadataSource

__all__ = [
    "Mismatch",
    "errors_from_json",
    "metadata_view",
    "pipeline_from_json",
    "results_from_json",
    "run_from_json",
    "run_info_from_json",
    "validation_from_json",
]

_intern = sys.intern
_new = object.__new__


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """What sets the slot ``name`` of an instance of the slotted attrs class ``cls``."""
    return cls.__dict__[name].__set__  # type: ignore[no-any-return]


@final
class _RunSlots:
    """The setter of each of ``RunData``'s slots, by its field's name.

    The decoder sets every one of them by name, so no value can land in another field;
    ``tests/test_run_decoder.py`` checks that the fields here are exactly RunData's and that
    every decoded run equals the one cattrs builds through ``RunData.__init__``.
    """

    __slots__ = ()

    id = staticmethod(_setter(RunData, "id"))
    status = staticmethod(_setter(RunData, "status"))
    flow_version = staticmethod(_setter(RunData, "flow_version"))
    source_path = staticmethod(_setter(RunData, "source_path"))
    label = staticmethod(_setter(RunData, "label"))
    tags = staticmethod(_setter(RunData, "tags"))
    run_metadata = staticmethod(_setter(RunData, "run_metadata"))
    created_at = staticmethod(_setter(RunData, "created_at"))
    updated_at = staticmethod(_setter(RunData, "updated_at"))
    metadata = staticmethod(_setter(RunData, "_metadata"))
    error = staticmethod(_setter(RunData, "error"))
    metadata_json = staticmethod(_setter(RunData, "_metadata_json"))
    created_by = staticmethod(_setter(RunData, "created_by"))
    run_owner = staticmethod(_setter(RunData, "run_owner"))
    monitoring_by = staticmethod(_setter(RunData, "monitoring_by"))
    monitoring_groups = staticmethod(_setter(RunData, "monitoring_groups"))
    managing_by = staticmethod(_setter(RunData, "managing_by"))
    managing_groups = staticmethod(_setter(RunData, "managing_groups"))
    request_id = staticmethod(_setter(RunData, "request_id"))


_RUN: Final = _RunSlots()


@final
class _ResultsSlots:
    """The setters of ``ResultsMetadata``'s slots (as _RunSlots)."""

    __slots__ = ()

    input_rows = staticmethod(_setter(ResultsMetadata, "input_rows"))
    mapped_rows = staticmethod(_setter(ResultsMetadata, "mapped_rows"))
    rejected_rows = staticmethod(_setter(ResultsMetadata, "rejected_rows"))
    target_locations = staticmethod(_setter(ResultsMetadata, "target_locations"))


_RESULTS: Final = _ResultsSlots()


@final
class _LocationsSlots:
    """The setters of ``TargetLocations``' slots (as _RunSlots)."""

    __slots__ = ()

    mapped = staticmethod(_setter(TargetLocations, "mapped"))
    rejects = staticmethod(_setter(TargetLocations, "rejects"))


_LOCATIONS: Final = _LocationsSlots()


@final
class _MetadataSlots:
    """The setters of ``RunMetadata``'s slots (as _RunSlots)."""

    __slots__ = ()

    run = staticmethod(_setter(RunMetadata, "_run"))
    pipeline = staticmethod(_setter(RunMetadata, "_pipeline"))
    results = staticmethod(_setter(RunMetadata, "_results"))
    validation = staticmethod(_setter(RunMetadata, "_validation"))
    errors = staticmethod(_setter(RunMetadata, "_errors"))
    sections = staticmethod(_setter(RunMetadata, "_sections"))


_METADATA: Final = _MetadataSlots()


def metadata_view(sections: MetadataSections) -> RunMetadata:
    """A ``RunMetadata`` that reads each of its sections from ``sections`` when first asked."""
    metadata = _new(RunMetadata)
    slot = _METADATA
    slot.run(metadata, UNREAD)
    slot.pipeline(metadata, UNREAD)
    slot.results(metadata, UNREAD)
    slot.validation(metadata, UNREAD)
    slot.errors(metadata, UNREAD)
    slot.sections(metadata, sections)
    return metadata


class Mismatch(Exception):
    """The fast decoder met something it does not accept; the detailed path explains what."""


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None or v.__class__ is str:
        return v
    raise Mismatch(key)


def _int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is None or v.__class__ is int:
        return v
    raise Mismatch(key)


def _float(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is None or v.__class__ is float:
        return v
    if v.__class__ is int:
        return float(v)
    raise Mismatch(key)


def _datetime(d: dict[str, Any], key: str) -> datetime | None:
    v = d.get(key)
    return None if v is None else parse_datetime(v)


def _object(d: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None or v.__class__ is dict:
        return v
    raise Mismatch(key)


def _objects(v: Any, key: str) -> list[dict[str, Any]]:
    if v is None:
        return []
    if v.__class__ is not list:
        raise Mismatch(key)
    for item in v:
        if item.__class__ is not dict:
            raise Mismatch(key)
    return v


# What most runs answer for each permission list: no names (compared with, never changed).
_NONE: Final[list[str]] = []


def _names(d: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list of principals or groups (null reads as none); the names are interned."""
    v = d.get(key)
    if v is None:
        return ()
    if v.__class__ is not list:
        raise Mismatch(key)
    for name in v:
        if name.__class__ is not str:
            raise Mismatch(key)
    return tuple(map(_intern, v))


def run_from_json(
    d: Any,
    source: MetadataSource,
    request_id: str | None = None,
) -> RunData:
    """A ``RunData`` from one parsed run object, which holds what ``source.keep`` makes of its
    metadata until it is read.

    ``request_id`` is the answer's ``x-request-id`` header (a run's body never carries it).
    """
    if d.__class__ is not dict:
        raise Mismatch("$")
    run_id = d["id"]
    flow_version = d["flow_version"]
    created = d["created_at"]
    updated = d["updated_at"]
    if run_id.__class__ is not str or flow_version.__class__ is not str:
        raise Mismatch("id")
    tags = d.get("tags")
    if tags is None:
        tags = ()
    elif tags.__class__ is list:
        for tag in tags:
            if tag.__class__ is not str:
                raise Mismatch("tags")
        tags = tuple(map(_intern, tags))
    else:
        raise Mismatch("tags")
    metadata = d.get("metadata")
    if metadata is not None:
        if metadata.__class__ is not dict:
            raise Mismatch("metadata")
        metadata = source.keep(metadata, d)
    error = d.get("error")
    if error is not None:
        if error.__class__ is not dict:
            raise Mismatch("error")
        code, message = error["code"], error["message"]
        if code.__class__ is not str or message.__class__ is not str:
            raise Mismatch("error")
        error = RunErrorInfo(code=code, message=message)
    # The optional fields are checked inline, not by a call each: this is the hottest function
    # of the SDK, and most of these are absent or null.
    get = d.get
    source_path = get("source_path")
    if source_path is not None and source_path.__class__ is not str:
        raise Mismatch("source_path")
    label = get("label")
    if label is not None and label.__class__ is not str:
        raise Mismatch("label")
    created_by = get("created_by")
    if created_by is not None and created_by.__class__ is not str:
        raise Mismatch("created_by")
    run_owner = get("run_owner")
    if run_owner is not None and run_owner.__class__ is not str:
        raise Mismatch("run_owner")
    run_metadata = get("run_metadata")
    if run_metadata is not None and run_metadata.__class__ is not dict:
        raise Mismatch("run_metadata")
    created_at = parse_datetime(created)
    # Built slot by slot, each set by its own field's name (see _RunSlots): a frozen class's
    # __init__ sets each field through object.__setattr__, twice the time.
    run = _new(RunData)
    slot = _RUN
    slot.id(run, run_id)
    slot.status(run, parse_status(d["status"]))
    slot.flow_version(run, _intern(flow_version))
    slot.source_path(run, source_path)
    slot.label(run, label)
    slot.tags(run, tags)
    slot.run_metadata(run, run_metadata)
    slot.created_at(run, created_at)
    slot.updated_at(run, created_at if updated == created else parse_datetime(updated))
    slot.metadata(run, metadata)  # what was kept, until it is read
    slot.error(run, error)
    slot.metadata_json(run, None if metadata is None else source)
    slot.created_by(run, created_by if created_by is None else _intern(created_by))
    slot.run_owner(run, run_owner if run_owner is None else _intern(run_owner))
    monitoring_by = get("monitoring_by")
    slot.monitoring_by(
        run, () if monitoring_by is None or monitoring_by == _NONE else _names(d, "monitoring_by")
    )
    monitoring_groups = get("monitoring_groups")
    slot.monitoring_groups(
        run,
        ()
        if monitoring_groups is None or monitoring_groups == _NONE
        else _names(d, "monitoring_groups"),
    )
    managing_by = get("managing_by")
    slot.managing_by(
        run, () if managing_by is None or managing_by == _NONE else _names(d, "managing_by")
    )
    managing_groups = get("managing_groups")
    slot.managing_groups(
        run,
        () if managing_groups is None or managing_groups == _NONE else _names(d, "managing_groups"),
    )
    slot.request_id(run, request_id)
    return run


def run_info_from_json(r: Any) -> RunInfo | None:
    """``metadata.run``."""
    if r is None:
        return None
    if r.__class__ is not dict:
        raise Mismatch("run")
    status = r.get("status")
    return RunInfo(
        run_id=_str(r, "run_id"),
        flow_version=_str(r, "flow_version"),
        source_path=_str(r, "source_path"),
        status=None if status is None else parse_status(status),
        started_at=_datetime(r, "started_at"),
        finished_at=_datetime(r, "finished_at"),
    )


def pipeline_from_json(p: Any) -> PipelineMetadata | None:
    """``metadata.pipeline``."""
    if p is None:
        return None
    if p.__class__ is not dict:
        raise Mismatch("pipeline")
    stages = None
    if (s := _object(p, "stages")) is not None:
        stages = StageTimings(
            sync_source_seconds=_float(s, "sync_source_seconds"),
            transform_seconds=_float(s, "transform_seconds"),
            sync_target_seconds=_float(s, "sync_target_seconds"),
        )
    return PipelineMetadata(
        created_at=_datetime(p, "created_at"),
        completed_at=_datetime(p, "completed_at"),
        duration_seconds=_float(p, "duration_seconds"),
        stages=stages,
    )


def results_from_json(r: Any) -> ResultsMetadata | None:
    """``metadata.results``."""
    if r is None:
        return None
    if r.__class__ is not dict:
        raise Mismatch("results")
    get = r.get
    locations = get("target_locations")
    slot = _RESULTS
    if locations is not None:
        if locations.__class__ is not dict:
            raise Mismatch("target_locations")
        mapped, rejects = _str(locations, "mapped"), _str(locations, "rejects")
        locations = _new(TargetLocations)
        _LOCATIONS.mapped(locations, mapped)
        _LOCATIONS.rejects(locations, rejects)
    input_rows, mapped_rows, rejected_rows = (
        get("input_rows"),
        get("mapped_rows"),
        get("rejected_rows"),
    )
    if not (
        (input_rows is None or input_rows.__class__ is int)
        and (mapped_rows is None or mapped_rows.__class__ is int)
        and (rejected_rows is None or rejected_rows.__class__ is int)
    ):
        raise Mismatch("results")
    # The section read most (``results.mapped_rows``): built slot by slot, as a run is.
    results = _new(ResultsMetadata)
    slot.input_rows(results, input_rows)
    slot.mapped_rows(results, mapped_rows)
    slot.rejected_rows(results, rejected_rows)
    slot.target_locations(results, locations)
    return results


def validation_from_json(v: Any) -> ValidationMetadata | None:
    """``metadata.validation``."""
    if v is None:
        return None
    if v.__class__ is not dict:
        raise Mismatch("validation")
    return ValidationMetadata(
        tests_executed=_int(v, "tests_executed"),
        tests_failed=_int(v, "tests_failed"),
        error_rate=_float(v, "error_rate"),
        top_errors=tuple(
            TopError(
                error_code=_str(e, "error_code"), field=_str(e, "field"), count=_int(e, "count")
            )
            for e in _objects(v.get("top_errors"), "top_errors")
        ),
    )


def errors_from_json(m: dict[str, Any]) -> tuple[StageError, ...]:
    """``metadata.errors`` (read from the metadata object itself: absent and null are empty)."""
    return tuple(
        StageError(
            stage=_str(e, "stage"), error_code=_str(e, "error_code"), message=_str(e, "message")
        )
        for e in _objects(m, "errors")
    )
