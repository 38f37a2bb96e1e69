"""``BoundToClient``: objects that hold their client, which never leaves its process."""

from __future__ import annotations

from typing import ClassVar, NoReturn, SupportsIndex

__all__ = ["BoundToClient"]


class BoundToClient:
    """A client, or one of its parts (a run handle, ``lume.runs``, a paginator...): pickling or
    copying one is refused, saying why and what to keep instead, rather than failing on
    whatever it holds deep inside (the API key). ``_refusal`` says it after the class's name."""

    __slots__ = ()

    _refusal: ClassVar[str] = (
        "objects cannot be pickled or copied: each belongs to its client (connections, API key);"
        " pickle the ids or data it gave instead"
    )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        # Named as users know it: a private subclass (a client's view) by its public class.
        name = next(c.__name__ for c in type(self).__mro__ if not c.__name__.startswith("_"))
        raise TypeError(f"{name} {self._refusal}")
