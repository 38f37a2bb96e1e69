"""Everything that pages, against a lying service: every walk ends, right or with a clear error.

A real aiohttp service on the test's loop answers ``GET /v1/runs`` (cursor pages) and a run's
``results`` / ``rejects`` / ``logs`` (numbered pages) from a script; the client runs on a
virtual clock, so retries and ``logs(follow=True)`` pauses take no real time. Cursors cycle
with long periods, come back after a thousand pages, carry characters that need encoding;
pages repeat earlier items, hold far more items than asked, or contradict their totals.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web

import lume_async
import lume_sync
from lume_async import (
    AsyncLume,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryPolicy,
    RunStatus,
    ServerError,
)
from lume_async.testing import VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"
KEY = "k" * 16
Handler = Callable[[web.Request], Any]


def rid(n: int) -> str:
    return f"run_01HY{n:022d}"


def when(n: int) -> str:
    """A distinct timestamp per ``n``, later for a larger ``n``."""
    return f"2026-01-01T00:00:00.{n:06d}Z" if n < 10**6 else f"2026-01-02T00:00:{n % 60:02d}Z"


def run(n: int, status: str = "SUCCEEDED") -> dict[str, Any]:
    return {
        "id": rid(n),
        "status": status,
        "flow_version": FLOW,
        "source_path": f"s3://b/{n}",
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": when(n),
        "updated_at": when(n),
        "metadata": None,
        "error": None,
    }


def log(n: int) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "level": "INFO", "code": "c", "message": f"line {n}"}


def numbered(items: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    pages = max(1, -(-total // size))
    return {"items": items, "page": page, "size": size, "total": total, "pages": pages}


class Service:
    """Answers ``GET /v1/runs`` with ``runs(request)``, a run's listings with
    ``pages(what, page, size, request)`` and ``GET /v1/runs/{id}`` with ``status()``;
    ``queries`` keeps every listing request's query as received."""

    def __init__(self) -> None:
        self.runs: Handler | None = None
        self.pages: Callable[[str, int, int, web.Request], Any] | None = None
        self.status: Callable[[], str] = lambda: "SUCCEEDED"
        self.queries: list[list[tuple[str, str]]] = []
        self.keep_queries = True
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        doc: Any
        if request.path == "/v1/runs":
            if self.keep_queries:
                self.queries.append(list(request.query.items()))
            assert self.runs is not None
            doc = self.runs(request)
        elif found := re.fullmatch(r"/v1/runs/(run_\w+)/(results|rejects|logs)", request.path):
            self.queries.append(list(request.query.items()))
            assert self.pages is not None
            page, size = int(request.query["page"]), int(request.query["size"])
            doc = self.pages(found[2], page, size, request)
        elif found := re.fullmatch(r"/v1/runs/(run_\w+)", request.path):
            doc = {**run(0, self.status()), "id": found[1]}
        else:
            return web.json_response({"detail": "?", "code": "not_found"}, status=404)
        if isinstance(doc, _Later):
            return await doc.produce(doc.request)
        if isinstance(doc, web.StreamResponse):
            return doc
        body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        headers = {"x-request-id": f"req_{self.requests}", "content-type": "application/json"}
        return web.Response(body=body, headers=headers)


@asynccontextmanager
async def serving(service: Service) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app, access_log=None, max_line_size=1 << 24, max_field_size=1 << 16)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def client_of(service: Service, **kwargs: Any) -> AsyncIterator[AsyncLume]:
    """A client of ``service`` over a real socket, on a virtual clock."""
    async with serving(service) as url:
        kwargs.setdefault("clock", VirtualClock())
        async with AsyncLume(api_key=KEY, base_url=url, **kwargs) as lume:
            yield lume


def chain(
    cursors: Callable[[str | None], str | None], item: Callable[[str | None, int], list[Any]]
) -> Handler:
    """A run listing whose page after ``cursor`` points to ``cursors(cursor)``; ``item(cursor,
    k)`` gives the items of the ``k``-th request."""
    count = [0]

    def answer(request: web.Request) -> dict[str, Any]:
        count[0] += 1
        cursor = request.query.get("cursor")
        return {"items": item(cursor, count[0]), "next_cursor": cursors(cursor)}

    return answer


