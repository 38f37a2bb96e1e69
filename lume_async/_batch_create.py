"""``batch-create``: many creates in one request, each the create it would be alone.

``create_many`` sends its runs in batches, ``POST /v1/runs/batch-create`` with
``{"items": [{"idempotency_key", "run"}, ...]}`` (1 to 100), answered
``{"results": [{"status", "run" | "error"}, ...]}``: one result per item, in order, each what
``POST /v1/runs`` with that Idempotency-Key would have answered. An item and a create of its own
with the same key are the same request, so resending a batch whose answer was lost, or one of
its items alone, replays what was done: exactly once holds item by item.

An item the service could not do for now (429, 5xx, its key still in flight), an item the
answer left malformed or too large to read (over ``max_response_bytes``), and an item answered
with a run that cannot be its own (of another flow version or source, or one new run for two
keys) are sent again alone, through the transport's retries, with all the concurrency allowed.
A service without the route (or refusing it: 400, 404, 405, 413, 422, 501) gets one create
per request from then on. Small fan-outs are not batched: items are grouped only where there
are more of them than requests allowed in flight.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Container, Iterator, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import orjson

from . import _converter
from ._exceptions import (
    APIError,
    InvalidRequestError,
    LumeError,
    ResponseTooLargeError,
    ResponseValidationError,
)
from ._log_text import Printable
from ._responses import Response, error_from_response
from ._retry import is_retryable
from ._validation import check_concurrency
from .models import BatchOutcome, RunData, RunRequest

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._batch import ProgressCallback
    from ._clock import Clock
    from ._transport import RequestOptions, Transport

__all__ = [
    "BATCH_CREATE_MAX",
    "BatchCreate",
    "Created",
    "ItemResult",
    "create_in_batches",
    "name_the_key",
]

logger = logging.getLogger("lume_async.runs")

R = TypeVar("R")

BATCH_CREATE_MAX: Final = 100
"""The most creates one ``batch-create`` request may carry."""
_BATCH_BYTES: Final = 1 << 20
"""A batch's body stays under this (unless one item alone is larger)."""
_ALONE_BYTES: Final = 1 << 18
"""An item larger than this (inline rows) is sent alone."""
_BATCHES_IN_FLIGHT: Final = 8
"""Batches in flight at most: each answer holds up to 100 runs until it is read (about 0.4 MB
at 100 runs of 1.5 KB, parsed), and eight keep a service busy as well as 64 do."""
_REFUSED: Final = frozenset({400, 404, 405, 413, 422, 501})
"""Statuses of a whole batch that mean the service does not take batch creates."""

Created = tuple[RunData, bool]
"""A run created (or found in flight: ``True``, reused)."""
ItemResult = Created | LumeError | None
"""What became of one item: its run, its error, or None: send it again alone."""


class BatchCreate:
    """``batch-create`` for one client, until the service refuses it."""

    __slots__ = ("_clock", "_transport", "supported")

    def __init__(self, transport: Transport, clock: Clock) -> None:
        self._transport = transport
        self._clock = clock
        self.supported = True

    async def __call__(
        self,
        requests: Sequence[RunRequest],
        body: bytes,
        options: RequestOptions | None,
    ) -> list[ItemResult]:
        """One result per request: each created, failed, or None (to be sent alone).

        Raises:
            LumeError: The batch failed as a whole (after the transport's retries); nothing
                is known of its items.
        """
        if not self.supported:
            return [None] * len(requests)
        try:
            response = await self._transport.request(
                "POST",
                "/v1/runs/batch-create",
                route="/v1/runs/batch-create",
                body=body,
                retryable=True,  # every item carries its Idempotency-Key
                options=options,
                operation="create",
            )
        except ResponseTooLargeError:
            # The batch was done, but its answer is too large to read: each item sent alone
            # gets its own answer (its key replays its run), one run at a time.
            logger.warning(
                "a batch-create answer is larger than max_response_bytes; "
                "sending each of its %d items again alone",
                len(requests),
            )
            return [None] * len(requests)
        except APIError as exc:
            if exc.status_code not in _REFUSED:
                raise
            if self.supported:  # the other batches in flight may be refused the same way
                self.supported = False
                why = Printable(exc)  # the server's words: one escaped line
                logger.info("the service refused batch creates (%s); creating one by one", why)
            return [None] * len(requests)
        return self._results(response, requests)

    def _results(self, response: Response, requests: Sequence[RunRequest]) -> list[ItemResult]:
        count = len(requests)
        try:
            body = response.json()
        except ResponseValidationError:
            body = None
        results = body.get("results") if body.__class__ is dict else None
        if results.__class__ is not list or len(results) != count:
            logger.warning(
                "malformed batch-create answer (request %s): expected %d results; "
                "sending each item again alone",
                response.request_id,
                count,
            )
            return [None] * count
        pairs = zip(results, requests, strict=True)
        return _one_new_run_per_key([self._result(*pair, response) for pair in pairs], requests)

    def _result(self, item: object, request: RunRequest, response: Response) -> ItemResult:
        status = item.get("status") if isinstance(item, dict) else None
        if status.__class__ is not int:
            return None
        assert isinstance(item, dict) and isinstance(status, int)
        if status in (200, 201):
            try:
                run = _converter.run_from_obj(item.get("run"), request_id=response.request_id)
            except ResponseValidationError:
                return None
            if run.flow_version != request.flow_version or run.source_path != request.source_path:
                return None  # another item's run (or none of them): its key tells, alone
            return run, status == 200
        if not 400 <= status <= 599:
            return None
        error = item.get("error")
        # What a failed create says reaches messages, logs and error reports: the key masked,
        # as in the answer of a create sent alone.
        raw = self._transport.redact(orjson.dumps(error)) if error else b""
        answer = Response(status, response.headers, raw)
        failure = error_from_response(answer, now=self._clock.time(), operation="create")
        return None if _later(failure) else failure


