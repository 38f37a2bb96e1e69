"""``RunData``: a run exactly as the service described it, and why it failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import attrs

from .._status import RunStatus
from ._metadata import RunMetadata

__all__ = ["MetadataSource", "RunData", "RunErrorInfo"]


@attrs.frozen(kw_only=True)
class RunErrorInfo:
    """Why a run ended FAILED or CRASHED.

    Attributes:
        code: A short machine-readable code.
        message: What happened, for people.
    """

    code: str
    message: str


class MetadataSource(Protocol):
    """How a run keeps its metadata as its answer carried it, until it is first read (one object
    for every run kept the same way, made by the converter).

    ``keep`` makes what the run holds of its answer's metadata; ``read`` decodes what was kept.
    """

    def keep(self, metadata: dict[str, Any], run: dict[str, Any]) -> Any:
        """What a run holds of ``metadata``, the metadata object of ``run`` (the parsed run)."""
        ...

    def read(self, kept: Any, run: RunData) -> RunMetadata:
        """The metadata tree of ``run`` from what ``keep`` made of it; raises
        ResponseValidationError if it is malformed."""
        ...


@attrs.frozen(kw_only=True, eq=False)
class RunData:
    """A run exactly as the service returned it (the state behind an ``AsyncRun`` handle).

    ``created_by`` and ``run_owner`` are principals (None from a service that does not say);
    the four lists say who else may read (``monitoring_*``) or manage (``managing_*``) the run.

    ``metadata`` is decoded from the answer when it is first read, not when the run is parsed:
    polling reads many runs and looks at the metadata of few, and the metadata tree is most of
    the cost of a run. Until then it is kept as it came (``metadata_json``: for runs that come many
    at a time, packed bytes, a fraction of the memory of parsed JSON). A malformed tree
    raises ResponseValidationError on that first read.

    Attributes:
        id: The run's id (``run_...``).
        status: Where the run is in its lifecycle.
        flow_version: The flow version the run applies (``name:vN``).
        source_path: Where the service reads the source rows; None for rows sent inline.
        label: The run's label, if it was given one.
        tags: The run's tags.
        run_metadata: Your own metadata, as given at create.
        created_at: When the service created the run (UTC).
        updated_at: When the run last changed (UTC).
        error: Why the run ended FAILED or CRASHED; None otherwise.
        created_by: The principal whose API key created the run.
        run_owner: The principal who owns the run.
        monitoring_by: Principals who may read the run.
        monitoring_groups: Groups whose principals may read the run.
        managing_by: Principals who may read, update and cancel the run.
        managing_groups: Groups whose principals may read, update and cancel the run.
        request_id: The ``x-request-id`` of the answer this snapshot came in, for a support
            request; not part of the run (equality and JSON leave it out).
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
    # The metadata tree; or, until it is first read, what ``_metadata_json`` kept of the answer's
    # (set by the decoder, past the type).
    _metadata: RunMetadata | None = attrs.field(default=None, alias="metadata", repr=False)
    error: RunErrorInfo | None = None
    # How the metadata was kept, until it is read; then None.
    _metadata_json: MetadataSource | None = attrs.field(
        default=None, alias="metadata_json", repr=False
    )
    created_by: str | None = None
    run_owner: str | None = None
    monitoring_by: tuple[str, ...] = ()
    monitoring_groups: tuple[str, ...] = ()
    managing_by: tuple[str, ...] = ()
    managing_groups: tuple[str, ...] = ()
    request_id: str | None = None

    @property
    def metadata(self) -> RunMetadata | None:
        """Everything the pipeline reported about the run; complete once it is terminal."""
        kept: Any = self._metadata  # the tree, or until it is read what was kept of it
        if kept is None or isinstance(kept, RunMetadata):  # read already, or given
            return kept
        source = self._metadata_json
        if source is None:  # read meanwhile by another thread, which set the metadata first
            return self._metadata
        metadata = source.read(kept, self)
        # The frozen class's own slots, set once, the tree first: a thread that reads it in
        # between finds the tree, never what was kept with no source to read it.
        _SET_METADATA(self, metadata)
        _SET_METADATA_JSON(self, None)
        return metadata

    @property
    def is_terminal(self) -> bool:
        """True once the run's status can no longer change."""
        return self.status.is_terminal

    def _metadata_or_raw(self) -> Any:
        """The decoded metadata, or for a malformed tree a marker holding its JSON: for ``==``
        and ``repr``, which must not raise whatever the service sent."""
        try:
            return self.metadata
        except Exception:
            return ("malformed", self._metadata)

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
            self._metadata_or_raw(),
            self.error,
            self.created_by,
            self.run_owner,
            self.monitoring_by,
            self.monitoring_groups,
            self.managing_by,
            self.managing_groups,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RunData:
            return NotImplemented
        assert isinstance(other, RunData)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # run_metadata is a dict

    def __repr__(self) -> str:
        metadata = self._metadata_or_raw()
        shown = "<malformed>" if isinstance(metadata, tuple) else repr(metadata)
        return (
            f"RunData(id={self.id!r}, status={self.status!r}, flow_version={self.flow_version!r}, "
            f"source_path={self.source_path!r}, label={self.label!r}, tags={self.tags!r}, "
            f"created_at={self.created_at!r}, updated_at={self.updated_at!r}, "
            f"metadata={shown}, error={self.error!r}, created_by={self.created_by!r}, "
            f"run_owner={self.run_owner!r}, monitoring_by={self.monitoring_by!r}, "
            f"monitoring_groups={self.monitoring_groups!r}, managing_by={self.managing_by!r}, "
            f"managing_groups={self.managing_groups!r})"
        )


# The setters of the two slots ``metadata`` fills on its first read (faster than
# object.__setattr__, which looks the slot up by name).
_SET_METADATA: Callable[[RunData, RunMetadata], None] = RunData.__dict__["_metadata"].__set__
_SET_METADATA_JSON: Callable[[RunData, None], None] = RunData.__dict__["_metadata_json"].__set__