def fresh(_: str | None, k: int) -> list[Any]:
    """A new run per request, each older than the one before (the default order: newest first)."""
    return [run(10**6 - k)]


# -- cursor listings: cycles and repeats --------------------------------------------------------


@pytest.mark.timeout(30)
async def test_a_cursor_cycle_of_period_three_with_fresh_runs_is_refused() -> None:
    service = Service()
    ring = {None: "A", "A": "B", "B": "C", "C": "A"}
    service.runs = chain(ring.__getitem__, fresh)
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="next_cursor repeats a cursor"):
            await lume.runs.list(page_size=1).collect()
    assert len(service.queries) == 4  # None, A, B, C: then C points back to A


@pytest.mark.timeout(60)
async def test_a_cursor_that_comes_back_after_a_thousand_pages_is_refused() -> None:
    service = Service()

    def cursors(cursor: str | None) -> str:
        n = 0 if cursor is None else int(cursor[1:]) + 1
        return f"c{n if n < 1000 else 0}"

    service.runs = chain(cursors, fresh)
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="next_cursor repeats"):
            await lume.runs.list(page_size=1).collect()
    assert len(service.queries) == 1001


@pytest.mark.timeout(30)
async def test_a_cursor_seen_before_with_different_runs_is_refused_not_followed() -> None:
    service = Service()
    service.runs = chain({None: "x", "x": "y", "y": "x"}.__getitem__, fresh)
    async with client_of(service) as lume:
        seen: list[str] = []
        with pytest.raises(ResponseValidationError, match="repeats a cursor"):
            await drain(lume.runs.list(page_size=1), seen, key=lambda run: run.id)
    assert len(seen) == len(set(seen)) == 2


@pytest.mark.timeout(30)
async def test_an_empty_page_pointing_on_for_ever_is_refused_at_once() -> None:
    service = Service()
    service.runs = chain(lambda c: f"{c}+", lambda _c, _k: [])
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="without items points to a next"):
            await lume.runs.list().collect()
    assert len(service.queries) == 1


@pytest.mark.timeout(30)
async def test_runs_of_an_earlier_page_served_again_under_new_cursors_are_refused() -> None:
    service = Service()
    # Fresh cursors for ever, but the runs go round a ring of three pages.
    service.runs = chain(lambda c: f"{c}+", lambda _c, k: [run(1000 - (k - 1) % 3)])
    async with client_of(service) as lume:
        got: list[str] = []
        with pytest.raises(ResponseValidationError, match=r"already listed|out of"):
            await drain(lume.runs.list(page_size=1), got, key=lambda run: run.id)
    assert len(got) == 3 and len(set(got)) == 3


@pytest.mark.timeout(30)
async def test_a_run_repeated_inside_one_page_is_refused() -> None:
    service = Service()
    service.runs = chain(lambda _c: None, lambda _c, _k: [run(5), run(5)])
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="already listed"):
            await lume.runs.list(page_size=2).collect()


@pytest.mark.timeout(30)
async def test_has_more_or_total_that_contradict_a_cursor_page_do_not_extend_it() -> None:
    service = Service()

    def answer(_: web.Request) -> dict[str, Any]:
        return {"items": [run(3), run(2)], "next_cursor": None, "has_more": True, "total": 10**9}

    service.runs = answer
    async with client_of(service) as lume:
        got = [r.id for r in await lume.runs.list(page_size=2).collect()]
    assert got == [rid(3), rid(2)]
    assert len(service.queries) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cursor", [7, 1.5, True, ["a"], {"c": 1}])
async def test_a_cursor_that_is_not_a_usable_string_is_refused(cursor: Any) -> None:
    service = Service()
    service.runs = lambda _r: {"items": [run(3)], "next_cursor": cursor}
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError):
            await lume.runs.list().collect()
    assert len(service.queries) == 1


