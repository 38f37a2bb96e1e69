"""``BoundToClient``: objects that hold their client, which never leaves its process."""

from __future__ import annotations

from typing import NoReturn, SupportsIndex

__all__ = ["BoundToClient"]


class BoundToClient:
    """A client's part (``lume.runs``, a paginator...): pickling or copying one is refused,
    saying why, instead of failing on whatever it holds deep inside (the API key)."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} objects cannot be pickled or copied: each belongs to its"
            " client (connections, API key); pickle the ids or data it gave instead"
        )
