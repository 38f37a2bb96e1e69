"""``Flow``, ``FlowVersion`` and ``TargetField``: the transformations runs apply."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._validation import wrong_type

__all__ = ["Flow", "FlowVersion", "TargetField"]


@attrs.frozen(kw_only=True)
class TargetField:
    """One field of the rows a flow version maps to: its type, where it comes from, its limits."""

    type: str
    source: str | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None


@attrs.frozen(kw_only=True)
class FlowVersion:
    """One published version of a flow; ``id`` is the ``name:vN`` string runs refer to.

    ``target_schema`` holds the fields of the rows it maps to, by name, in order.
    """

    version: str
    id: str
    created_at: datetime | None = None
    target_schema: dict[str, TargetField] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class Flow:
    """A transformation flow and its published versions, oldest first."""

    name: str
    description: str | None = None
    versions: tuple[FlowVersion, ...] = ()

    def version(self, version: str) -> FlowVersion:
        """The version written ``"v2"`` or ``"customer_cleaner:v2"``; KeyError if there is none."""
        if not isinstance(version, str):
            raise wrong_type("version", "a str such as 'v1'", version)
        for candidate in self.versions:
            if version in (candidate.version, candidate.id):
                return candidate
        known = ", ".join(v.version for v in self.versions) or "none"
        raise KeyError(f"flow {self.name} has no version {version!r} (it has: {known})")