async def drain(
    listing: Any,
    into: list[Any],
    *,
    key: Callable[[Any], Any] = lambda item: item,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Every item of ``listing`` into ``into`` (as ``key`` of it), until ``until()`` is true."""
    async with aclosing(listing.__aiter__()) as items:
        async for item in items:
            into.append(key(item))
            if until():
                return


# -- cursors as they are sent back ------------------------------------------------------------

ODD_CURSORS = [
    "a&b=c#d%e/f?g h+i",
    "%2F%25already%20encoded",
    "back\\slash\"quote'<>",
    "=" * 3 + ";,:@!$*()[]{}|^`~",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cursor", ODD_CURSORS)
async def test_a_cursor_needing_encoding_is_sent_back_exactly_as_received(cursor: str) -> None:
    service = Service()
    service.runs = chain({None: cursor, cursor: None}.__getitem__, fresh)
    async with client_of(service) as lume:
        got = await lume.runs.list(page_size=1).collect()
    assert len(got) == 2
    sent = [dict(q).get("cursor") for q in service.queries]
    assert sent == [None, cursor]
    assert all(sum(1 for k, _ in q if k == "cursor") <= 1 for q in service.queries)


@pytest.mark.timeout(30)
async def test_the_longest_cursor_is_sent_back_whole() -> None:
    service = Service()
    long = "L" * 4096
    service.runs = chain({None: long, long: None}.__getitem__, fresh)
    async with client_of(service) as lume:
        got = await lume.runs.list(page_size=1).collect()
    assert len(got) == 2
    assert dict(service.queries[1])["cursor"] == long


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "cursor",
    ["curseur-é-中文-😀", "tab\tinside", "x" * 4097, ""],
    ids=["unicode", "control character", "longer than 4096", "empty"],
)
async def test_a_next_cursor_that_could_not_be_resumed_from_is_refused_as_received(
    cursor: str,
) -> None:
    """A page's ``next_cursor`` is what to pass back as ``cursor=`` to resume: one that ``cursor=``
    would refuse is refused where it is received, before it is followed."""
    service = Service()
    service.runs = chain({None: cursor, cursor: None}.__getitem__, fresh)
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="next_cursor is not a cursor"):
            await lume.runs.list(page_size=1).collect()
        with pytest.raises(ValueError, match="cursor"):
            lume.runs.list(page_size=1, cursor=cursor)
    assert len(service.queries) == 1


# -- how much a page may hold -----------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_a_results_page_of_a_million_tiny_rows_is_refused_clearly() -> None:
    body = orjson.dumps(numbered([{}] * 1_000_000, 1, 100, 1_000_000))
    service = Service()
    service.pages = lambda _w, _p, _s, _r: body
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="holds 1000000 items, more than"):
            await lume.runs.results(RUN_ID).collect()
    assert len(service.queries) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked"])
async def test_one_row_of_a_hundred_megabytes_is_refused_before_it_is_held(declared: bool) -> None:
    mib = b"y" * (1 << 20)
    head = b'{"items":[{"x":"'
    tail = b'"}],"page":1,"size":100,"total":1,"pages":1}'
    sent = [0]

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/json"})
        if declared:
            response.content_length = len(head) + 100 * len(mib) + len(tail)
        await response.prepare(request)
        try:
            await response.write(head)
            for _ in range(100):
                await response.write(mib)
                sent[0] += 1
            await response.write(tail)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        return response

    service = Service()
    service.pages = lambda _w, _p, _s, request: _Later(answer, request)
    tracemalloc.start()
    try:
        async with client_of(service, max_response_bytes=8 << 20) as lume:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
                await lume.runs.results(RUN_ID).collect()
            peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 3 * (8 << 20), f"held {peak:,} bytes for a limit of 8 MiB"


class _Later:
    """Marks an answer the service must produce itself (a streamed one)."""

    def __init__(self, produce: Callable[[web.Request], Any], request: web.Request) -> None:
        self.produce, self.request = produce, request


@pytest.mark.timeout(120)
async def test_a_run_page_with_far_more_runs_than_asked_is_refused_within_bounds() -> None:
    """A run listing page holds at most ``page_size`` runs; one with 60,000 (within the byte
    limit) is refused, holding no more than parsing the answer takes (``_PARSING`` times its
    size, the bound tests/chaos/test_fuzz_answers.py allows)."""
    items = [run(n) for n in range(60_000)]
    body = orjson.dumps({"items": items, "next_cursor": None})
    limit = len(body) + 1024
    service = Service()
    service.runs = lambda _r: body
    tracemalloc.start()
    try:
        async with client_of(service, max_response_bytes=limit) as lume:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            with pytest.raises(ResponseValidationError, match="more than 100"):
                await lume.runs.list(page_size=100).collect()
            peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 26 * limit, f"peak {peak:,} for an answer of {limit:,} bytes"


@pytest.mark.timeout(30)
async def test_a_run_page_with_more_runs_than_asked_is_refused_before_any_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[object] = []
    decode = lume_async._converter.run_from_obj

    def counting(item: Any, **kwargs: Any) -> Any:
        decoded.append(item)
        return decode(item, **kwargs)

    monkeypatch.setattr(lume_async._converter, "run_from_obj", counting)
    service = Service()
    service.runs = lambda _r: orjson.dumps({"items": [run(n) for n in range(11)]})
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="holds 11 items, more than 10"):
            await lume.runs.list(page_size=10).collect()
        assert decoded == []
        service.runs = lambda _r: orjson.dumps({"items": [run(100 - n) for n in range(10)]})
        assert len(await lume.runs.list(page_size=10).collect()) == len(decoded) == 10


# -- numbered listings: results, rejects, logs -----------------------------------------------


def honest(rows: Callable[[str, int], Any], total: int) -> Callable[[str, int, int, Any], Any]:
    """Numbered pages of ``total`` rows, row ``i`` of a listing being ``rows(what, i)``."""

    def answer(what: str, page: int, size: int, _: Any) -> dict[str, Any]:
        start = (page - 1) * size
        items = [rows(what, i) for i in range(start, min(total, start + size))]
        return numbered(items, page, size, total)

    return answer


def row(what: str, i: int) -> Any:
    if what == "rejects":
        return {"index": i, "source_record": {"i": i}, "errors": []}
    if what == "logs":
        return log(i)
    return {"i": i}


@pytest.mark.timeout(30)
async def test_rejects_of_an_earlier_page_served_again_are_refused() -> None:
    service = Service()
    service.pages = lambda what, page, size, _r: numbered(
        [row(what, i) for i in range(size)], page, size, 3 * size
    )  # every page is page 1's rows
    async with client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="already listed"):
            await lume.runs.rejects(RUN_ID, page_size=10).collect()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what", ["results"])
async def test_a_finished_runs_results_whose_total_grows_as_they_are_read_end(what: str) -> None:
    """A terminal run's results are fixed (409 ``run_not_finished`` before): a service whose
    ``total`` grows by a page each time it is asked must not keep a walk going for ever."""
    service = Service()
    asked = [0]

    def growing(what: str, page: int, size: int, _: Any) -> dict[str, Any]:
        asked[0] += 1
        total = (asked[0] + 1) * size
        return numbered([row(what, (page - 1) * size + i) for i in range(size)], page, size, total)

    service.pages = growing
    got: list[Any] = []
    async with client_of(service) as lume:
        listing = getattr(lume.runs, what)(RUN_ID, page_size=5)
        with pytest.raises(ResponseValidationError, match="the total grew"):
            await drain(listing, got, until=lambda: asked[0] >= 100)
    assert asked[0] < 5, f"{asked[0]} pages asked for, {len(got)} rows given"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what", ["results", "rejects", "logs"])
async def test_a_numbered_listing_walks_its_pages_once_each(what: str) -> None:
    service = Service()
    service.pages = honest(row, 23)
    async with client_of(service) as lume:
        got = await getattr(lume.runs, what)(RUN_ID, page_size=5).collect()
    assert len(got) == 23
    pages = sorted(int(dict(q)["page"]) for q in service.queries)
    assert pages == [1, 2, 3, 4, 5]


# -- page_size at and beyond its bounds --------------------------------------------------------

BAD_SIZES = [0, -1, 101, 10**9, True, 10.0, "10", None]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", BAD_SIZES, ids=repr)
@pytest.mark.parametrize("what", ["list", "results", "rejects", "logs", "follow"])
async def test_a_page_size_out_of_bounds_is_refused_before_any_request(
    what: str, size: Any
) -> None:
    service = Service()
    async with client_of(service) as lume:
        listings: dict[str, Callable[[], object]] = {
            "list": lambda: lume.runs.list(page_size=size),
            "follow": lambda: lume.runs.logs(RUN_ID, page_size=size, follow=True),
        }
        listing = listings.get(what, lambda: getattr(lume.runs, what)(RUN_ID, page_size=size))
        with pytest.raises((ValueError, TypeError), match="page_size"):
            listing()
    assert service.requests == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", [1, 100])
async def test_page_size_at_its_bounds_is_sent_as_is(size: int) -> None:
    service = Service()
    service.pages = honest(row, 3)
    service.runs = chain(lambda _c: None, fresh)
    async with client_of(service) as lume:
        await lume.runs.results(RUN_ID, page_size=size).collect()
        await lume.runs.list(page_size=size).collect()
    assert {dict(q)["size"] for q in service.queries} == {str(size)}


# -- run listing filters with odd values -------------------------------------------------------


@pytest.mark.timeout(30)
async def test_odd_but_valid_filters_reach_the_service_exactly() -> None:
    service = Service()
    service.runs = chain(lambda _c: None, fresh)
    label = "a&b=c#d%e/f?g h+é"
    tags = ["x&y", "x&y", "t=1", "中文"]
    async with client_of(service) as lume:
        await lume.runs.list(
            label=label, tags=tags, status=["RUNNING", RunStatus.SUCCEEDED, "INCOMPLETE"]
        ).collect()
    query = service.queries[0]
    assert ("label", label) in query
    assert [v for k, v in query if k == "tag"] == ["x&y", "t=1", "中文"]
    assert {v for k, v in query if k == "status"} >= {"SUCCEEDED"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "filters",
    [
        {"status": ""},
        {"status": "NOT_A_STATUS"},
        {"status": 3},
        {"label": ""},
        {"tags": "abc"},
        {"tags": [1]},
        {"flow_version": ""},
        {"created_after": "yesterday"},
        {"order_by": "updated_at"},
        {"descending": "yes"},
        {"cursor": ""},
        {"cursor": 5},
    ],
    ids=repr,
)
async def test_odd_filters_are_refused_before_any_request(filters: dict[str, Any]) -> None:
    service = Service()
    async with client_of(service) as lume:
        with pytest.raises((ValueError, TypeError)):
            lume.runs.list(**filters)
    assert service.requests == 0


# -- logs(follow=True) -----------------------------------------------------------------------


class Log:
    """A run's log that grows by ``per_read`` entries each time the run is read."""

    def __init__(self, per_read: int = 1) -> None:
        self.entries: list[Any] = []
        self.per_read = per_read
        self.reads = 0
        self.failures: list[int] = []  # log requests (by number) answered 500
        self.log_requests = 0
        self.status = "TRANSFORMING"

    def read_run(self) -> str:
        self.reads += 1
        self.entries += [log(len(self.entries) + i) for i in range(self.per_read)]
        return self.status

    def page(self, _what: str, page: int, size: int, _r: Any) -> Any:
        self.log_requests += 1
        if self.log_requests in self.failures:
            return web.json_response(
                {"detail": "boom", "code": "internal"}, status=500, headers={"retry-after": "1"}
            )
        start = (page - 1) * size
        return numbered(self.entries[start : start + size], page, size, len(self.entries))


def _follow_service(log_: Log) -> Service:
    service = Service()
    service.status = log_.read_run
    service.pages = log_.page
    return service


@pytest.mark.timeout(30)
async def test_follow_on_a_run_that_never_ends_gives_each_entry_once_and_backs_off() -> None:
    log_ = Log(per_read=1)
    service = _follow_service(log_)
    clock = VirtualClock()
    async with client_of(service, clock=clock) as lume:
        got: list[str] = []
        async with aclosing(lume.runs.logs(RUN_ID, page_size=3, follow=True).__aiter__()) as it:
            async for entry in it:
                got.append(entry.message)
                if len(got) == 200:
                    break
        assert got == [f"line {i}" for i in range(200)]
        # One entry per 2 s poll: the pause never grew, and virtual time did the waiting.
        assert 350 <= clock.monotonic() <= 420
        log_.per_read = 0  # from now on the log is quiet, and the run still never ends
        reads = log_.reads
        quiet_from = clock.monotonic()

        async def follow_quietly() -> None:
            async for _ in lume.runs.logs(RUN_ID, page_size=3, follow=True):
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_quietly)
            await clock.sleep(3600)  # virtual: the clock jumps from pause to pause
            tg.cancel_scope.cancel()
        assert clock.monotonic() - quiet_from == pytest.approx(3600, abs=31)
    # A quiet log is polled at most every 30 s after backing off, not in a tight loop.
    assert 3600 / 30 <= log_.reads - reads <= 3600 / 30 + 15


