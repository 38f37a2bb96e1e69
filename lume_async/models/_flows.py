"""``Flow``, ``FlowVersion`` and ``TargetField``: the transformations runs apply."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._validation import wrong_type

__all__ = ["Flow", "FlowVersion", "TargetField"]


@attrs.frozen(kw_only=True)
class TargetField:
    """One field of the rows a flow version maps to: its type, where it comes from, its limits.

    Attributes:
        type: The field's type, such as ``string`` or ``integer``.
        source: The source field it is mapped from, if one.
        required: True when every mapped row has it.
        minimum: The smallest value allowed, for numbers.
        maximum: The largest value allowed, for numbers.
    """

    type: str
    source: str | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None


@attrs.frozen(kw_only=True)
class FlowVersion:
    """One published version of a flow; ``id`` is the ``name:vN`` string runs refer to.

    ``target_schema`` holds the fields of the rows it maps to, by name, in order.

    Attributes:
        version: The version, such as ``v1``.
        id: The version string runs take, such as ``customer_cleaner:v1``.
        created_at: When it was published (UTC).
        target_schema: The fields of the rows it maps to, by name, in order.
    """

    version: str
    id: str
    created_at: datetime | None = None
    target_schema: dict[str, TargetField] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class Flow:
    """A transformation flow and its published versions, oldest first.

    Attributes:
        name: The flow's name, such as ``customer_cleaner``.
        description: What the flow does.
        versions: Its published versions.
    """

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
