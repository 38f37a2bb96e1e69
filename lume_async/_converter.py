"""The package's one private cattrs converter, and JSON in and out.

Everything the SDK reads from the wire goes through here, so that any malformed answer becomes a
``ResponseValidationError`` naming the bad field (``$.metadata.results.input_rows``) and nothing
from cattrs, orjson or ``TypeError`` reaches a user unwrapped. Primitive fields are checked
strictly (a number where a string belongs is an error, not silently ``str()``-ed); unknown
fields are ignored; ``null`` reads as an empty tuple for list fields.

``decode_run`` and ``decode_page`` are the transport's hot path: decoding a run is a large part
of the client's cost per request, so they first try a hand-written decoder for ``RunData`` and
fall back to the generated, fully detailed one only when that fails, to build the error message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
import orjson
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.orjson import make_converter
from cattrs.v import format_exception

from . import models as _models
from ._exceptions import ResponseValidationError
from .models import (
    FieldError,
    Flow,
    LogEntry,
    Page,
    PipelineMetadata,
    RejectedRow,
    ResultsMetadata,
    RunData,
    RunErrorInfo,
    RunInfo,
    RunMetadata,
    RunStatus,
    StageError,
    StageTimings,
    TargetLocations,
    TopError,
    ValidationMetadata,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "converter",
    "decode_page",
    "decode_run",
    "dumps",
    "loads",
    "run_from_obj",
    "structure",
    "unstructure",
]

T = TypeVar("T")

_MAX_ERRORS_IN_MESSAGE: Final = 3


# --- strict leaf hooks ----------------------------------------------------------------------------


class _WireTypeError(TypeError):
    """A value of the wrong JSON type; its message is shown as is."""


class _WireValueError(ValueError):
    """A value of the right JSON type that does not parse; its message is shown as is."""


_JSON_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _bad(value: Any, expected: str) -> _WireTypeError:
    got = _JSON_TYPE_NAMES.get(value.__class__, type(value).__name__)
    return _WireTypeError(f"expected {expected}, got {got}")


def _structure_str(value: Any, _: Any) -> str:
    if value.__class__ is str:
        return value
    raise _bad(value, "a string")


def _structure_int(value: Any, _: Any) -> int:
    if value.__class__ is int:
        return value
    raise _bad(value, "an integer")


def _structure_float(value: Any, _: Any) -> float:
    cls = value.__class__
    if cls is float:
        return value  # type: ignore[no-any-return]
    if cls is int:
        return float(value)
    raise _bad(value, "a number")


def _structure_bool(value: Any, _: Any) -> bool:
    if value.__class__ is bool:
        return value
    raise _bad(value, "a boolean")


def _parse_datetime(value: Any) -> datetime:
    """An aware datetime from ISO-8601; ``Z`` and offsets are kept, a naive time is taken as UTC."""
    if value.__class__ is not str:
        raise _bad(value, "an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _WireValueError(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _structure_datetime(value: Any, _: Any) -> datetime:
    return _parse_datetime(value)


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_STATUS_BY_VALUE: Final[dict[str, RunStatus]] = {s.value: s for s in RunStatus}


def _parse_status(value: Any) -> RunStatus:
    known = _STATUS_BY_VALUE.get(value) if value.__class__ is str else None
    if known is not None:
        return known
    if value.__class__ is not str:
        raise _bad(value, "a status string")
    try:
        return RunStatus(value)
    except ValueError:
        raise _WireValueError(f"not a run status: {value[:40]!r}") from None


def _structure_status(value: Any, _: Any) -> RunStatus:
    return _parse_status(value)


def _structure_json_object(value: Any, _: Any) -> dict[str, Any]:
    # Free-form JSON objects (run_metadata, source records, log details) are passed through:
    # orjson already produced fresh dicts with string keys, so copying them would only cost time.
    if value.__class__ is dict:
        return value
    raise _bad(value, "a JSON object")


def _is_json_object_type(cls: Any) -> bool:
    return cls == dict[str, Any] or cls is dict


def _is_homogeneous_tuple(cls: Any) -> bool:
    args = getattr(cls, "__args__", None)
    return getattr(cls, "__origin__", None) is tuple and args is not None and args[-1:] == (...,)


def _tuple_hook_factory(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs' own tuple hook, made strict (a JSON array, not any iterable such as a string)
    # and tolerant of ``null`` for an empty list.
    inner = homogenous_tuple_structure_factory(cls, conv)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if value.__class__ is not list:
            raise _bad(value, "an array")
        return inner(value, cls)  # type: ignore[no-any-return]

    return structure_tuple


def _attrs_hook_factory(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # The generated hook, behind a check that the value is a JSON object at all: otherwise a
    # string or an array reads as "every field missing", which hides the real problem.
    # Keys are the init names (a private field ``_metadata`` reads ``metadata``).
    inner = make_dict_structure_fn(cls, conv, _cattrs_use_alias=True)

    def structure_object(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            raise _bad(value, "an object")
        return inner(value, cls)

    return structure_object


def _make_converter() -> cattrs.Converter:
    conv = make_converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook(RunStatus, _structure_status)
    conv.register_unstructure_hook(RunStatus, lambda s: s.value)
    conv.register_structure_hook_func(_is_json_object_type, _structure_json_object)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_hook_factory)
    return conv


converter: Final = _make_converter()
"""The one converter of the package (never cattrs' global one)."""


# --- public-to-the-package API --------------------------------------------------------------------


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON, or raise ``ResponseValidationError`` saying where it broke."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResponseValidationError(f"response is not valid JSON: {exc}") from exc


def dumps(obj: Any) -> bytes:
    """Serialise models or plain values to compact JSON bytes."""
    return orjson.dumps(unstructure(obj))


def unstructure(obj: Any) -> Any:
    """Models to plain JSON-ready values (datetimes as ISO-8601 with ``Z``, tuples as lists)."""
    return converter.unstructure(obj)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _WireTypeError | _WireValueError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return format_exception(exc, type_)


def _describe(exc: BaseException, path: str = "$") -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, path=path, format_exception=_format_exception)
    else:
        messages = [f"{_format_exception(exc, None)} @ {path}"]
    # RunData keeps its metadata in a private field; the wire (and the message) call it metadata.
    messages = [m.replace("._metadata", ".metadata") for m in messages]
    shown = "; ".join(messages[:_MAX_ERRORS_IN_MESSAGE])
    more = len(messages) - _MAX_ERRORS_IN_MESSAGE
    return f"{shown}; and {more} more" if more > 0 else shown