@pytest.mark.timeout(30)
async def test_follow_through_500s_that_stop_gives_each_entry_once() -> None:
    log_ = Log(per_read=2)
    log_.failures = [3, 4, 7]
    service = _follow_service(log_)
    async with client_of(service) as lume:
        got: list[str] = []
        async with aclosing(lume.runs.logs(RUN_ID, page_size=3, follow=True).__aiter__()) as it:
            async for entry in it:
                got.append(entry.message)
                if len(got) == 40:
                    log_.status = "SUCCEEDED"
    assert got == [f"line {i}" for i in range(len(got))]
    assert len(got) >= 40


@pytest.mark.timeout(30)
async def test_follow_through_500s_that_do_not_stop_ends_with_a_server_error() -> None:
    log_ = Log(per_read=1)
    log_.failures = list(range(2, 10**6))
    service = _follow_service(log_)
    async with client_of(service, retry=RetryPolicy(max_retries=3)) as lume:
        got: list[str] = []
        with pytest.raises(ServerError):
            await drain(lume.runs.logs(RUN_ID, follow=True), got, key=lambda e: e.message)
    assert got == ["line 0"]
    assert log_.log_requests == 1 + 4


@pytest.mark.timeout(30)
async def test_follow_refuses_a_log_that_shrinks_rather_than_skip_entries() -> None:
    log_ = Log(per_read=0)
    log_.entries = [log(i) for i in range(5)]
    service = _follow_service(log_)
    shrunk = False

    def regrow() -> str:
        # The round after the loss: 6 entries written after the 2 kept, and the run has ended.
        log_.entries = log_.entries[:2] + [log(100 + i) for i in range(6)]
        return "SUCCEEDED"

    got: list[str] = []

    def lose_three() -> bool:
        nonlocal shrunk
        if len(got) == 5 and not shrunk:
            shrunk = True
            log_.entries = [log(i) for i in range(2)]  # the service lost 3 entries
            service.status = regrow
        return False

    async with client_of(service) as lume:
        following = lume.runs.logs(RUN_ID, page_size=10, follow=True)
        with pytest.raises(ResponseValidationError, match="were removed or rewritten"):
            await drain(following, got, key=lambda e: e.message, until=lose_three)
    assert got == [f"line {i}" for i in range(5)]  # and nothing after: none skipped


