"""Families of bad argument values, and what each kind of argument takes, for the entry sweep.

Families: values of any type (a single string among them, where several items belong), NaN and
infinity anywhere inside JSON, empty values, values past the service's limits, and strings with
control characters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "ANY_VALUE",
    "CONTROL",
    "NON_FINITE",
    "any_item",
    "boolean",
    "instance",
    "integer",
    "json_object",
    "json_with_non_finite",
    "longer_than",
    "no_item",
    "number",
    "optional",
    "rows",
    "secrets",
    "several",
    "statuses",
    "text",
    "type_names",
    "with_control",
]

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.floats()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.complex_numbers(),
    st.datetimes(),
    st.builds(object),
)
CONTROL = st.sampled_from([chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
)
_OBJECT = st.dictionaries(st.text(max_size=3), _LEAF, max_size=3)


_PLAIN = st.text(alphabet="abc123", max_size=6)


def with_control() -> st.SearchStrategy[str]:
    """A string with a C0, DEL or C1 control character somewhere in it."""
    return st.tuples(_PLAIN, CONTROL, _PLAIN).map("".join)


def longer_than(limit: int) -> st.SearchStrategy[str]:
    return st.integers(limit + 1, limit + 50).map(lambda n: "a" * n)


@st.composite
def json_with_non_finite(draw: st.DrawFn, *, rows: bool) -> Any:
    """JSON (rows of objects, or one object) with a NaN or infinity somewhere inside."""
    node: Any = draw(NON_FINITE)
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            node = [*draw(st.lists(_LEAF, max_size=2)), node]
        else:
            node = {**draw(_OBJECT), "k": node}
    obj = {**draw(_OBJECT), "x": node}
    return [*draw(st.lists(_OBJECT, max_size=3)), obj] if rows else obj


# --- what an argument takes -----------------------------------------------------------------------

Takes = Callable[[Any], bool]


def number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def text(v: Any) -> bool:
    return isinstance(v, str)


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def optional(check: Takes) -> Takes:
    return lambda v: v is None or check(v)


def instance(cls: type | tuple[type, ...]) -> Takes:
    return lambda v: isinstance(v, cls)


def several(item: Takes) -> Takes:
    """Several items at once: an iterable, never one string, bytes or mapping."""

    def takes(v: Any) -> bool:
        if isinstance(v, str | bytes | Mapping) or not isinstance(v, Iterable):
            return False
        return all(item(x) for x in v)

    return takes


def any_item(_: Any) -> bool:
    """Any item type: items a batch call reports on one by one."""
    return True


def no_item(_: Any) -> bool:
    """No item from the families fits (run handles): only an empty collection is right."""
    return False


def json_object(v: Any) -> bool:
    return isinstance(v, dict)


def rows(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(isinstance(r, dict) for r in v)


def statuses(v: Any) -> bool:
    """One status, several, or None."""
    return v is None or isinstance(v, str) or several(text)(v)


def secrets(v: Any) -> bool:
    """One secret, or several while one is being rotated out."""
    return isinstance(v, str) or several(text)(v)


def type_names(value: Any, depth: int = 0) -> set[str]:
    """The value's type and the types of what it holds (an item may be the one at fault)."""
    names = {type(value).__name__}
    if depth > 6 or isinstance(value, str | bytes):
        return names
    if isinstance(value, Mapping):
        for item in value.values():
            names |= type_names(item, depth + 1)
    elif isinstance(value, Iterable):
        for item in list(value)[:20]:
            names |= type_names(item, depth + 1)
    return names