def structure(obj: Any, cls: type[T], *, what: str | None = None, path: str = "$") -> T:
    """Build ``cls`` from parsed JSON, or raise ``ResponseValidationError`` naming the bad field.

    ``path`` is where ``obj`` sits in the answer, for the message (``$.metadata``).
    """
    try:
        return converter.structure(obj, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        name = what or getattr(cls, "__name__", None) or str(cls)
        raise ResponseValidationError(
            f"unexpected {name} in response: {_describe(exc, path)}"
        ) from exc


# --- hot path: hand-written RunData decoder -------------------------------------------------------
#
# It only ever returns a correct value or raises; any exception makes the caller redo the work with
# the generated converter, which is slower but names the failing field. Checks mirror the strict
# hooks above (exact types; ints accepted as floats; unknown keys ignored).


class _Mismatch(Exception):
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
    raise _Mismatch


def _opt_int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is None or v.__class__ is int:
        return v
    raise _Mismatch


def _opt_float(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is None or v.__class__ is float:
        return v
    if v.__class__ is int:
        return float(v)
    raise _Mismatch


def _opt_dt(d: dict[str, Any], key: str) -> datetime | None:
    v = d.get(key)
    return None if v is None else _parse_datetime(v)


def _opt_obj(d: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None or v.__class__ is dict:
        return v
    raise _Mismatch


def _list(d: dict[str, Any], key: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if v.__class__ is list:
        return v
    raise _Mismatch


def _fast_metadata(m: dict[str, Any]) -> RunMetadata:
    run = pipeline = results = validation = None
    if (r := _opt_obj(m, "run")) is not None:
        run = _RunInfo(
            _opt_str(r, "run_id"),
            _opt_str(r, "flow_version"),
            _opt_str(r, "source_path"),
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
                raise _Mismatch
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
            raise _Mismatch
        errors.append(
            _StageError(_opt_str(e, "stage"), _opt_str(e, "error_code"), _opt_str(e, "message"))
        )
    return _RunMetadata(run, pipeline, results, validation, tuple(errors))


def _fast_run(d: Any) -> RunData:
    if d.__class__ is not dict:
        raise _Mismatch
    run_id, flow_version = d["id"], d["flow_version"]
    if run_id.__class__ is not str or flow_version.__class__ is not str:
        raise _Mismatch
    tags = _list(d, "tags")
    for tag in tags:
        if tag.__class__ is not str:
            raise _Mismatch
    metadata = _opt_obj(d, "metadata")
    error = None
    if (e := _opt_obj(d, "error")) is not None:
        code, message = e["code"], e["message"]
        if code.__class__ is not str or message.__class__ is not str:
            raise _Mismatch
        error = _RunErrorInfo(code, message)
    return _RunData(
        run_id,
        _parse_status(d["status"]),
        flow_version,
        _opt_str(d, "source_path"),
        _opt_str(d, "label"),
        tuple(tags),
        _opt_obj(d, "run_metadata"),
        _parse_datetime(d["created_at"]),
        _parse_datetime(d["updated_at"]),
        None,
        error,
        metadata,
    )


def _decode_metadata(obj: dict[str, Any]) -> RunMetadata:
    try:
        return _fast_metadata(obj)
    except Exception:  # any miss is explained by the detailed path
        return structure(obj, RunMetadata, what="run", path="$.metadata")


_models._metadata_decoder = _decode_metadata


def _unstructure_run(run: RunData) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "flow_version": run.flow_version,
        "source_path": run.source_path,
        "label": run.label,
        "tags": list(run.tags),
        "run_metadata": run.run_metadata,
        "created_at": converter.unstructure(run.created_at),
        "updated_at": converter.unstructure(run.updated_at),
        "metadata": converter.unstructure(run.metadata),
        "error": converter.unstructure(run.error),
    }


converter.register_unstructure_hook(RunData, _unstructure_run)


def _structure_run(obj: Any, _: Any = None) -> RunData:
    try:
        return _fast_run(obj)
    except Exception:  # any miss is explained by the detailed path
        return _detailed_run(obj, RunData)  # type: ignore[no-any-return]


_detailed_run: Final = converter.get_structure_hook(RunData)
converter.register_structure_hook(RunData, _structure_run)


def run_from_obj(obj: Any, *, what: str = "run") -> RunData:
    """A ``RunData`` from already parsed JSON (e.g. one item of a batch answer)."""
    try:
        return _fast_run(obj)
    except Exception:
        return structure(obj, RunData, what=what)


def decode_run(data: bytes | bytearray | memoryview | str) -> RunData:
    """Parse one run JSON body: the hottest call of the SDK."""
    return run_from_obj(loads(data))


_page_types: dict[Any, Any] = {}


def decode_page(data: bytes | bytearray | memoryview | str, item_cls: type[T]) -> Page[T]:
    """Parse a page envelope ``{items, page, size, total, pages}`` of ``item_cls`` items."""
    obj = loads(data)
    page_type = _page_types.get(item_cls)
    if page_type is None:
        page_type = _page_types.setdefault(item_cls, Page[item_cls])  # type: ignore[valid-type]
    name = getattr(item_cls, "__name__", None) or str(item_cls)
    return structure(obj, page_type, what=f"page of {name}")


def _warm_up() -> None:
    """Generate the hooks now, so the first request does not pay for code generation."""
    for cls in (RunData, WebhookEvent, RejectedRow, LogEntry, Flow, FieldError):
        converter.get_structure_hook(cls)
        converter.get_unstructure_hook(cls)
    for item in (dict[str, Any], RejectedRow, LogEntry, RunData, Flow, WebhookEndpoint):
        converter.get_structure_hook(_page_types.setdefault(item, Page[item]))  # type: ignore[valid-type]


_warm_up()