# -- what a walk remembers ---------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_a_walk_does_not_keep_every_long_cursor_it_followed() -> None:
    service = Service()
    service.keep_queries = False
    count = [0]
    pages = 1000

    def answer(_: web.Request) -> bytes:
        count[0] += 1
        cursor = f"{count[0]:08d}".ljust(4096, "c")  # the longest a cursor may be
        return orjson.dumps({"items": [run(10**6 - count[0])], "next_cursor": cursor})

    service.runs = answer
    tracemalloc.start()
    try:
        async with client_of(service) as lume:
            base = tracemalloc.get_traced_memory()[0]
            held = 0
            async with aclosing(lume.runs.list(page_size=1).pages()) as walk:
                async for _ in walk:
                    if count[0] == pages:
                        held = tracemalloc.get_traced_memory()[0] - base
                        break
    finally:
        tracemalloc.stop()
    # Kept whole, the cursors followed would be over 4 MiB more; a digest of each is 16 bytes.
    assert held < (2 << 20), f"holding {held / 1024:.0f} KiB after {pages} pages"


# -- through lume_sync -------------------------------------------------------------------------


@asynccontextmanager
async def sync_client_of(service: Service) -> AsyncIterator[lume_sync.Lume]:
    """A blocking client of ``service``: call it in a worker thread (the service is on ours)."""
    async with serving(service) as url:
        lume = lume_sync.Lume(api_key=KEY, base_url=url, clock=VirtualClock())
        try:
            yield lume
        finally:
            await anyio.to_thread.run_sync(lume.close)


