"""``AsyncPaginator``: one way to walk every listing, by page number or by cursor.

Page-numbered listings (results, rejects, logs, flows, webhook endpoints) fetch the next pages
ahead while the caller consumes the current one, with at most ``prefetch`` requests in flight and
so at most ``prefetch + 1`` pages in memory. Cursor listings (runs) follow ``next_cursor`` one
page at a time. Every page is read whole before its first item is yielded, so breaking out of a
loop never holds a connection; in-flight read-ahead is cancelled when the iteration is closed.

Nothing the server says is taken on trust (see ``_listing_checks``): a page that is not the one
asked for, totals that disagree, an item listed twice, or a cursor followed before raises
``ResponseValidationError`` rather than looping, dropping rows or repeating them. Rows appended
while a page-numbered listing is walked are included.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from . import _converter
from ._bound import BoundToClient
from ._exceptions import NotFoundError, ResponseValidationError
from ._export import RowsWritten, dataframe_builder, table_builder, write_csv, write_jsonl
from ._listing_checks import ListingChecks, check_numbered_page
from ._validation import check_page_size
from .models import Page

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from ._transport import RequestOptions, Transport

__all__ = ["AsyncPaginator", "check_numbered_page", "get_page", "numbered_listing"]

T = TypeVar("T")

PageFetcher = Callable[[int], Awaitable[Page[T]]]
CursorFetcher = Callable[[str | None], Awaitable[Page[T]]]
PageStream = Callable[[], AsyncIterator[Page[T]]]


class AsyncPaginator(BoundToClient, Generic[T]):
    """Items with ``async for``, pages with ``.pages()``, everything with ``.collect()``.

    Nothing is fetched until you iterate; the next pages are read ahead while you consume one,
    and leaving a loop early (``break``, an exception) releases the connection at once. Each
    iteration starts again from the first page. Errors of the requests (RunNotFoundError for
    an unknown run, for one) are raised by the iteration.

    ``to_jsonl()`` and ``to_csv()`` write every item to a file page by page, so memory stays
    bounded by a page whatever the listing's length; ``to_pandas()`` and ``to_arrow()`` build a
    DataFrame or Table when pandas or pyarrow is installed.
    """

    def __init__(
        self,
        *,
        fetch_page: PageFetcher[T] | None = None,
        fetch_cursor: CursorFetcher[T] | None = None,
        stream: PageStream[T] | None = None,
        page_size: int,
        prefetch: int = 2,
        item_id: Callable[[T], Hashable] | None = None,
        ordered_by: Callable[[T], Any] | None = None,
        descending: bool | None = False,
        resumed_from: str | None = None,
        fixed_total: bool = False,
        fields: Sequence[str] | None = None,
    ) -> None:
        # ``fields``: the keys of every item's row, where the items are models (the header of
        # an empty CSV export, the columns of an empty DataFrame).
        self._fields = list(fields) if fields is not None else None
        # ``item_id`` names an item, so that one listed twice is caught; ``ordered_by`` is the
        # key a cursor listing is sorted on (``descending`` or not), so one going back is caught;
        # ``resumed_from`` is the saved cursor a cursor listing starts from; ``fixed_total``: a
        # page-numbered listing that cannot grow while it is read.
        if sum(f is not None for f in (fetch_page, fetch_cursor, stream)) != 1:
            raise TypeError("give exactly one of fetch_page / fetch_cursor / stream")
        self._fetch_page = fetch_page
        self._fetch_cursor = fetch_cursor
        self._stream = stream
        self._page_size = page_size
        self._prefetch = max(0, prefetch)
        self._item_id = item_id
        self._ordered_by = ordered_by
        self._descending = descending
        self._resumed_from = resumed_from
        self._fixed_total = fixed_total

    @property
    def page_size(self) -> int:
        """How many items each page request asks for (1..100)."""
        return self._page_size

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        pages = self.pages()
        try:
            async for page in pages:
                for item in page.items:
                    yield item
        finally:
            await pages.aclose()  # type: ignore[attr-defined]

    def pages(self) -> AsyncIterator[Page[T]]:
        """The pages in order (each read whole, and checked, before it is yielded)."""
        if self._stream is not None:
            return self._stream()
        checks = ListingChecks(
            page_size=self._page_size,
            item_id=self._item_id,
            ordered_by=self._ordered_by,
            descending=self._descending,
            resumed_from=self._resumed_from,
            fixed_total=self._fixed_total,
        )
        if self._fetch_page is not None:
            return self._numbered_pages(self._fetch_page, checks)
        assert self._fetch_cursor is not None
        return self._cursor_pages(self._fetch_cursor, checks)

    async def collect(self) -> list[T]:
        """Every item of every page, in order, as one list (held in memory: mind large runs).

        Raises:
            LumeError: The first error of a page request, as iterating would raise it.
        """
        items: list[T] = []
        async for page in self.pages():
            items.extend(page.items)
        return items

    async def to_jsonl(
        self, path: str | os.PathLike[str], *, on_progress: RowsWritten | None = None
    ) -> int:
        """Write every item to ``path`` as JSON Lines, one object a line; return how many.

        Pages are written as they arrive, so memory holds one page at a time. The file appears
        complete or not at all: it is written beside ``path`` and renamed over it at the end.
        ``on_progress(rows_written)`` is called after each page.

        Raises:
            LumeError: A page request failed; no file is left at ``path``.
            OSError: The file could not be written.
        """
        return await write_jsonl(self.pages(), path, on_progress)

    async def to_csv(
        self,
        path: str | os.PathLike[str],
        *,
        columns: Sequence[str] | None = None,
        on_progress: RowsWritten | None = None,
    ) -> int:
        """Write every item to ``path`` as CSV with a header row; return how many rows.

        The columns are ``columns`` or the keys of the first page's rows, in order of first
        appearance; a later row with a key outside them raises ValueError (pass ``columns``).
        A missing key or a null is an empty cell; a nested object or list is written as JSON.
        Written page by page and renamed into place at the end, as ``to_jsonl`` is.

        Raises:
            ValueError: A row has a key outside the columns.
            LumeError: A page request failed; no file is left at ``path``.
            OSError: The file could not be written.
        """
        return await write_csv(self.pages(), path, columns, on_progress, self._fields)

    async def to_pandas(self) -> pandas.DataFrame:
        """Every item as a ``pandas.DataFrame``, one row each (needs ``lume-sdk[pandas]``).

        Raises:
            ImportError: pandas is not installed (before any request).
            LumeError: A page request failed.
        """
        build = dataframe_builder(self._fields)  # no request is sent when pandas is missing
        return build(await self.collect())

    async def to_arrow(self) -> pyarrow.Table:
        """Every item as a ``pyarrow.Table``, one row each (needs ``lume-sdk[arrow]``).

        Raises:
            ImportError: pyarrow is not installed (before any request).
            LumeError: A page request failed.
        """
        build = table_builder(self._fields)  # no request is sent when pyarrow is missing
        return build(await self.collect())

    async def _numbered_pages(
        self, fetch: PageFetcher[T], checks: ListingChecks[T]
    ) -> AsyncIterator[Page[T]]:
        first = await fetch(1)
        checks.numbered(first, 1)
        yield first
        # (page, the highest total when it was asked for: it cannot say less, task)
        ahead: deque[tuple[int, int, asyncio.Task[Page[T]]]] = deque()
        next_page = 2
        try:
            # ``checks.last_page`` grows when a later page says rows were appended meanwhile.
            while ahead or next_page <= checks.last_page:
                while next_page <= checks.last_page and len(ahead) < max(1, self._prefetch):
                    task = asyncio.ensure_future(fetch(next_page))
                    ahead.append((next_page, checks.highest_total, task))
                    next_page += 1
                asked, floor, task = ahead.popleft()
                page = await task
                checks.numbered(page, asked, floor)
                yield page
        finally:
            for _, _, task in ahead:
                task.cancel()
            if ahead:
                await asyncio.gather(*(task for _, _, task in ahead), return_exceptions=True)

    async def _cursor_pages(
        self, fetch: CursorFetcher[T], checks: ListingChecks[T]
    ) -> AsyncIterator[Page[T]]:
        cursor: str | None = None
        while True:
            page = await fetch(cursor)
            checks.cursor(page)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


async def get_page(
    transport: Transport,
    path: str,
    route: str,
    item_cls: type[T],
    page: int,
    size: int,
    *,
    options: RequestOptions | None,
    not_found: type[NotFoundError] = NotFoundError,
    check_item: Callable[[T], None] | None = None,
) -> Page[T]:
    """One page of a page-numbered listing, its items decoded as ``item_cls``; ``check_item``
    raises ValueError for an item that is well-formed JSON but cannot be believed."""
    response = await transport.request(
        "GET",
        path,
        route=route,
        params={"page": page, "size": size},
        retryable=True,
        options=options,
        not_found=not_found,
        operation="read",
    )
    try:
        decoded = _converter.decode_page(response.body, item_cls)
    except Exception as exc:
        if response.request_id and getattr(exc, "request_id", "") is None:
            exc.request_id = response.request_id  # type: ignore[attr-defined]
        raise
    if check_item is not None:
        for index, item in enumerate(decoded.items):
            try:
                check_item(item)
            except ValueError as exc:
                raise ResponseValidationError(
                    f"malformed item {index} of page {page} of {route}: {exc}",
                    request_id=response.request_id,
                ) from None
    # A page-numbered page says where it sits by ``page`` and ``pages``: a ``next_cursor`` it
    # carries besides would make ``has_next`` true on its last page.
    return attrs.evolve(decoded, next_cursor=None, request_id=response.request_id)


def numbered_listing(
    transport: Transport,
    path: str,
    route: str,
    item_cls: type[T],
    page_size: int,
    *,
    options: RequestOptions | None,
    not_found: type[NotFoundError] = NotFoundError,
    item_id: Callable[[T], Hashable] | None = None,
    fixed_total: bool = False,
    check_item: Callable[[T], None] | None = None,
) -> AsyncPaginator[T]:
    """A paginator over a page-numbered listing (checked ``page_size``, read-ahead included);
    ``fixed_total``: the listing cannot grow while it is read; ``check_item``: see get_page."""
    check_page_size(page_size)

    async def fetch(page: int) -> Page[T]:
        return await get_page(
            transport,
            path,
            route,
            item_cls,
            page,
            page_size,
            options=options,
            not_found=not_found,
            check_item=check_item,
        )

    fields = [f.name for f in attrs.fields(item_cls)] if attrs.has(item_cls) else None
    return AsyncPaginator(
        fetch_page=fetch,
        page_size=page_size,
        item_id=item_id,
        fixed_total=fixed_total,
        fields=fields,
    )
