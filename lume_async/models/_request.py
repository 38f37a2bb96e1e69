"""``RunRequest``: one run to create, checked on construction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import orjson

__all__ = ["RunRequest"]

_FLOW_VERSION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*:v[0-9]+")


def _tags_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise TypeError(f"tags must be a sequence of strings, not a single {type(value).__name__}")
    tags = tuple(value)
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TypeError(f"tags[{i}] must be a str, not {type(tag).__name__}")
    return tags


def _json_error(what: str, exc: Exception) -> str:
    return f"{what} is not JSON-serialisable: {exc}"


@attrs.frozen
class RunRequest:
    """One run to create, checked on construction so a bad batch fails before any request.

    Exactly one of ``source_path`` (a location the service reads) and ``source_data`` (rows sent
    inline, a sequence of JSON objects) is given. ``flow_version`` is written ``name:vN``.
    ``idempotency_key`` is sent as a header, so retries of this create never make a second run.
    """

    flow_version: str
    source_path: str | None = attrs.field(default=None, kw_only=True)
    source_data: Sequence[Mapping[str, Any]] | None = attrs.field(default=None, kw_only=True)
    run_metadata: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)
    force_rerun: bool = attrs.field(default=False, kw_only=True)
    label: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags_tuple)
    idempotency_key: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self._check_flow_version()
        self._check_source()
        if self.run_metadata is not None:
            if not isinstance(self.run_metadata, Mapping):
                raise TypeError(
                    f"run_metadata must be a dict, not {type(self.run_metadata).__name__}"
                )
            try:
                orjson.dumps(dict(self.run_metadata))
            except TypeError as exc:
                raise TypeError(_json_error("run_metadata", exc)) from None
        if not isinstance(self.force_rerun, bool):
            raise TypeError(f"force_rerun must be a bool, not {type(self.force_rerun).__name__}")
        if self.label is not None and not isinstance(self.label, str):
            raise TypeError(f"label must be a str or None, not {type(self.label).__name__}")
        self._check_idempotency_key()

    def _check_flow_version(self) -> None:
        fv = self.flow_version
        if not isinstance(fv, str):
            raise TypeError(f"flow_version must be a str, not {type(fv).__name__}")
        if not fv:
            raise ValueError("flow_version must not be empty (expected 'name:vN')")
        if not _FLOW_VERSION_RE.fullmatch(fv):
            raise ValueError(
                f"flow_version {fv!r} is not of the form 'name:vN', e.g. 'customer_cleaner:v1'"
            )

    def _check_source(self) -> None:
        path, data = self.source_path, self.source_data
        if (path is None) == (data is None):
            raise ValueError("give exactly one of source_path and source_data")
        if path is not None:
            if not isinstance(path, str):
                raise TypeError(f"source_path must be a str, not {type(path).__name__}")
            if not path.strip():
                raise ValueError("source_path must not be empty")
            return
        if isinstance(data, str | bytes | Mapping) or not isinstance(data, Sequence):
            raise TypeError(
                f"source_data must be a sequence of dicts (JSON objects), not {type(data).__name__}"
            )
        rows: list[Any] = list(data)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"source_data[{i}] must be a dict (a JSON object), not {type(row).__name__}"
                )
            if not isinstance(row, dict):
                rows[i] = dict(row)
        try:
            orjson.dumps(rows)
        except TypeError:
            # Serialise row by row only on failure, to name the offending row cheaply.
            for i, row in enumerate(rows):
                try:
                    orjson.dumps(row)
                except TypeError as exc:
                    raise TypeError(_json_error(f"source_data[{i}]", exc)) from None
            raise
        object.__setattr__(self, "source_data", tuple(rows))

    def _check_idempotency_key(self) -> None:
        key = self.idempotency_key
        if key is None:
            return
        if not isinstance(key, str):
            raise TypeError(f"idempotency_key must be a str or None, not {type(key).__name__}")
        if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
            raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs`` (the idempotency key travels as a header)."""
        body: dict[str, Any] = {"flow_version": self.flow_version}
        if self.source_path is not None:
            body["source_path"] = self.source_path
        else:
            body["source_data"] = list(self.source_data or ())
        if self.run_metadata is not None:
            body["run_metadata"] = dict(self.run_metadata)
        if self.force_rerun:
            body["force_rerun"] = True
        if self.label is not None:
            body["label"] = self.label
        if self.tags:
            body["tags"] = list(self.tags)
        return body
