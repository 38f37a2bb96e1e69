"""Batch calls: one callable over many items with a few workers, one outcome per item."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import anyio

from ._exceptions import RunNotFoundError
from ._validation import check_concurrency, check_run_id
from .models import BatchOutcome, RunRequest

__all__ = ["ProgressCallback", "get_in_chunks", "requests_of", "run_batch"]

T = TypeVar("T")
R = TypeVar("R")
D = TypeVar("D")

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
    cancellation (and whatever ``on_progress`` raises) cancels the workers and propagates, as it
    is, once they have all stopped.
    """
    check_concurrency(concurrency)
    total = len(items)
    outcomes: list[BatchOutcome[R] | None] = [None] * total
    indexes = iter(range(total))
    done = failed = 0
    callback_error: BaseException | None = None

    async def worker(scope: anyio.CancelScope) -> None:
        nonlocal done, failed, callback_error
        for index in indexes:
            item = items[index]
            outcome: BatchOutcome[R]
            try:
                outcome = BatchOutcome.success(index, await call(item))
            except Exception as exc:
                outcome = BatchOutcome.failure(index, exc)
                failed += 1
            outcomes[index] = outcome
            done += 1
            if on_progress is not None:
                try:
                    on_progress(done, total, failed)
                except BaseException as exc:  # SystemExit too: raised as it is, not in a group
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


def requests_of(items: Iterable[Any], namespace: str | None) -> list[RunRequest | Exception]:
    """Each item as the RunRequest to send (keyed by ``namespace`` if given), or why it is not.

    Built before any request, but a bad item is that item's failure alone.
    """
    prepared: list[RunRequest | Exception] = []
    for item in items:
        try:
            request = item if isinstance(item, RunRequest) else RunRequest(**item)
            if namespace is not None:
                request = request.with_namespace(namespace)
        except Exception as exc:
            prepared.append(exc)
        else:
            prepared.append(request)
    return prepared


async def get_in_chunks(
    ids: Sequence[Any],
    fetch: Callable[[list[str]], Awaitable[dict[str, D | Exception]]],
    wrap: Callable[[D], R],
    chunk_size: int,
    concurrency: int,
    on_progress: ProgressCallback | None,
) -> list[BatchOutcome[R]]:
    """Look runs up ``chunk_size`` ids per ``fetch``, one outcome per id, in input order.

    A malformed id fails alone (ValueError, or TypeError for one that is not a str), an id the
    answer lacks is a RunNotFoundError, one ``fetch`` answers with an exception (an item that is
    not a run) fails alone, and a failed ``fetch`` fails only its chunk's outcomes.
    ``on_progress`` counts ids, not requests.
    """
    total = len(ids)
    outcomes: list[BatchOutcome[R] | None] = [None] * total
    done = failed = 0

    async def fetch_chunk(start: int) -> None:
        nonlocal done, failed
        chunk = ids[start : start + chunk_size]
        invalid = {i: _id_error(run_id) for i, run_id in enumerate(chunk, start)}
        valid = [run_id for i, run_id in enumerate(chunk, start) if invalid[i] is None]
        found: dict[str, D | Exception] = {}
        error: Exception | None = None
        if valid:
            try:
                found = await fetch(valid)
            except Exception as exc:
                error = exc
        for index, run_id in enumerate(chunk, start):
            outcome: BatchOutcome[R]
            bad_id = invalid[index]
            if bad_id is not None:
                outcome = BatchOutcome.failure(index, bad_id)
            elif error is not None:
                outcome = BatchOutcome.failure(index, error)
            elif run_id in found:
                value = found[run_id]
                outcome = (
                    BatchOutcome.failure(index, value)
                    if isinstance(value, Exception)
                    else BatchOutcome.success(index, wrap(value))
                )
            else:
                missing = RunNotFoundError(
                    f"run {run_id} not found", status_code=404, code="not_found"
                )
                outcome = BatchOutcome.failure(index, missing)
            outcomes[index] = outcome
            failed += not outcome.ok
        done += len(chunk)

    def progress(*_: int) -> None:
        # Called by run_batch, so that an exception in on_progress propagates rather than
        # becoming a failed chunk.
        if on_progress is not None:
            on_progress(done, total, failed)

    await run_batch(list(range(0, total, chunk_size)), fetch_chunk, concurrency, progress)
    return [outcome for outcome in outcomes if outcome is not None]


def _id_error(run_id: object) -> Exception | None:
    """Why ``run_id`` is not a run id, or None when it is one."""
    try:
        check_run_id(run_id)
    except (TypeError, ValueError) as exc:
        return exc
    return None