@pytest.mark.timeout(30)
async def test_sync_a_cursor_cycle_of_period_three_is_refused() -> None:
    service = Service()
    service.runs = chain({None: "A", "A": "B", "B": "C", "C": "A"}.__getitem__, fresh)
    async with sync_client_of(service) as lume:
        seen: list[str] = []

        def walk() -> None:
            for item in lume.runs.list(page_size=1):
                seen.append(item.id)

        with pytest.raises(ResponseValidationError, match="repeats a cursor"):
            await anyio.to_thread.run_sync(walk)
    assert len(seen) == len(set(seen)) == 3  # the page pointing back is refused, not given


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cursor", ODD_CURSORS[:3])
async def test_sync_a_cursor_needing_encoding_is_sent_back_exactly(cursor: str) -> None:
    service = Service()
    service.runs = chain({None: cursor, cursor: None}.__getitem__, fresh)
    async with sync_client_of(service) as lume:
        got = await anyio.to_thread.run_sync(lambda: lume.runs.list(page_size=1).collect())
    assert len(got) == 2
    assert [dict(q).get("cursor") for q in service.queries] == [None, cursor]


@pytest.mark.timeout(30)
async def test_sync_repeated_rejects_and_a_huge_page_are_refused() -> None:
    service = Service()
    service.pages = lambda what, page, size, _r: numbered(
        [row(what, i) for i in range(size)], page, size, 3 * size
    )
    async with sync_client_of(service) as lume:
        with pytest.raises(ResponseValidationError, match="already listed"):
            await anyio.to_thread.run_sync(lambda: lume.runs.rejects(RUN_ID, page_size=4).collect())
        body = orjson.dumps(numbered([{}] * 200_000, 1, 100, 200_000))
        service.pages = lambda _w, _p, _s, _r: body
        with pytest.raises(ResponseValidationError, match="more than its size 100"):
            await anyio.to_thread.run_sync(lambda: list(lume.runs.results(RUN_ID)))


