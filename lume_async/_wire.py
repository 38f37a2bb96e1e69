"""Strict readers of JSON leaf values (strings, numbers, timestamps, statuses) for every decoder.

A value of the wrong JSON type raises ``WireTypeError``, one of the right type that does not parse
``WireValueError``; their messages are shown to users as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ._status import RunStatus

__all__ = [
    "WireTypeError",
    "WireValueError",
    "format_datetime",
    "json_type_error",
    "parse_datetime",
    "parse_status",
    "structure_bool",
    "structure_datetime",
    "structure_float",
    "structure_int",
    "structure_json_object",
    "structure_status",
    "structure_str",
]


class WireTypeError(TypeError):
    """A value of the wrong JSON type; its message is shown as is."""


class WireValueError(ValueError):
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


def json_type_error(value: Any, expected: str) -> WireTypeError:
    """``expected a string, got integer``: the error for a value of the wrong JSON type."""
    got = _JSON_TYPE_NAMES.get(value.__class__, type(value).__name__)
    return WireTypeError(f"expected {expected}, got {got}")


def parse_datetime(value: Any) -> datetime:
    """An aware datetime from ISO-8601; ``Z`` and offsets are kept, a naive time is taken as UTC.

    The other forms RFC 3339 allows are read too: a lower-case ``t`` or ``z``, and a leap
    second (``23:59:60``, read as the first instant of the next minute).
    """
    if value.__class__ is not str:
        raise json_type_error(value, "an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _parse_rfc3339_variant(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _parse_rfc3339_variant(value: str) -> datetime:
    """``value`` in an RFC 3339 form ``datetime.fromisoformat`` refuses, or WireValueError."""
    text = value.upper()  # ``t`` and ``z`` (no other letter belongs in a timestamp)
    leap = text[16:19] == ":60" and text[10:11] in ("T", " ")
    if leap:
        text = f"{text[:17]}59{text[19:]}"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed + _ONE_SECOND if leap else parsed
    except (ValueError, OverflowError):  # not a time; a leap second after the last of 9999
        raise WireValueError(f"not an ISO-8601 timestamp: {value[:40]!r}") from None


def format_datetime(value: datetime) -> str:
    """ISO-8601 with ``Z`` for UTC; a naive time is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_ONE_SECOND: Final = timedelta(seconds=1)
_STATUS_BY_VALUE: Final[dict[str, RunStatus]] = {s.value: s for s in RunStatus}


def parse_status(value: Any) -> RunStatus:
    """A ``RunStatus`` from its wire string (an unknown one is kept, see ``RunStatus``)."""
    known = _STATUS_BY_VALUE.get(value) if value.__class__ is str else None
    if known is not None:
        return known
    if value.__class__ is not str:
        raise json_type_error(value, "a status string")
    try:
        return RunStatus(value)
    except ValueError:
        raise WireValueError(f"not a run status: {value[:40]!r}") from None


# --- the converter's hooks: each leaf type read strictly ------------------------------------------


def structure_str(value: Any, _: Any) -> str:
    if value.__class__ is str:
        return value
    raise json_type_error(value, "a string")


def structure_int(value: Any, _: Any) -> int:
    if value.__class__ is int:
        return value
    raise json_type_error(value, "an integer")


def structure_float(value: Any, _: Any) -> float:
    cls = value.__class__
    if cls is float:
        return value  # type: ignore[no-any-return]
    if cls is int:
        return float(value)
    raise json_type_error(value, "a number")


def structure_bool(value: Any, _: Any) -> bool:
    if value.__class__ is bool:
        return value
    raise json_type_error(value, "a boolean")


def structure_datetime(value: Any, _: Any) -> datetime:
    return parse_datetime(value)


def structure_status(value: Any, _: Any) -> RunStatus:
    return parse_status(value)


def structure_json_object(value: Any, _: Any) -> dict[str, Any]:
    # Free-form JSON objects (run_metadata, source records, log details) are passed through:
    # orjson already produced fresh dicts with string keys, so copying them would only cost time.
    if value.__class__ is dict:
        return value
    raise json_type_error(value, "a JSON object")
