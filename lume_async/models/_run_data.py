"""``RunData``: a run exactly as the service described it, and why it failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import attrs

from .._status import RunStatus
from ._metadata import RunMetadata

__all__ = ["MetadataSource", "RunData", "RunErrorInfo"]


@attrs.frozen(kw_only=True)
class RunErrorInfo:
    """Why a run ended FAILED or CRASHED."""

    code: str
    message: str


class MetadataSource(Protocol):
    """A run's metadata as its answer carried it, not yet decoded (made by the converter)."""

    def read(self) -> RunMetadata:
        """The metadata tree; raises ResponseValidationError if it is malformed."""
        ...


@attrs.frozen(kw_only=True, eq=False)
class RunData:
    """A run exactly as the service returned it (the state behind an ``AsyncRun`` handle).

    ``metadata`` is decoded from the answer when it is first read, not when the run is parsed:
    polling reads many runs and looks at the metadata of few, and the metadata tree is most of
    the cost of a run. Until then it is kept as it came (``metadata_json``, compact JSON bytes,
    a fraction of the memory of parsed JSON). A malformed tree raises ResponseValidationError on
    that first read.
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
    _metadata_json: MetadataSource | None = attrs.field(
        default=None, alias="metadata_json", repr=False
    )

    @property
    def metadata(self) -> RunMetadata | None:
        """Everything the pipeline reported about the run; complete once it is terminal."""
        if self._metadata is None and self._metadata_json is not None:
            object.__setattr__(self, "_metadata", self._metadata_json.read())
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
