"""``Flow`` and ``FlowVersion``: the transformations runs apply."""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["Flow", "FlowVersion"]


@attrs.frozen(kw_only=True)
class FlowVersion:
    """One published version of a flow; ``id`` is the ``name:vN`` string runs refer to.

    Attributes:
        version: The version, such as ``v1``.
        id: The version string runs take, such as ``customer_cleaner:v1``.
        created_at: When it was published (UTC).
    """

    version: str
    id: str
    created_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Flow:
    """A transformation flow and its published versions.

    Attributes:
        name: The flow's name, such as ``customer_cleaner``.
        description: What the flow does.
        versions: Its published versions.
    """

    name: str
    description: str | None = None
    versions: tuple[FlowVersion, ...] = ()
