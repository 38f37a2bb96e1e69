"""Free-form JSON a caller sends (inline rows, run metadata): checked by encoding it, once.

The check and the encoding are one pass of orjson, whose bytes are then sent as they are: a
create with 10,000 inline rows costs one encode of them, not a conversion of every value. What
orjson refuses (sets, bytes, decimals, arbitrary objects, keys that are not strings) fails here
with the index of the first bad row. Datetimes are written as ISO 8601 (``Z`` for UTC, a naive
one read as UTC). NaN and infinities have no JSON form and are refused too. orjson writes them as
``null``, so a body with no ``null`` holds none; one that has some is compared with the ``None``
values of its rows, counted in C, and only if they differ are the rows searched value by value.
"""

from __future__ import annotations

from itertools import chain, repeat
from operator import is_
from typing import Any, Final

import orjson

from ._base import check_finite_json

__all__ = ["encode_with_rows", "fitted"]

_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
# orjson hands back its whole working buffer (4 KiB for a few bytes of JSON): what is kept is
# copied to its size. Above this, the buffer was mapped and its untouched pages cost nothing.
_COPY_BELOW: Final = 64 * 1024


def encode_with_rows(head: dict[str, Any], name: str, rows: list[dict[str, Any]] | None) -> bytes:
    """``head`` with ``rows`` under the key ``name`` (if given) as JSON, checked.

    Errors name the argument: ``name[i]`` for a bad row.
    """
    if rows is None:
        return _encode(head, "the request")
    try:
        encoded = orjson.dumps({**head, name: rows}, option=_OPTIONS)
    except TypeError:
        for i, row in enumerate(rows):  # only on failure: find the row to name
            _encode(row, f"{name}[{i}]")
        raise
    nulls = encoded.count(b"null")
    if nulls:
        nulls -= _encode(head, "the request").count(b"null")
        # Counted by identity (``is``), which spares each value a comparison with None.
        if nulls > sum(map(is_, chain.from_iterable(map(dict.values, rows)), repeat(None))):
            # A NaN or an infinity, a None nested deeper, or "null" in a string: look.
            for i, row in enumerate(rows):
                check_finite_json(row, f"{name}[{i}]", b"null")
    return fitted(encoded)


def fitted(encoded: bytes) -> bytes:
    """``encoded`` (from orjson) in a buffer of its own size, to be kept."""
    return memoryview(encoded).tobytes() if len(encoded) < _COPY_BELOW else encoded


def _encode(value: object, name: str) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError as exc:
        raise TypeError(
            f"{name} must be JSON-serialisable, got {type(value).__name__}: {exc}"
        ) from None