@pytest.mark.timeout(30)
async def test_sync_follow_through_500s_gives_each_entry_once_and_ends() -> None:
    log_ = Log(per_read=2)
    log_.failures = [2, 3, 6]
    service = _follow_service(log_)
    async with sync_client_of(service) as lume:

        def follow() -> list[str]:
            got: list[str] = []
            for entry in lume.runs.logs(RUN_ID, page_size=3, follow=True):
                got.append(entry.message)
                if len(got) == 30:
                    log_.status = "SUCCEEDED"
            return got

        got = await anyio.to_thread.run_sync(follow)
    assert got == [f"line {i}" for i in range(len(got))] and len(got) >= 30


@pytest.mark.timeout(30)
async def test_sync_breaking_out_of_a_follow_on_an_endless_run_releases_it() -> None:
    log_ = Log(per_read=1)
    service = _follow_service(log_)
    async with sync_client_of(service) as lume:

        def follow() -> list[str]:
            got: list[str] = []
            for entry in lume.runs.logs(RUN_ID, page_size=2, follow=True):
                got.append(entry.message)
                if len(got) == 25:
                    break
            return got

        got = await anyio.to_thread.run_sync(follow)
        reads = log_.reads
        await anyio.sleep(0.2)  # real time: nothing may still be polling
    assert got == [f"line {i}" for i in range(25)]
    assert log_.reads == reads
