"""``batch-get``: the request that asks about up to 100 runs at once, and its answer.

The shared poller asks with ``known``, the ``updated_at`` its handles hold of the runs it asks
about, so the service sends again only the runs that have moved and names the others in
``unchanged``. A service that predates ``known`` sends every run (the poller then compares each
with what it holds), or refuses the request, after which the client asks without it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from . import _converter
from ._exceptions import InvalidRequestError, ResponseValidationError
from ._status import behind
from ._validation import check_batch_ids
from .models import RunData, RunStatus

if TYPE_CHECKING:
    from ._responses import Response
    from ._transport import RequestOptions, Transport

__all__ = [
    "BATCH_GET_MAX",
    "BatchFetch",
    "Items",
    "PollingBatchGet",
    "RunsAnswer",
    "batch_get_answer",
    "malformed",
    "not_a_run",
]

logger = logging.getLogger("lume_async.waiting")

BATCH_GET_MAX: Final = 100
"""The most run ids one ``batch-get`` request may name."""

Items = dict[str, dict[str, Any]]
BatchFetch = Callable[[list[str], "Mapping[str, datetime] | None"], Awaitable["RunsAnswer"]]
"""``batch-get`` of some ids, with the ``updated_at`` held of some of them (or None)."""


class RunsAnswer:
    """One ``batch-get`` answer: its runs by id as parsed JSON, each typed only when asked.

    The poller decodes only the items its cells do not already hold (``RunCell.holds``), and
    asks with the ``updated_at`` they hold (``known``), so that the service leaves out the runs
    that have not changed and names them in ``unchanged``. An answer off the wire is parsed where
    its items are read, so that a sweep's parsed runs are not kept (and promoted by the cyclic
    collector) while its other requests are in flight.
    """

    __slots__ = ("_items", "_known", "request_id")

    def __init__(
        self,
        items: Items | Response,
        request_id: str | None = None,
        *,
        known: Collection[str] = (),
        unchanged: Collection[str] = (),
    ) -> None:
        # The answer off the wire, parsed where its items are read; or one built in memory.
        self._items: Response | tuple[Items, Collection[str]] = (
            (items, frozenset(unchanged).intersection(known)) if isinstance(items, dict) else items
        )
        self._known = known  # the ids asked about with a known updated_at
        self.request_id = request_id

    @property
    def items(self) -> Items:
        """The runs by id (ResponseValidationError if the answer is not a batch of runs)."""
        return self.read()[0]

    def read(self) -> tuple[Items, Collection[str]]:
        """The runs sent, by id, and the ids said to be unchanged since their ``known`` state.

        Only ids asked about with a known state can be unchanged: any other id the service
        names there is left for the caller to find missing. ResponseValidationError if the
        answer is not a batch of runs.

        The runs come in a dict of their own at every call, which the caller may empty as it
        goes (an answer off the wire is not kept parsed: it may outlive its reading).
        """
        items = self._items
        if isinstance(items, tuple):
            return dict(items[0]), items[1]
        return _batch_items(items, self._known)

    def decode(self, item: dict[str, Any]) -> RunData:
        """One item as a ``RunData`` (ResponseValidationError if it is not a run)."""
        return _converter.run_from_obj(item, request_id=self.request_id)

    def runs(self) -> dict[str, RunData]:
        """Every item, decoded, by id (ResponseValidationError if one is not a run)."""
        return {run_id: self.decode(item) for run_id, item in self.items.items()}

    def each(self) -> dict[str, RunData | Exception]:
        """Every item by id: decoded, or why it is not a run (that run's error only)."""
        found: dict[str, RunData | Exception] = {}
        for run_id, item in self.items.items():
            try:
                found[run_id] = self.decode(item)
            except ResponseValidationError as exc:
                found[run_id] = not_a_run(exc, run_id)
        return found


def _batch_items(response: Response, known: Collection[str]) -> tuple[Items, Collection[str]]:
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise malformed("batch-get answer", "expected {items, missing}", response)
    items: Items = {}
    for item in body["items"]:
        run_id = item.get("id") if item.__class__ is dict else None
        if run_id.__class__ is not str:
            _converter.run_from_obj(item, request_id=response.request_id)  # says what is wrong
            raise malformed("batch-get answer", "an item without a run id", response)
        kept = items.setdefault(run_id, item)
        if kept is not item and not _behind(item, kept):  # sent twice: the later, unless older
            items[run_id] = item
    said = body.get("unchanged")
    if said is None:  # a service that does not take ``known`` sends every run
        return items, ()
    if said.__class__ is not list or not all(run_id.__class__ is str for run_id in said):
        raise malformed("batch-get answer", "unchanged is not a list of run ids", response)
    return items, set(said).intersection(known) if said and known else ()


def _behind(item: dict[str, Any], kept: dict[str, Any]) -> bool:
    """True if ``item`` says of its run older news than ``kept`` does (see ``behind``)."""
    said, held = _status_of(item), _status_of(kept)
    return said is not None and held is not None and behind(said, held)


def _status_of(item: dict[str, Any]) -> RunStatus | None:
    status = item.get("status")
    try:
        return RunStatus(status) if status.__class__ is str else None
    except ValueError:
        return None


async def batch_get_answer(
    transport: Transport,
    run_ids: Sequence[str],
    known: Mapping[str, datetime] | None = None,
    *,
    options: RequestOptions | None = None,
) -> RunsAnswer:
    """One ``batch-get`` request for 1 to 100 ids: the runs found, by id, not parsed yet.

    ``known`` maps some of the ids to the ``updated_at`` held of them: the service need not
    send those runs again while they are still at that instant (see ``RunsAnswer.read``).
    """
    check_batch_ids(run_ids, BATCH_GET_MAX)
    body = {"ids": list(run_ids)}  # checked: plain strings
    if known:
        body["known"] = known  # type: ignore[assignment]
    response = await transport.request(
        "POST",
        "/v1/runs/batch-get",
        route="/v1/runs/batch-get",
        body=orjson.dumps(body, option=orjson.OPT_UTC_Z),
        retryable=True,
        options=options,
        operation="read",
    )
    return RunsAnswer(response, response.request_id, known=known.keys() if known else ())


def not_a_run(exc: ResponseValidationError, run_id: str) -> ResponseValidationError:
    """``exc`` (why an item of an answer is not a run) noting which run the item was about."""
    exc.add_note(f"the answer about run {run_id} was not a run")
    return exc


def malformed(what: str, why: str, response: Response) -> ResponseValidationError:
    """The error for an answer of the right status whose body is not what ``what`` must be."""
    return ResponseValidationError(f"malformed {what}: {why}", request_id=response.request_id)


class PollingBatchGet:
    """``batch-get`` as the poller sends it: with ``known`` until the service refuses that.

    A service that predates ``known`` and checks its requests strictly answers 400 or 422; the
    request is sent again without it, and so is every later one of this client.
    """

    __slots__ = ("_transport", "conditional")

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.conditional = True

    async def __call__(
        self, run_ids: Sequence[str], known: Mapping[str, datetime] | None
    ) -> RunsAnswer:
        if not known or not self.conditional:
            return await batch_get_answer(self._transport, run_ids)
        try:
            return await batch_get_answer(self._transport, run_ids, known)
        except InvalidRequestError as exc:
            if exc.status_code not in (400, 422):
                raise
            if self.conditional:  # the sweep's other requests may be refused the same way
                self.conditional = False
                logger.info(
                    "the service refused batch-get's known states (%s); asking without", exc
                )
        return await batch_get_answer(self._transport, run_ids)
