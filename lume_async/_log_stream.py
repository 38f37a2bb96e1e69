"""Following a run's log: its entries as they are written, until the run has ended.

A run's log only grows, oldest entry first, so the stream keeps a count of the entries it has
handed out and asks for the page that holds the next one: nothing is repeated and nothing is
skipped. A log whose entries already handed out are removed or rewritten (its total falls, or
the last entry handed out is not where it was) is refused with ``ResponseValidationError``:
where to read on from is lost. Each round starts on the page holding the last entry handed out
(at a page boundary too), so that entry is seen where it was before anything after it is given.
Each round reads the run's status first and then the log to its end; once a status read says
the run has ended, the log read after it is the whole log, and the stream ends. That log no
longer changes: a total that moves while it is read (a log without end, or one that loses
entries it said it had) is refused rather than followed for ever or cut short. Pauses between
rounds start at ``poll_interval``, grow by half while nothing new is written (up to
``MAX_INTERVAL`` or ``poll_interval`` if that is longer) and drop back as soon as something is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import attrs

from ._clock import Clock
from ._listing_checks import untrustworthy
from .models import LogEntry, Page, RunData

__all__ = ["MAX_INTERVAL", "follow"]

MAX_INTERVAL: Final = 30.0
_GROWTH: Final = 1.5


async def follow(
    *,
    read_run: Callable[[], Awaitable[RunData]],
    read_page: Callable[[int], Awaitable[Page[LogEntry]]],
    page_size: int,
    poll_interval: float,
    clock: Clock,
) -> AsyncIterator[Page[LogEntry]]:
    """Pages of entries not seen before (``read_page(n)`` reads page ``n`` of ``page_size``)."""
    seen = 0
    last: LogEntry | None = None  # the last entry handed out: a log only grows after it
    pause = poll_interval
    longest = max(poll_interval, MAX_INTERVAL)
    while True:
        ended = (await read_run()).is_terminal
        grew = False
        final: int | None = None  # the total of an ended run's log, as its first page said
        number = max(seen - 1, 0) // page_size + 1  # the page of the last entry handed out
        while True:
            page = await read_page(number)
            offset = seen - (number - 1) * page_size
            if (
                (page.total is not None and page.total < seen)
                or len(page.items) < offset
                or (offset and page.items[offset - 1] != last)
            ):
                # Where the next entry is to be read from is lost: it could be skipped.
                why = "entries already followed were removed or rewritten while following the log"
                raise untrustworthy(page.request_id, why)
            if ended:
                if final is None:
                    final = page.total
                elif page.total != final:
                    why = (
                        f"the log of a run that has ended went from {final} to {page.total} "
                        "entries while it was read"
                    )
                    raise untrustworthy(page.request_id, why)
            fresh = page.items[offset:]
            if fresh:
                seen += len(fresh)
                last = fresh[-1]
                grew = True
                yield attrs.evolve(page, items=fresh)
            # A full page read to its end: the next one starts where it stopped.
            if len(page.items) < page_size or (page.total is not None and seen >= page.total):
                break
            number += 1
        if ended:
            return
        pause = poll_interval if grew else min(pause * _GROWTH, longest)
        await clock.sleep(pause)
