"""Generic containers: one ``Page`` of a listing, one ``BatchOutcome`` of a batch call."""

from __future__ import annotations

from typing import Generic, TypeVar, cast

import attrs

__all__ = ["BatchOutcome", "Page"]

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing: the items and where they sit in the whole.

    ``total`` and ``pages`` are None for cursor-paged listings, which cannot know them cheaply;
    ``next_cursor`` is then where the next page starts.

    Attributes:
        items: The page's items, in order.
        page: The page's number, from 1 (always 1 for cursor-paged listings).
        size: The page size asked for.
        total: Items in the whole listing, when known.
        pages: Pages in the whole listing, when known.
        next_cursor: Where the next page starts, for cursor-paged listings.
        request_id: The ``x-request-id`` of the answer the page came from (for support).
    """

    items: tuple[T, ...]
    page: int = 1
    size: int = 0
    total: int | None = None
    pages: int | None = None
    next_cursor: str | None = None
    request_id: str | None = attrs.field(default=None, kw_only=True, eq=False)

    @property
    def has_next(self) -> bool:
        """True when another page may follow this one."""
        if self.next_cursor is not None:
            return True
        if self.pages is not None:
            return self.page < self.pages
        return False

    def __len__(self) -> int:
        return len(self.items)


@attrs.frozen
class BatchOutcome(Generic[T]):
    """The result of one item of a batch call, at the item's ``index`` in the input.

    Exactly one of ``value`` (when ``ok``) and ``error`` is set; one failed item never aborts the
    others, so a batch returns one outcome per input.

    Attributes:
        index: The item's position in the input.
        ok: True when the item succeeded.
        value: The item's result, when ``ok``.
        error: The exception the item raised, when not ``ok``.
        idempotency_key: For ``create_many``, the key the item's create was sent with, failed
            or not (None for an item that was not a valid request, and for other batch
            calls): sending the same key and request again can never make a second run.

    Examples:
        >>> outcomes = [BatchOutcome.success(0, "run_a"), BatchOutcome.failure(1, KeyError("b"))]
        >>> [o.value for o in outcomes if o.ok]
        ['run_a']
        >>> outcomes[1].unwrap()
        Traceback (most recent call last):
        KeyError: 'b'
    """

    index: int
    ok: bool
    value: T | None = None
    error: BaseException | None = None
    idempotency_key: str | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def success(
        cls, index: int, value: T, *, idempotency_key: str | None = None
    ) -> BatchOutcome[T]:
        """An outcome that holds a value."""
        return cls(index, True, value, None, idempotency_key=idempotency_key)

    @classmethod
    def failure(
        cls, index: int, error: BaseException, *, idempotency_key: str | None = None
    ) -> BatchOutcome[T]:
        """An outcome that holds the error the item raised."""
        return cls(index, False, None, error, idempotency_key=idempotency_key)

    def unwrap(self) -> T:
        """The value, or raise the item's error.

        Raises:
            Exception: The item's own error, when it failed.
        """
        if not self.ok:
            if self.error is not None:
                raise self.error
            raise RuntimeError(f"batch item {self.index} failed without an error")
        return cast(T, self.value)
