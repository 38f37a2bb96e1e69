"""``SchemaView``: read-only mapping access to the metadata models, by their schema's keys."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

import attrs

from .._wire import format_datetime

__all__ = ["SchemaView"]


@functools.cache
def _keys(cls: type) -> tuple[str, ...]:
    # A private field is read through its public name (its alias); a field marked
    # ``metadata={"schema": False}`` is the model's own bookkeeping, not a key.
    return tuple(field.alias for field in attrs.fields(cls) if field.metadata.get("schema", True))


@functools.cache
def _key_set(cls: type) -> frozenset[str]:
    return frozenset(_keys(cls))


class SchemaView(Mapping[str, Any]):
    """A frozen model that also reads as the JSON object it was built from.

    ``view["results"]["mapped_rows"]`` is ``view.results.mapped_rows``: the keys are the model's
    fields, in schema order, and every field is present (None when the service did not say).
    Nested objects are views too, and lists are tuples of them. ``keys()``, ``items()``,
    ``values()``, ``get()``, ``in``, ``len()`` and iteration behave as on a dict. A model may also
    name aliases (``_aliases``): shortcuts that ``[]`` and ``get()`` answer from its property of
    that name, like a ``defaultdict`` answers a missing key, while ``in``, ``keys()``, ``len()``
    and iteration show the schema alone. Equality, hashing and ``repr`` stay the model's own;
    ``dict(view)`` makes a shallow dict, and ``to_dict()`` the JSON object itself.
    """

    __slots__ = ()

    #: Shortcut keys, each read from the model's attribute (a property) of that name.
    _aliases: ClassVar[frozenset[str]] = frozenset()

    def __getitem__(self, key: str) -> Any:
        cls = type(self)
        if key in _key_set(cls) or key in cls._aliases:
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in _key_set(type(self))

    def __iter__(self) -> Iterator[str]:
        return iter(_keys(type(self)))

    def __len__(self) -> int:
        return len(_keys(type(self)))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain JSON values, ready for ``json.dumps`` and equal to a plain dict:
        nested views as dicts, tuples as lists, times as ISO-8601 strings (``Z`` for UTC) and
        statuses as their wire strings, every key of the schema present."""
        return {key: _plain(getattr(self, key)) for key in _keys(type(self))}


def _plain(value: Any) -> Any:
    if isinstance(value, SchemaView):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value
