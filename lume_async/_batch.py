"""Batch calls: one callable over many items with a few workers, one outcome per item."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ._validation import check_concurrency
from .models import BatchOutcome

__all__ = ["ProgressCallback", "run_batch"]

T = TypeVar("T")
R = TypeVar("R")

ProgressCallback = Callable[[int, int, int], None]
"""``on_progress(done, total, failed)``, called after each item of a batch finishes."""


async def run_batch(
    items: list[T],
    call: Callable[[T], Awaitable[R]],
    concurrency: int,
    on_progress: ProgressCallback | None,
) -> list[BatchOutcome[R]]:
    """Run ``call`` on each item with ``concurrency`` workers (never one task per item).

    The workers take the next index from one shared iterator, so memory stays at one outcome per
    item whatever the count. An ``Exception`` from ``call`` becomes that item's failed outcome;
    cancellation (and an exception from ``on_progress``) cancels the workers and propagates once
    they have all stopped.
    """
    check_concurrency(concurrency)
    total = len(items)
    outcomes: list[BatchOutcome[R] | None] = [None] * total
    indexes = iter(range(total))
    done = failed = 0
    callback_error: Exception | None = None

    async def worker(scope: anyio.CancelScope) -> None:
        nonlocal done, failed, callback_error
        for index in indexes:
            outcome: BatchOutcome[R]
            try:
                outcome = BatchOutcome.success(index, await call(items[index]))
            except Exception as exc:
                outcome = BatchOutcome.failure(index, exc)
                failed += 1
            outcomes[index] = outcome
            done += 1
            if on_progress is not None:
                try:
                    on_progress(done, total, failed)
                except Exception as exc:
                    callback_error = callback_error or exc
                    scope.cancel()
                    return

    if total:
        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, total)):
                tg.start_soon(worker, tg.cancel_scope)
    if callback_error is not None:
        raise callback_error
    return [outcome for outcome in outcomes if outcome is not None]