def _one_new_run_per_key(
    results: list[ItemResult], requests: Sequence[RunRequest]
) -> list[ItemResult]:
    """``results`` without the new runs (201) answered for more than one key: one run is made
    by one key, so which item made it is unknown, and each is sent again alone."""
    keys: dict[str, set[str]] = {}
    for result, request in zip(results, requests, strict=True):
        if isinstance(result, tuple) and not result[1]:
            keys.setdefault(result[0].id, set()).add(request.idempotency_key)
    if all(len(made_by) == 1 for made_by in keys.values()):
        return results
    return [
        None
        if isinstance(result, tuple) and not result[1] and len(keys[result[0].id]) > 1
        else result
        for result in results
    ]


def _later(failure: LumeError) -> bool:
    """Whether the service may do this item if it is asked again (alone, with retries)."""
    if isinstance(failure, InvalidRequestError):
        return failure.status_code == 409 and failure.code == "idempotency_in_flight"
    return is_retryable(failure)


def name_the_key(failure: LumeError, key: str) -> None:
    """Note on the failure of a create sent with ``key`` the key that finds the run it may have
    made all the same: its answer was lost, garbled or too large to read (a success all the
    same), or the service may still do it. Created again with that key, it is answered with that
    run, not made a second time."""
    if not isinstance(failure, APIError) or _later(failure) or failure.status_code < 300:
        failure.add_note(
            f"this create was sent with idempotency_key={key!r} and may have made a run all the "
            "same: create it again with that key to get that run, not a second one"
        )


Chunk = tuple[list[int], bytes | None]
"""The indexes of items sent together and the batch's body, or one index and None: alone."""


def _twins(prepared: Sequence[RunRequest | Exception]) -> dict[int, list[int]]:
    """The items that repeat an earlier one (the same key and the same request), by the index
    of that earlier one: they are not sent, they share its outcome."""
    first: dict[str, int] = {}
    twins: dict[int, list[int]] = {}
    for index, request in enumerate(prepared):
        if isinstance(request, RunRequest):
            seen = first.setdefault(request.idempotency_key, index)
            if seen != index and prepared[seen] == request:
                twins.setdefault(seen, []).append(index)
    return twins


def _chunks(
    prepared: Sequence[RunRequest | Exception], concurrency: int, skip: Container[int] = ()
) -> Iterator[Chunk]:
    """The items (but those in ``skip``) in the groups sent together, each body encoded once,
    as they are needed.

    Items are grouped only where there are more than ``concurrency``: into about as many
    groups as batches may be in flight, up to 100 items and 1 MiB each. An item that is not a
    request, or is too large to share a body, is a group of its own.
    """
    sent = [index for index in range(len(prepared)) if index not in skip]
    many = len(sent) > concurrency
    lanes = min(concurrency, _BATCHES_IN_FLIGHT)
    size = min(BATCH_CREATE_MAX, math.ceil(len(sent) / lanes)) if many else 1
    indexes: list[int] = []
    items: list[bytes] = []
    used = len(_envelope([]))  # the body's bytes so far, commas and envelope included
    for index in sent:
        request = prepared[index]
        if size == 1 or not isinstance(request, RunRequest):
            yield [index], None
            continue
        body = request.wire_body()
        if len(body) > _ALONE_BYTES:
            yield [index], None
            continue
        # Joined at once: the encoder's output buffers (4 KiB each, whatever the body's size)
        # are not kept while a chunk waits for its turn.
        item = b'{"idempotency_key":%s,"run":%s}' % (_key(request), body)
        if indexes and (len(indexes) == size or used + 1 + len(item) > _BATCH_BYTES):
            yield indexes, _envelope(items)
            indexes, items, used = [], [], len(_envelope([]))
        indexes.append(index)
        items.append(item)
        used += len(item) + 1  # and its comma
    if indexes:
        yield indexes, _envelope(items)


