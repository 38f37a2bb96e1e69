"""The package's one private cattrs converter, and JSON in and out.

Everything the SDK reads from the wire goes through here, so that any malformed answer becomes a
``ResponseValidationError`` naming the bad field (``$.metadata.results.input_rows``) and nothing
from cattrs, orjson or ``TypeError`` reaches a user unwrapped. Primitive fields are checked
strictly (a number where a string belongs is an error, not silently ``str()``-ed); unknown
fields are ignored; ``null`` reads as an empty tuple for list fields.

``decode_run`` is the client's hot path: decoding a run is a large part of its cost per request,
so it first tries the hand-written decoder of ``_run_decoder`` and falls back to cattrs' detailed
hooks only when that fails, to build the error message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar, final

import attrs
import cattrs
import orjson
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.orjson import make_converter
from cattrs.v import format_exception

from ._exceptions import ResponseValidationError
from ._json_read import copy_json, loads
from ._packed_json import pack, pack_shaped, unpack, unpack_shaped
from ._run_decoder import (
    errors_from_json,
    metadata_view,
    pipeline_from_json,
    results_from_json,
    run_from_json,
    run_info_from_json,
    validation_from_json,
)
from ._wire import (
    WireTypeError,
    WireValueError,
    format_datetime,
    json_type_error,
    structure_bool,
    structure_datetime,
    structure_float,
    structure_int,
    structure_json_object,
    structure_status,
    structure_str,
)
from .models import (
    FieldError,
    Flow,
    LogEntry,
    Page,
    PipelineMetadata,
    RejectedRow,
    ResultsMetadata,
    RunData,
    RunInfo,
    RunMetadata,
    RunStatus,
    StageError,
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


def _is_json_object_type(cls: Any) -> bool:
    return cls == dict[str, Any] or cls is dict


def _is_json_object_field(cls: Any) -> bool:
    # A free-form field of a model (details, source_record, run_metadata): plain JSON as read,
    # given out as a copy made without nesting on the stack (one may be nested hundreds deep).
    return cls in (dict[str, Any], dict[str, Any] | None)


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
            raise json_type_error(value, "an array")
        return inner(value, cls)  # type: ignore[no-any-return]

    return structure_tuple


def _attrs_hook_factory(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # The generated hook, behind a check that the value is a JSON object at all: otherwise a
    # string or an array reads as "every field missing", which hides the real problem.
    # Keys are the init names (a private field ``_metadata`` reads ``metadata``).
    inner = make_dict_structure_fn(cls, conv, _cattrs_use_alias=True)

    def structure_object(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            raise json_type_error(value, "an object")
        return inner(value, cls)

    return structure_object


def _make_converter() -> cattrs.Converter:
    conv = make_converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(bool, structure_bool)
    conv.register_structure_hook(datetime, structure_datetime)
    conv.register_unstructure_hook(datetime, format_datetime)
    conv.register_structure_hook(RunStatus, structure_status)
    conv.register_unstructure_hook(RunStatus, lambda s: s.value)
    conv.register_structure_hook_func(_is_json_object_type, structure_json_object)
    conv.register_unstructure_hook_func(_is_json_object_field, copy_json)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_hook_factory)
    return conv


converter: Final = _make_converter()
"""The one converter of the package (never cattrs' global one)."""


# --- public-to-the-package API --------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    """Serialise models or plain values to compact JSON bytes."""
    return orjson.dumps(unstructure(obj))


def unstructure(obj: Any) -> Any:
    """Models to plain JSON-ready values (datetimes as ISO-8601 with ``Z``, tuples as lists)."""
    return converter.unstructure(obj)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, WireTypeError | WireValueError):
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


# --- runs: the hand-written decoder first, the detailed one to explain a failure ------------------


_UNREAD: Final = object()


@final
class _Sections:
    """A run's metadata as parsed JSON, each section decoded on its first read.

    Both what a ``RunData`` holds of the metadata of a run fetched alone (``PARSED``) and how
    the ``RunMetadata`` read from it (``read()``) reads its sections.
    """

    __slots__ = ("_decoded", "_obj")

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj
        self._decoded: dict[str, Any] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (at every protocol) and copied as the JSON it reads: sections decode again.
        return (_Sections, (self._obj,))

    def read(self) -> RunMetadata:
        return metadata_view(self)

    def _section(self, key: str, fast: Callable[[Any], Any], cls: Any) -> Any:
        decoded = self._decoded.get(key, _UNREAD)
        if decoded is not _UNREAD:
            return decoded
        value = self._obj.get(key)
        try:
            decoded = fast(value)
        except Exception:  # any miss is explained by the detailed path
            decoded = structure(value, cls, what="run", path=f"$.metadata.{key}")
        self._decoded[key] = decoded
        return decoded

    def raw(self, name: str) -> bytes:
        value = self._obj.get(name)
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer past 64 bits, parsed by the fallback
            return repr(value).encode()

    def run(self) -> RunInfo | None:
        return self._section("run", run_info_from_json, RunInfo | None)  # type: ignore[no-any-return]

    def pipeline(self) -> PipelineMetadata | None:
        return self._section("pipeline", pipeline_from_json, PipelineMetadata | None)  # type: ignore[no-any-return]

    def results(self) -> ResultsMetadata | None:
        return self._section("results", results_from_json, ResultsMetadata | None)  # type: ignore[no-any-return]

    def validation(self) -> ValidationMetadata | None:
        return self._section("validation", validation_from_json, ValidationMetadata | None)  # type: ignore[no-any-return]

    def errors(self) -> tuple[StageError, ...]:
        return self._section("errors", errors_from_json, tuple[StageError, ...])  # type: ignore[no-any-return]


