"""The shapes every check shares: error messages with the argument and the value's type, numbers."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "as_float",
    "bad_value",
    "check_bool",
    "check_callable",
    "check_finite_json",
    "check_id",
    "check_int",
    "check_interval",
    "check_items",
    "check_iterable",
    "check_nonempty_str",
    "check_optional_str",
    "check_seconds",
    "check_str_list",
    "check_text",
    "check_timeout",
    "describe",
    "in_stable_order",
    "is_async_callable",
    "is_utf8",
    "wrong_type",
]

T = TypeVar("T")

_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_SHOWN = 60
_SCALARS = frozenset({str, int, bool, type(None)})  # nothing to look into


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


def as_float(value: int | float, name: str) -> float:
    """A number as a float: an int too large for one is refused (ValueError), not overflowed."""
    try:
        return float(value)
    except OverflowError:
        raise bad_value(name, "a number of seconds a float can hold", value) from None


def check_seconds(
    value: object, name: str, *, allow_none: bool = True, allow_zero: bool = True
) -> float | None:
    """A finite number of seconds, >= 0 (or > 0 without ``allow_zero``), or None if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        none = " or None" if allow_none else ""
        raise wrong_type(name, f"a number of seconds{none}", value)
    if not math.isfinite(as_float(value, name)) or value < 0 or (value == 0 and not allow_zero):
        requirement = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise bad_value(name, requirement, value)
    return value


def check_timeout(value: object, name: str = "timeout") -> None:
    """A wait's timeout: seconds >= 0 (infinity allowed: no limit), or None for no limit."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, "a number of seconds or None", value)
    if math.isnan(as_float(value, name)) or value < 0:
        raise bad_value(name, ">= 0 seconds", value)


def check_interval(value: object, name: str = "poll_interval") -> None:
    """A pause between polls: a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, "a number of seconds", value)
    if not math.isfinite(as_float(value, name)) or value <= 0:
        raise bad_value(name, "a positive, finite number of seconds", value)


def check_id(value: object, name: str, what: str, example: str) -> str:
    """An id that goes into a URL path: a short token of letters, digits, ``_`` and ``-``."""
    if not isinstance(value, str):
        raise wrong_type(name, "a str", value)
    value = str.__str__(value)  # a str subclass's own __str__ or __format__ never reaches a URL
    if not _ID.fullmatch(value):
        raise bad_value(name, f"{what} such as {example!r}", value)
    return value


def check_text(
    value: object, name: str, *, max_len: int, min_len: int = 0, single_line: bool = False
) -> str:
    """A str of ``min_len`` to ``max_len`` characters (without line breaks if ``single_line``)."""
    if not isinstance(value, str):
        raise wrong_type(name, "a str", value)
    if not min_len <= len(value) <= max_len:
        raise bad_value(name, f"a str of {min_len} to {max_len} characters", value)
    if single_line and any(c in value for c in "\r\n\x00"):
        raise bad_value(name, "a single line (no line breaks or NUL)", value)
    if not is_utf8(value):  # a lone surrogate: no UTF-8 (no JSON, no URL) holds it
        raise bad_value(name, "text UTF-8 can encode (no lone surrogates)", value)
    return value


def is_utf8(text: str) -> bool:
    """Whether UTF-8 can encode ``text`` (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_callable(value: object, name: str) -> None:
    """A callback that is called and never awaited, or None for none."""
    if value is not None and not callable(value):
        raise wrong_type(name, "a callable or None", value)
    if is_async_callable(value):
        # Called and never awaited, it would never run: only a "never awaited" warning.
        raise TypeError(
            f"{name} must be a plain function (it is called, never awaited), not {describe(value)}"
        )


def is_async_callable(value: object) -> bool:
    """Whether calling ``value`` makes a coroutine (an ``async def`` function or ``__call__``)."""
    if not callable(value):
        return False
    return inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(type(value).__call__)


def check_iterable(value: object, name: str, expected: str) -> list[Any]:
    """Several things at once: any iterable but a single string, bytes or mapping, as a list.

    A string is refused although it iterates: ``get_many("run_01...")`` would otherwise be one
    call per character.
    """
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise wrong_type(name, expected, value)
    return list(value)


def check_str_list(
    value: object, name: str, *, max_items: int | None = None, max_len: int | None = None
) -> list[str]:
    """A list (any iterable but a single string or a mapping) of strings, within the bounds."""
    out = check_iterable(value, name, "a list of strings")
    if max_items is not None and len(out) > max_items:
        raise ValueError(
            f"{name} must hold at most {max_items} items, got {len(out)} ({type(value).__name__})"
        )
    for i, item in enumerate(out):
        if max_len is None:
            if not isinstance(item, str):
                raise wrong_type(f"{name}[{i}]", "a str", item)
        else:
            check_text(item, f"{name}[{i}]", min_len=1, max_len=max_len)
    return out


def in_stable_order(value: object, items: list[str]) -> list[str]:
    """``items`` (the checked strings of ``value``) sorted if ``value`` is a set.

    A set has no order of its own: it iterates in the order of its strings' hashes, which
    another process salts differently. Sent as it iterates, the same tags would be another body,
    and derive another idempotency key, in a restarted job.
    """
    return sorted(items) if isinstance(value, set | frozenset) else items


def check_items(value: object, name: str, cls: type[T], expected: str, hint: str = "") -> list[T]:
    """An iterable whose items are all ``cls`` instances (``expected`` names one: "an AsyncRun")."""
    out = check_iterable(value, name, "an iterable (a list, not one item)")
    for i, item in enumerate(out):
        if not isinstance(item, cls):
            raise TypeError(f"{name}[{i}] must be {expected}, not {type(item).__name__}{hint}")
    return out


def _non_finite_at(value: object, path: str, depth: int) -> tuple[str, float] | None:
    """Where the first NaN or infinity sits in ``value``, and which it is."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if depth > 256:
        return None  # orjson refuses JSON nested this deep on its own
    if isinstance(value, enum.Enum):  # orjson writes an Enum as its value
        return _non_finite_at(value.value, f"{path}.value", depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # written as an object
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _non_finite_at(fields, path, depth + 1)
    if isinstance(value, dict):
        entries: Iterable[tuple[object, object]] = value.items()
    elif isinstance(value, list | tuple):
        entries = enumerate(value)
    else:
        return None
    for key, item in entries:
        if item.__class__ not in _SCALARS:
            found = _non_finite_at(item, f"{path}[{key!r}]", depth + 1)
            if found is not None:
                return found
    return None


def check_finite_json(value: object, name: str, encoded: bytes) -> None:
    """No NaN or infinity anywhere in ``value``, already ``encoded`` as JSON.

    JSON has no such numbers and orjson writes them as ``null``: sent as they are, they would
    silently become missing values. An ``encoded`` without any ``null`` (the common case) proves
    there is none without walking ``value``.
    """
    if b"null" not in encoded:
        return
    found = _non_finite_at(value, name, 0)
    if found is not None:
        path, number = found
        raise bad_value(path, "a finite number (JSON has no NaN or infinity)", number)


def check_host(host: object, name: str = "host") -> str:
    """An interface to listen on: a host name or an IP address."""
    if not isinstance(host, str):
        raise wrong_type(name, "a str", host)
    if not host or any(c.isspace() or not c.isprintable() or c in "/?#@" for c in host):
        raise bad_value(name, "a host name or IP address such as '127.0.0.1'", host)
    return host


def check_port(port: object, name: str = "port") -> int:
    """A TCP port, 0 for any free one."""
    return check_int(port, name, minimum=0, maximum=65535)
