"""``RunData``: a run exactly as the service described it, and why it failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from .._status import RunStatus
from ._metadata import RunMetadata

__all__ = ["RunData", "RunErrorInfo"]


@attrs.frozen(kw_only=True)
class RunErrorInfo:
    """Why a run ended FAILED or CRASHED."""

    code: str
    message: str


# How ``RunData.metadata`` is built from its JSON on first read; set by the private converter.
_metadata_decoder: Callable[[dict[str, Any]], RunMetadata] | None = None


@attrs.frozen(kw_only=True, eq=False)
class RunData:
    """A run exactly as the service returned it (the state behind an ``AsyncRun`` handle).

    ``request_id`` names the answer it came in, for support requests; equality ignores it.

    ``metadata`` is decoded from the answer when it is first read, not when the run is parsed:
    polling reads many runs and looks at the metadata of few, and the metadata tree is most of
    the cost of a run. A malformed tree raises ResponseValidationError on that first read.
    """

    id: str
    status: RunStatus
    flow_version: str
    source_path: str | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    run_metadata: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    _metadata: RunMetadata | None = attrs.field(default=None, alias="metadata", repr=False)
    error: RunErrorInfo | None = None
    _metadata_json: dict[str, Any] | None = attrs.field(
        default=None, alias="metadata_json", repr=False
    )
    request_id: str | None = None
    """The ``x-request-id`` of the answer this snapshot came in (not part of the run)."""

    @property
    def metadata(self) -> RunMetadata | None:
        """Everything the pipeline reported about the run; complete once it is terminal."""
        if self._metadata is None and self._metadata_json is not None:
            assert _metadata_decoder is not None
            object.__setattr__(self, "_metadata", _metadata_decoder(self._metadata_json))
            object.__setattr__(self, "_metadata_json", None)
        return self._metadata

    @property
    def is_terminal(self) -> bool:
        """True once the run's status can no longer change."""
        return self.status.is_terminal

    def _key(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.status,
            self.flow_version,
            self.source_path,
            self.label,
            self.tags,
            self.run_metadata,
            self.created_at,
            self.updated_at,
            self.metadata,
            self.error,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RunData:
            return NotImplemented
        assert isinstance(other, RunData)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # run_metadata is a dict

    def __repr__(self) -> str:
        return (
            f"RunData(id={self.id!r}, status={self.status!r}, flow_version={self.flow_version!r}, "
            f"source_path={self.source_path!r}, label={self.label!r}, tags={self.tags!r}, "
            f"created_at={self.created_at!r}, updated_at={self.updated_at!r}, "
            f"metadata={self.metadata!r}, error={self.error!r})"
        )
