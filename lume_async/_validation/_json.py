"""Free-form JSON a caller sends (inline rows, run metadata): checked by encoding it, once.

The check and the encoding are one pass of orjson, whose bytes are then sent as they are: a
create with 10,000 inline rows costs one encode of them, not a conversion of every value. What
orjson refuses (sets, bytes, decimals, arbitrary objects, keys that are not strings) fails here
with the index of the first bad row. Datetimes are written as ISO 8601 (``Z`` for UTC, a naive
one read as UTC). NaN and infinities have no JSON form and are refused too. orjson writes them as
``null``, so a body with no ``null`` holds none; one that has some is compared with the ``None``
values of its rows, counted in C (by column when the body names the columns that hold them), and
only if there are fewer of those than of nulls are the rows searched value by value.
"""

from __future__ import annotations

import re
from itertools import chain, compress, repeat
from operator import is_
from typing import Any, Final

import orjson

from ._base import check_finite_json

__all__ = ["canonical_json", "encode_json", "encode_with_rows", "fitted", "key_json"]

_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
# orjson hands back its whole working buffer (4 KiB for a few bytes of JSON): what is kept is
# copied to its size. Above this, the buffer was mapped and its untouched pages cost nothing.
_COPY_BELOW: Final = 64 * 1024
_NULL: Final = re.compile(rb"null")
_KEYED_NULL: Final = re.compile(rb'":null')
# Endless, shared and stateless: the constant arguments of the counts below.
_ONES: Final = repeat(1)
_NONES: Final = repeat(None)
_MISSING: Final = repeat(object())


def encode_with_rows(head: dict[str, Any], name: str, rows: list[dict[str, Any]] | None) -> bytes:
    """``head`` with ``rows`` under the key ``name`` (if given) as JSON, checked.

    Errors name the argument: ``name[i]`` for a bad row.
    """
    if rows is None:
        return encode_json(head, "the request")
    try:
        encoded = orjson.dumps({**head, name: rows}, option=_OPTIONS)
    except TypeError:
        for i, row in enumerate(rows):  # only on failure: find the row to name
            encode_json(row, f"{name}[{i}]")
        raise
    # ``re`` finds and counts a literal faster than ``bytes.find``/``count`` (about 0.7 against
    # 1.2 ms for 2 MB): this check is most of what a create with inline rows costs over orjson.
    if _NULL.search(encoded) is not None:
        nulls = len(_NULL.findall(encoded)) - encode_json(head, "the request").count(b"null")
        if nulls > _nones_at_least(encoded, rows, nulls):
            # A NaN or an infinity, a None nested deeper, or "null" in a string: look.
            for i, row in enumerate(rows):
                check_finite_json(row, f"{name}[{i}]", b"null")
    return fitted(encoded)


def _nones_at_least(encoded: bytes, rows: list[dict[str, Any]], enough: int) -> int:
    """A lower bound of the number of top-level ``None`` values in ``rows``: their number,
    unless it is already known to be at least ``enough``.

    Each ``None`` of a row is written ``"key":null``: the keys before the body's first few such
    nulls name the columns that hold them, and counting the ``None`` values of those columns
    alone (one lookup a row per column) is usually all it takes to reach ``enough``. A key read
    wrongly from the body (one with an escaped quote, or text in a string) only names another
    column, or none: the count stays a count of actual ``None`` values, so a lower bound. When
    the columns add up to as much work as every value, every value is counted.
    """
    values = sum(map(len, rows))
    found = 0
    columns: set[str] = set()
    for null in _KEYED_NULL.finditer(encoded):
        end = null.start()
        start = encoded.rfind(b'"', 0, end) + 1
        if encoded.find(b"\\", start, end) >= 0:
            continue  # an escaped key, or text in a string: not a key as it reads
        column = encoded[start:end].decode()
        if column in columns:
            continue
        if (len(columns) + 1) * len(rows) * 2 > values:  # as much work as counting every value
            break
        columns.add(column)
        lookups = map(dict.get, rows, repeat(column), _MISSING)
        found += sum(compress(_ONES, map(is_, lookups, _NONES)))  # a 1 for each None
        if found >= enough:
            return found
    # Every value, by identity (compress keeps a 1 for each None: no comparison with None).
    return sum(compress(_ONES, map(is_, chain.from_iterable(map(dict.values, rows)), _NONES)))


def fitted(encoded: bytes) -> bytes:
    """``encoded`` (from orjson) in a buffer of its own size, to be kept."""
    return memoryview(encoded).tobytes() if len(encoded) < _COPY_BELOW else encoded


def encode_json(value: object, name: str) -> bytes:
    """``value`` as JSON, as a request sends it (datetimes in ISO 8601, ``Z`` for UTC)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError as exc:
        raise TypeError(
            f"{name} must be JSON-serialisable, got {type(value).__name__}: {exc}"
        ) from None


def canonical_json(encoded: bytes) -> bytes:
    """The JSON ``encoded`` with every object's keys sorted: one spelling of what it says.

    What differs on the wire differs here too (``true`` and ``1``, ``1`` and ``1.0``, ``0.0`` and
    ``-0.0``); only the order of an object's keys does not count.
    """
    return orjson.dumps(orjson.loads(encoded), option=orjson.OPT_SORT_KEYS)


def key_json(head: dict[str, Any]) -> bytes:
    """``head`` (a body without inline rows) as keys are derived from it, keys sorted.

    As orjson writes it, which is what keys were always derived from; but where a datetime is
    sent otherwise than orjson writes it by default (naive, or UTC: sent with ``Z``), as it is
    sent, so that it and its text derive keys of their own. A body without such a datetime keeps
    its key (a dataclass's fields, say, in the order declared): a job restarted after an upgrade
    finds what it made before.
    """
    written = orjson.dumps(head, option=orjson.OPT_SORT_KEYS)
    sent = orjson.dumps(head, option=_OPTIONS | orjson.OPT_SORT_KEYS)
    return written if sent == written else canonical_json(sent)
