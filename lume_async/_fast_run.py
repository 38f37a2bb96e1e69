"""The hand-written ``RunData`` decoder: the fast path for the SDK's hottest call.

It only ever returns a correct value or raises; on any exception the caller redoes the work with
the converter's generated hooks, which are slower but name the failing field. Checks mirror the
converter's strict hooks (exact types; ints accepted as floats; unknown keys ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

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

__all__ = ["Mismatch", "fast_metadata", "fast_run"]

T = TypeVar("T")


class Mismatch(Exception):
    """The fast decoder met something it does not accept; the detailed path explains what."""


def _positional_builder(cls: type[T]) -> Callable[..., T]:
    """A constructor taking ``cls``'s fields positionally, in declaration order.

    It fills the slots directly, which costs about half of calling the keyword-only frozen
    ``__init__``; a run builds eleven models, so this is a visible share of a request. Only for
    models whose ``__init__`` does nothing but assign (no validators, converters or hooks).
    """
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    fields = attrs.fields(cls)
    if (
        hasattr(cls, "__attrs_post_init__")
        or hasattr(cls, "__attrs_pre_init__")
        or "__attrs_cached_hash__" in getattr(cls, "__slots__", ())
        or any(f.validator or f.converter or not f.init for f in fields)
    ):
        raise TypeError(f"{cls.__name__} needs its own __init__")
    names = [f.name for f in fields]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    lines += [f"    _set_{n}(obj, {n})" for n in names]
    lines.append("    return obj")
    exec("\n".join(lines), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


_RunInfo = _positional_builder(RunInfo)
_StageTimings = _positional_builder(StageTimings)
_PipelineMetadata = _positional_builder(PipelineMetadata)
_TargetLocations = _positional_builder(TargetLocations)
_ResultsMetadata = _positional_builder(ResultsMetadata)
_TopError = _positional_builder(TopError)
_ValidationMetadata = _positional_builder(ValidationMetadata)
_StageError = _positional_builder(StageError)
_RunMetadata = _positional_builder(RunMetadata)
_RunErrorInfo = _positional_builder(RunErrorInfo)
_RunData = _positional_builder(RunData)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None or v.__class__ is str:
        return v
    raise Mismatch


def _opt_int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is None or v.__class__ is int:
        return v
    raise Mismatch


def _opt_float(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is None or v.__class__ is float:
        return v
    if v.__class__ is int:
        return float(v)
    raise Mismatch


def _opt_dt(d: dict[str, Any], key: str) -> datetime | None:
    v = d.get(key)
    return None if v is None else parse_datetime(v)


def _opt_obj(d: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None or v.__class__ is dict:
        return v
    raise Mismatch


def _list(d: dict[str, Any], key: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if v.__class__ is list:
        return v
    raise Mismatch


def fast_metadata(m: dict[str, Any]) -> RunMetadata:
    run = pipeline = results = validation = None
    if (r := _opt_obj(m, "run")) is not None:
        run = _RunInfo(
            _opt_str(r, "run_id"),
            _opt_str(r, "flow_version"),
            _opt_str(r, "source_path"),
            None if (status := r.get("status")) is None else parse_status(status),
            _opt_dt(r, "started_at"),
            _opt_dt(r, "finished_at"),
        )
    if (p := _opt_obj(m, "pipeline")) is not None:
        stages = None
        if (s := _opt_obj(p, "stages")) is not None:
            stages = _StageTimings(
                _opt_float(s, "sync_source_seconds"),
                _opt_float(s, "transform_seconds"),
                _opt_float(s, "sync_target_seconds"),
            )
        pipeline = _PipelineMetadata(
            _opt_dt(p, "created_at"),
            _opt_dt(p, "completed_at"),
            _opt_float(p, "duration_seconds"),
            stages,
        )
    if (res := _opt_obj(m, "results")) is not None:
        locations = None
        if (t := _opt_obj(res, "target_locations")) is not None:
            locations = _TargetLocations(_opt_str(t, "mapped"), _opt_str(t, "rejects"))
        results = _ResultsMetadata(
            _opt_int(res, "input_rows"),
            _opt_int(res, "mapped_rows"),
            _opt_int(res, "rejected_rows"),
            locations,
        )
    if (v := _opt_obj(m, "validation")) is not None:
        top = []
        for e in _list(v, "top_errors"):
            if e.__class__ is not dict:
                raise Mismatch
            top.append(
                _TopError(_opt_str(e, "error_code"), _opt_str(e, "field"), _opt_int(e, "count"))
            )
        validation = _ValidationMetadata(
            _opt_int(v, "tests_executed"),
            _opt_int(v, "tests_failed"),
            _opt_float(v, "error_rate"),
            tuple(top),
        )
    errors = []
    for e in _list(m, "errors"):
        if e.__class__ is not dict:
            raise Mismatch
        errors.append(
            _StageError(_opt_str(e, "stage"), _opt_str(e, "error_code"), _opt_str(e, "message"))
        )
    return _RunMetadata(run, pipeline, results, validation, tuple(errors))


def _names(d: dict[str, Any], key: str) -> tuple[str, ...]:
    names = _list(d, key)
    for name in names:
        if name.__class__ is not str:
            raise Mismatch
    return tuple(names)


def fast_run(d: Any, request_id: str | None = None) -> RunData:
    if d.__class__ is not dict:
        raise Mismatch
    run_id, flow_version = d["id"], d["flow_version"]
    if run_id.__class__ is not str or flow_version.__class__ is not str:
        raise Mismatch
    tags = _list(d, "tags")
    for tag in tags:
        if tag.__class__ is not str:
            raise Mismatch
    metadata = _opt_obj(d, "metadata")
    error = None
    if (e := _opt_obj(d, "error")) is not None:
        code, message = e["code"], e["message"]
        if code.__class__ is not str or message.__class__ is not str:
            raise Mismatch
        error = _RunErrorInfo(code, message)
    return _RunData(
        run_id,
        parse_status(d["status"]),
        flow_version,
        _opt_str(d, "source_path"),
        _opt_str(d, "label"),
        tuple(tags),
        _opt_obj(d, "run_metadata"),
        parse_datetime(d["created_at"]),
        parse_datetime(d["updated_at"]),
        None,
        error,
        metadata,
        _opt_str(d, "created_by"),
        _opt_str(d, "run_owner"),
        _names(d, "monitoring_by"),
        _names(d, "monitoring_groups"),
        _names(d, "managing_by"),
        _names(d, "managing_groups"),
        request_id,
    )
