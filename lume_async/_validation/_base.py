"""The shapes every check shares: error messages with the argument and the value's type, numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "bad_value",
    "check_bool",
    "check_id",
    "check_int",
    "check_interval",
    "check_items",
    "check_nonempty_str",
    "check_optional_str",
    "check_seconds",
    "check_str_list",
    "check_timeout",
    "describe",
    "wrong_type",
]

T = TypeVar("T")

_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_SHOWN = 60


def describe(value: object) -> str:
    """A value as an error message shows it: a short repr and its type, ``-1 (int)``."""
    text = repr(value)
    if len(text) > _SHOWN:
        text = text[: _SHOWN - 3] + "..."
    return f"{text} ({type(value).__name__})"


def wrong_type(name: str, expected: str, value: object) -> TypeError:
    """``name must be <expected>, not <type>``."""
    return TypeError(f"{name} must be {expected}, not {type(value).__name__}")


def bad_value(name: str, requirement: str, value: object) -> ValueError:
    """``name must be <requirement>, got <repr> (<type>)``."""
    return ValueError(f"{name} must be {requirement}, got {describe(value)}")


def check_int(value: object, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "an int", value)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise bad_value(name, bounds, value)
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(name, "a bool", value)
    return value


def check_optional_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise wrong_type(name, "a str or None", value)
    return value


def check_nonempty_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(name, "a non-empty str", value)
    if not value:
        raise bad_value(name, "a non-empty str", value)
    return value


def check_seconds(
    value: object, name: str, *, allow_none: bool = True, allow_zero: bool = True
) -> float | None:
    """A finite number of seconds, >= 0 (or > 0 without ``allow_zero``), or None if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        none = " or None" if allow_none else ""
        raise wrong_type(name, f"a number of seconds{none}", value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        requirement = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise bad_value(name, requirement, value)
    return value


def check_timeout(value: object, name: str = "timeout") -> None:
    """A wait's timeout: seconds >= 0 (infinity allowed: no limit), or None for no limit."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, "a number of seconds or None", value)
    if math.isnan(value) or value < 0:
        raise bad_value(name, ">= 0 seconds", value)


def check_interval(value: object, name: str = "poll_interval") -> None:
    """A pause between polls: a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, "a number of seconds", value)
    if not math.isfinite(value) or value <= 0:
        raise bad_value(name, "a positive, finite number of seconds", value)


def check_id(value: object, name: str, what: str, example: str) -> str:
    """An id that goes into a URL path: a short token of letters, digits, ``_`` and ``-``."""
    if not isinstance(value, str):
        raise wrong_type(name, "a str", value)
    if not _ID.fullmatch(value):
        raise bad_value(name, f"{what} such as {example!r}", value)
    return value


def check_str_list(value: object, name: str) -> list[str]:
    """A list (any iterable but a single string or a mapping) of strings."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise wrong_type(name, "a list of strings", value)
    out: list[Any] = list(value)
    for i, item in enumerate(out):
        if not isinstance(item, str):
            raise wrong_type(f"{name}[{i}]", "a str", item)
    return out


def check_items(value: object, name: str, cls: type[T], expected: str) -> list[T]:
    """An iterable whose items are all ``cls`` instances (``expected`` names one: "an AsyncRun")."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise wrong_type(name, "an iterable", value)
    out: list[Any] = list(value)
    for i, item in enumerate(out):
        if not isinstance(item, cls):
            raise wrong_type(f"{name}[{i}]", expected, item)
    return out
