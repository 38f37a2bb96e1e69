"""``RunRequest``: one run to create, checked on construction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._validation import check_run_request, check_tags, encode_with_rows

__all__ = ["RunRequest"]


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(check_tags(value))


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
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    idempotency_key: str | None = attrs.field(default=None, kw_only=True)
    # The body as sent, with inline rows: encoding it is also how the rows are checked.
    _wire: bytes | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        rows = check_run_request(
            flow_version=self.flow_version,
            source_path=self.source_path,
            source_data=self.source_data,
            run_metadata=self.run_metadata,
            force_rerun=self.force_rerun,
            label=self.label,
            idempotency_key=self.idempotency_key,
        )
        if rows is not None:
            object.__setattr__(self, "source_data", tuple(rows))
            object.__setattr__(self, "_wire", encode_with_rows(self._head(), "source_data", rows))

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs`` (the idempotency key travels as a header)."""
        body = self._head()
        if self.source_path is None:
            body["source_data"] = list(self.source_data or ())
        return body

    def wire_body(self) -> bytes:
        """``to_wire()`` as JSON bytes (with inline rows: encoded once, when they were checked)."""
        if self._wire is not None:
            return self._wire
        return encode_with_rows(self._head(), "source_data", None)

    def _head(self) -> dict[str, Any]:
        """The body without the inline rows."""
        body: dict[str, Any] = {"flow_version": self.flow_version}
        if self.source_path is not None:
            body["source_path"] = self.source_path
        if self.run_metadata is not None:
            body["run_metadata"] = dict(self.run_metadata)
        if self.force_rerun:
            body["force_rerun"] = True
        if self.label is not None:
            body["label"] = self.label
        if self.tags:
            body["tags"] = list(self.tags)
        return body
