"""``ListingChecks``: what every page of one walk through a listing must agree with.

A paginator believes nothing a server says about where a listing goes: a cursor it has already
followed (a repeat, or a cycle of any length), a page that is not the one asked for, an item seen
before, totals that disagree with each other or with the items, or items out of the listing's
order each raise ``ResponseValidationError`` (with the request id of the answer at fault) instead
of looping forever, dropping rows or repeating them.

Memory stays bounded whatever the listing's length: the cursors followed and the item ids seen
are remembered in windows of ``WINDOW`` entries, and an ordered listing (runs, by ``created_at``)
is checked to keep moving in its direction, which catches a cycle of any length at once.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from datetime import timedelta
from typing import Any, Final, Generic, TypeVar

from ._exceptions import ResponseValidationError, cut
from ._validation import check_run_id
from ._wire import parse_datetime
from .models import Page, RunData

__all__ = [
    "WINDOW",
    "BoundedSet",
    "ListingChecks",
    "check_listed_run",
    "check_numbered_page",
    "untrustworthy",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

WINDOW: Final = 10_000
"""How many cursors, and how many item ids, one walk remembers."""


class BoundedSet(Generic[K]):
    """A set that forgets its oldest members past ``limit``."""

    __slots__ = ("_limit", "_members", "_order")

    def __init__(self, limit: int = WINDOW) -> None:
        self._limit = limit
        self._members: set[K] = set()
        self._order: deque[K] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def add(self, key: K) -> None:
        if key in self._members:
            return
        self._members.add(key)
        self._order.append(key)
        if len(self._order) > self._limit:
            self._members.discard(self._order.popleft())


def _digest(cursor: str) -> bytes:
    """What a walk remembers of a cursor it followed: 16 bytes, however long the cursor."""
    return hashlib.blake2b(cursor.encode(), digest_size=16).digest()


def untrustworthy(request_id: str | None, why: str) -> ResponseValidationError:
    """The error for a listing's answer that cannot be believed (``why``), naming its request."""
    suffix = f" (request_id={request_id})" if request_id else ""
    return ResponseValidationError(f"untrustworthy listing: {why}{suffix}", request_id=request_id)


def _lying(page: Page[Any], why: str) -> ResponseValidationError:
    return untrustworthy(page.request_id, why)