def _key(request: RunRequest) -> bytes:
    return orjson.dumps(request.idempotency_key)


def _envelope(items: list[bytes]) -> bytes:
    return b'{"items":[' + b",".join(items) + b"]}"


async def create_in_batches(
    prepared: list[RunRequest | Exception],
    batch: Callable[[Sequence[RunRequest], bytes], Awaitable[list[ItemResult]]],
    alone: Callable[[RunRequest], Awaitable[Created]],
    wrap: Callable[[Created], R],
    concurrency: int,
    on_progress: ProgressCallback | None,
) -> list[BatchOutcome[R]]:
    """One outcome per item of ``prepared``, in input order, creating with ``batch`` where the
    items are many and ``alone`` otherwise (and for what a batch leaves to it). An item that
    repeats an earlier one (the same request with the same key) is sent once: sent twice at
    once, one would find the other's key in flight; both get its outcome, each its own handle.

    At most ``concurrency`` requests are in flight, and of them at most eight batches.
    ``on_progress(done, total, failed)`` is called after each item; what it raises cancels the
    rest and propagates.
    """
    check_concurrency(concurrency)
    total = len(prepared)
    outcomes: list[BatchOutcome[R] | None] = [None] * total
    twins = _twins(prepared)
    chunks = _chunks(prepared, concurrency, {i for later in twins.values() for i in later})
    done = failed = 0
    callback_error: BaseException | None = None
    scope = anyio.CancelScope()
    batches = anyio.Semaphore(_BATCHES_IN_FLIGHT)

    def key(index: int) -> str | None:
        request = prepared[index]
        return request.idempotency_key if isinstance(request, RunRequest) else None

    def succeed(index: int, created: Created) -> None:
        for i in (index, *twins.get(index, ())):
            outcomes[i] = BatchOutcome.success(i, wrap(created), idempotency_key=key(i))
            settled(ok=True)

    def fail(index: int, error: Exception) -> None:
        for i in (index, *twins.get(index, ())):
            outcomes[i] = BatchOutcome.failure(i, error, idempotency_key=key(i))
            settled(ok=False)

    def settled(*, ok: bool) -> None:
        nonlocal done, failed, callback_error
        done += 1
        failed += not ok
        if on_progress is not None and callback_error is None:
            try:
                on_progress(done, total, failed)
            except BaseException as exc:  # SystemExit too: raised as it is, not in a group
                callback_error = exc
                scope.cancel()

    async def send_alone(index: int, request: RunRequest) -> None:
        try:
            value = await alone(request)
        except Exception as exc:
            fail(index, exc)
        else:
            succeed(index, value)

    async def send(indexes: list[int], body: bytes | None) -> list[tuple[int, RunRequest]]:
        """Send one chunk; what its batch leaves to single creates is returned."""
        first = prepared[indexes[0]]
        if isinstance(first, Exception):  # an item that is not a request: always alone
            fail(indexes[0], first)
            return []
        if body is None:
            await send_alone(indexes[0], first)
            return []
        requests = [
            item for item in map(prepared.__getitem__, indexes) if isinstance(item, RunRequest)
        ]
        try:
            async with batches:
                results = await batch(requests, body)
        except Exception as exc:
            for index in indexes:
                fail(index, exc)
            return []
        later = []
        for index, request, result in zip(indexes, requests, results, strict=True):
            if result is None:
                later.append((index, request))
            elif isinstance(result, tuple):
                succeed(index, result)
            else:
                fail(index, result)
        return later

    async def left_alone(index: int, request: RunRequest) -> None:
        async with slots:
            await send_alone(index, request)

    async def send_chunk(
        indexes: list[int], body: bytes | None, slot: object, tg: TaskGroup
    ) -> None:
        try:
            later = await send(indexes, body)
        finally:
            slots.release_on_behalf_of(slot)
        # Each in a request slot of its own: a refused or partial batch's items go out with
        # all the concurrency allowed, not one after another.
        for index, request in later:
            tg.start_soon(left_alone, index, request)

    if total:
        slots = anyio.CapacityLimiter(concurrency)  # requests in flight
        with scope:
            async with anyio.create_task_group() as tg:
                while True:
                    slot = object()
                    await slots.acquire_on_behalf_of(slot)
                    chunk = next(chunks, None)  # encoded only once it has a slot
                    if chunk is None:
                        slots.release_on_behalf_of(slot)
                        break
                    tg.start_soon(send_chunk, *chunk, slot, tg)
    if callback_error is not None:
        raise callback_error
    return [outcome for outcome in outcomes if outcome is not None]