#: What a run keeps of shaped metadata: the JSON of its values, with the run's id, flow version
#: and source path it was packed without (the run's own strings, shared, not copied).
Shaped = tuple[bytes, str, str, "str | None"]
_intern = sys.intern


@final
class _Packed:
    """Metadata kept packed until it is read (``_packed_json``): for runs that come many at a time.

    A million waiting runs hold a million of these: for the documented shape, a tuple of its
    values' JSON and the three strings it was packed without, for any other, the deflated JSON.
    Neither is an object of a class of its own: the cyclic collector never walks plain bytes, and
    stops walking a tuple of strings and bytes after its first look at it. The strings are kept
    with the values, not taken from the run at the read, so that a run ``attrs.evolve`` gave
    another id still reads what its answer said.
    """

    __slots__ = ()

    def keep(self, obj: dict[str, Any], run: dict[str, Any]) -> bytes | Shaped:
        run_id, source_path = run["id"], run.get("source_path")
        flow_version = _intern(run["flow_version"])  # the one the run holds, not a copy
        packed = pack_shaped(obj, run_id, flow_version, source_path)
        if packed is None:
            return pack(obj)
        return (packed, run_id, flow_version, source_path)

    def read(self, kept: bytes | Shaped, _run: RunData) -> RunMetadata:
        obj = unpack(kept) if kept.__class__ is bytes else unpack_shaped(*kept)
        return metadata_view(_Sections(obj))


@final
class _Parsed:
    """Metadata kept as parsed JSON, each section decoded on its first read: for a run fetched
    alone, which is quicker to read than packed and several times larger."""

    __slots__ = ()

    def keep(self, obj: dict[str, Any], _run: dict[str, Any]) -> _Sections:
        return _Sections(obj)

    def read(self, kept: _Sections, _run: RunData) -> RunMetadata:
        return kept.read()


PACKED: Final = _Packed()
PARSED: Final = _Parsed()


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
        "created_by": run.created_by,
        "run_owner": run.run_owner,
        "monitoring_by": list(run.monitoring_by),
        "monitoring_groups": list(run.monitoring_groups),
        "managing_by": list(run.managing_by),
        "managing_groups": list(run.managing_groups),
    }


converter.register_unstructure_hook(RunData, _unstructure_run)


def _unstructure_metadata(metadata: RunMetadata) -> dict[str, Any]:
    # Through the properties: a section not read yet is not in the private fields.
    return {
        "run": converter.unstructure(metadata.run),
        "pipeline": converter.unstructure(metadata.pipeline),
        "results": converter.unstructure(metadata.results),
        "validation": converter.unstructure(metadata.validation),
        "errors": converter.unstructure(metadata.errors),
    }


converter.register_unstructure_hook(RunMetadata, _unstructure_metadata)


def _structure_run(obj: Any, _: Any = None) -> RunData:
    try:
        return run_from_json(obj, PACKED)
    except Exception:  # any miss is explained by the detailed path
        return _detailed_run(obj, RunData)  # type: ignore[no-any-return]


_detailed_run: Final = converter.get_structure_hook(RunData)
converter.register_structure_hook(RunData, _structure_run)


def run_from_obj(
    obj: Any, *, what: str = "run", compact: bool = True, request_id: str | None = None
) -> RunData:
    """A ``RunData`` from already parsed JSON (e.g. one item of a batch answer).

    ``compact`` keeps its metadata as compact JSON bytes, for runs that come many at a time;
    otherwise the parsed JSON is kept, which is quicker to read and several times larger.
    ``request_id`` is the answer's ``x-request-id`` header.
    """
    try:
        return run_from_json(obj, PACKED if compact else PARSED, request_id)
    except Exception:
        # The id comes from the answer's headers, never from its body.
        return attrs.evolve(structure(obj, RunData, what=what), request_id=request_id)


def decode_run(
    data: bytes | bytearray | memoryview | str,
    *,
    compact: bool = False,
    request_id: str | None = None,
) -> RunData:
    """Parse one run JSON body: the hottest call of the SDK (``compact``: see run_from_obj)."""
    try:  # the common case, in as few calls as it takes
        return run_from_json(orjson.loads(data), PACKED if compact else PARSED, request_id)
    except Exception:  # parsed again, to say what is wrong
        return run_from_obj(loads(data), compact=compact, request_id=request_id)


_page_types: dict[Any, Any] = {}


def decode_page(data: bytes | bytearray | memoryview | str, item_cls: type[T]) -> Page[T]:
    """Parse a page envelope ``{items, page, size, total, pages}`` of ``item_cls`` items."""
    obj = loads(data, exact=True)  # rows: integers past 64 bits kept exact
    if obj.__class__ is dict:
        obj.pop("request_id", None)  # the answer's header says it, not its body
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
