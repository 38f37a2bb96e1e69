"""Reading JSON text exactly, and copying what was read without nesting on the stack.

orjson reads an integer past 64 bits as a float; ``loads(exact=True)`` reads such a text again
with the json module, which keeps every integer. ``copy_json`` copies plain JSON values nested
to any depth (one nested hundreds deep would exhaust the stack copied level by level).
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from ._exceptions import ResponseValidationError

__all__ = ["copy_json", "loads"]


# Every digit as b"1", anything else as b"0": a run of 19 digits is then found by ``find``, at a
# fifth of the parse's cost (a regular expression costs twice the parse).
_DIGITS: Final = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_NUMBER: Final = b"1" * 19


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | bytearray | memoryview | str, *, exact: bool = False) -> Any:
    """Parse JSON, or raise ``ResponseValidationError`` saying where it broke.

    orjson reads an integer past 64 bits as a float, without a word. ``exact`` (for pages of
    rows, the users' own data): where the text holds a run of 19 digits (such a number, or a
    long string of digits), it is parsed again by the json module, which keeps every integer.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResponseValidationError(f"response is not valid JSON: {exc}") from exc
    if not exact:
        return obj
    raw = data.encode() if isinstance(data, str) else bytes(data)  # bytes: no copy
    if _LONG_NUMBER in raw.translate(_DIGITS):
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except RecursionError:  # the json module nests on the stack; orjson goes to 1024
            raise ResponseValidationError(
                "response is nested too deeply to read its integers past 64 bits exactly"
            ) from None
    return obj


def copy_json(value: Any) -> Any:
    """A copy of ``value``'s dicts and lists, all levels, made in a loop: what is given out
    never shares a container with the model it came from."""
    if not isinstance(value, dict | list):
        return value
    top: Any = {} if isinstance(value, dict) else []
    pending: list[tuple[Any, Any]] = [(value, top)]
    while pending:
        source, target = pending.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, dict | list):
                copied: Any = {} if isinstance(item, dict) else []
                pending.append((item, copied))
                item = copied
            if isinstance(target, dict):
                target[key] = item
            else:
                target.append(item)
    return top