def expected_pages(total: int, size: int) -> int:
    return -(-total // size)  # in integers: a float quotient rounds totals past 2**53


def check_numbered_page(page: Page[Any], asked: int, size: int) -> int:
    """One page of a page-numbered listing on its own: the one asked for, self-consistent.

    Returns how many pages its ``total`` makes.
    """
    if page.page != asked:
        raise _lying(page, f"asked for page {asked}, got page {page.page}")
    if page.size != size:
        raise _lying(page, f"asked for pages of {size} items, got size {page.size}")
    total = page.total
    if total is None or total < 0:
        raise _lying(page, f"page {asked} has no total item count (total={total!r})")
    count = len(page.items)
    if count > size:
        raise _lying(page, f"page {asked} holds {count} items, more than its size {size}")
    pages = expected_pages(total, size)
    if page.pages is None:
        if total > size:
            raise _lying(page, f"no page count although total {total} is more than size {size}")
    elif page.pages != pages and not (total == 0 and page.pages == 1):
        raise _lying(page, f"pages={page.pages} disagrees with total {total} and size {size}")
    expected = max(0, min(size, total - (asked - 1) * size))
    if count != expected:
        raise _lying(
            page,
            f"page {asked} holds {count} items where total {total} and size {size} make {expected}",
        )
    return pages


# How far a listed run's ``created_at`` may sit outside a ``created_after`` / ``created_before``
# window: a service may show it rounded (to the millisecond, or the second) from what it filtered.
_CREATED_SLACK: Final = timedelta(seconds=1)


def check_listed_run(
    run: RunData, query: Iterable[tuple[str, str | int]], request_id: str | None
) -> None:
    """A run of a run listing's answer: it has a run id (a handle puts it in URL paths), and it
    is within the filters of ``query`` a run cannot change (flow version, source path, creation
    time), or a listing would present runs that do not match as matching."""
    try:
        check_run_id(run.id)
    except ValueError:
        why = f"a listed run's id {cut(run.id, 80)!r} is not a run id"
        raise untrustworthy(request_id, why) from None
    for name, value in query:
        if name == "flow_version":
            outside = run.flow_version != value
        elif name == "source_path":
            outside = run.source_path != value
        elif name == "created_after":
            outside = run.created_at < parse_datetime(value) - _CREATED_SLACK
        elif name == "created_before":
            outside = run.created_at >= parse_datetime(value) + _CREATED_SLACK
        else:  # labels, tags and statuses change while a listing is read; the rest is paging
            continue
        if outside:
            why = f"run {run.id} was listed although it does not match {name}={value!r}"
            raise untrustworthy(request_id, why)


class ListingChecks(Generic[T]):
    """The state of one walk through a listing: what its pages said so far.

    ``item_id`` names an item (repeats are refused); ``ordered_by`` gives the key the listing is
    sorted on, ascending unless ``descending``: no item may step back against that order. With
    ``descending=None`` (a listing resumed from a cursor, which carries its own order) the order
    is the one its first two different keys take, and that cursor (``resumed_from``) counts as
    followed.
    """

    __slots__ = (
        "_cursors",
        "_descending",
        "_first_total",
        "_fixed_total",
        "_highest_total",
        "_ids",
        "_item_id",
        "_last_key",
        "_ordered_by",
        "_size",
        "last_page",
    )

    def __init__(
        self,
        *,
        page_size: int,
        item_id: Callable[[T], Hashable] | None = None,
        ordered_by: Callable[[T], Any] | None = None,
        descending: bool | None = False,
        resumed_from: str | None = None,
        fixed_total: bool = False,
    ) -> None:
        self._size = page_size
        self._fixed_total = fixed_total
        self._item_id = item_id
        self._ordered_by = ordered_by
        self._descending = descending
        self._ids: BoundedSet[Hashable] = BoundedSet()
        self._cursors: BoundedSet[bytes] = BoundedSet()  # digests: a cursor may be long
        self._first_total: int | None = None
        self._highest_total = 0
        self._last_key: Any = None
        if resumed_from is not None:
            self._cursors.add(_digest(resumed_from))  # pointing back at it is a loop too
        self.last_page = 1
        """The last page of a page-numbered listing, as its newest total says."""

    @property
    def highest_total(self) -> int:
        """The largest total a page checked so far said: a page asked for from now on cannot
        say less (``numbered``'s ``floor``)."""
        return self._highest_total

    def numbered(self, page: Page[T], asked: int, floor: int = 0) -> None:
        """Page ``asked`` of a page-numbered listing; ``floor`` is ``highest_total`` as it was
        when the page was asked for (pages asked for together may be answered in any order)."""
        pages = check_numbered_page(page, asked, self._size)
        total = page.total
        assert total is not None
        low = max(floor, self._first_total or 0)
        if self._first_total is None:
            self._first_total = total
        elif total < low:
            # Rows were removed: every later row moved up, and some would be skipped.
            raise _lying(page, f"the total fell from {low} to {total} while paging")
        elif total != self._first_total and self._fixed_total:
            # A listing that cannot grow, growing: followed, it might never end.
            raise _lying(
                page,
                f"the total grew from {self._first_total} to {total} while paging rows that"
                " cannot change",
            )
        self.last_page = max(self.last_page, pages)
        self._highest_total = max(self._highest_total, total)
        self._check_items(page)

    def cursor(self, page: Page[T]) -> None:
        """The next page of a cursor listing, in order."""
        if len(page.items) > self._size:
            raise _lying(page, f"a page holds {len(page.items)} items, more than {self._size}")
        next_cursor = page.next_cursor
        if next_cursor is not None:
            if not page.items:
                raise _lying(page, "a page without items points to a next page")
            key = _digest(next_cursor)
            if key in self._cursors:
                raise _lying(page, "next_cursor repeats a cursor already followed")
            self._cursors.add(key)
        self._check_items(page)

    def _check_items(self, page: Page[T]) -> None:
        item_id, ordered_by = self._item_id, self._ordered_by
        if item_id is None and ordered_by is None:
            return
        for item in page.items:
            if item_id is not None:
                key = item_id(item)
                if key in self._ids:
                    raise _lying(page, f"item {key!r} was already listed")
                self._ids.add(key)
            if ordered_by is not None:
                self._check_order(page, ordered_by(item))

    def _check_order(self, page: Page[T], key: Any) -> None:
        last = self._last_key
        self._last_key = key
        if last is None or key == last:
            return
        if self._descending is None:
            self._descending = key < last
        elif key > last if self._descending else key < last:
            direction = "descending" if self._descending else "ascending"
            raise _lying(page, f"items out of {direction} order ({key} after {last})")
