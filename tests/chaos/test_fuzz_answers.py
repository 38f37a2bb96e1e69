"""Bad answers from the server: whatever comes back, only a LumeError ever reaches the caller.

A raw HTTP server answers every request with what hypothesis draws: any status, any content
type, malformed JSON, JSON of the wrong shape, valid documents with fields dropped or of the
wrong type, wrong lengths, bogus encodings, huge bodies, listings that lie (envelopes whose
totals disagree, cursors that point back at themselves), and hostile shapes: gzip and deflate
bombs, endless bodies, bodies longer than their Content-Length, and bodies dribbled out slower
than the read timeout. Each SDK call either returns or raises a LumeError subclass, holding no
more than its answers' bound (``max_response_bytes``); a KeyError, TypeError or AttributeError
escaping is a bug, and so is an error left unhandled in a background task. Walking a whole
listing must end too: the server answers every page with the same document, the way a server
ignoring ``page=`` or repeating its cursor would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import struct
import threading
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, LumeError, RetryPolicy, Timeout
from lume_async.testing import VirtualClock

from .._profiles import examples

RUN_ID = "run_01HY0000000000000000000000"
NOW = "2026-01-01T00:00:00.000Z"

RUN: dict[str, Any] = {
    "id": RUN_ID,
    "status": "SUCCEEDED",
    "flow_version": "customer_cleaner:v1",
    "source_path": "s3://bucket/batch_001",
    "label": None,
    "tags": ["a"],
    "run_metadata": {"k": "v"},
    "created_at": NOW,
    "updated_at": NOW,
    "metadata": {
        "run": {"id": RUN_ID, "flow_version": "customer_cleaner:v1", "status": "SUCCEEDED"},
        "pipeline": {
            "created_at": NOW,
            "completed_at": NOW,
            "duration_seconds": 1.5,
            "stages": {"sync_source_seconds": 0.5, "transform_seconds": 0.5},
        },
        "results": {"input_rows": 3, "mapped_rows": 3, "rejected_rows": 0},
        "validation": {"tests_executed": 9, "tests_failed": 0, "error_rate": 0.0},
        "errors": [],
    },
    "error": None,
}
REJECT = {"index": 0, "source_record": {"a": 1}, "errors": [{"field": "a", "error_code": "x"}]}
LOG = {"time": NOW, "level": "INFO", "code": "run.created", "message": "hi", "details": {}}
FLOW = {
    "name": "customer_cleaner",
    "description": "d",
    "versions": [{"version": "v1", "id": "fv_1", "created_at": NOW}],
}


def _page(item: Any) -> dict[str, Any]:
    return {"items": [item, item], "total": 2, "page": 1, "size": 50, "pages": 1}


VALID_DOCUMENTS: list[Any] = [
    RUN,
    _page({"full_name": "x"}),
    _page(REJECT),
    _page(LOG),
    _page(FLOW),
    FLOW,
    {"items": [RUN], "next_cursor": "c1"},
    {"items": [RUN], "missing": []},
    {"detail": "nope", "error_id": "e1", "code": "not_found"},
    {"detail": [{"loc": ["body", "x"], "msg": "bad", "type": "t"}], "code": "validation_error"},
    {"detail": "dup", "code": "duplicate_source_path", "existing_run_id": RUN_ID},
]

LYING: list[Any] = [
    {"items": [RUN], "next_cursor": "c1"},  # the same cursor, forever
    {"items": [], "next_cursor": "c2"},  # nothing, but more to come
    {"items": [{"n": 1}] * 3, "total": 1000, "page": 1, "size": 3},  # no pages
    {"items": [{"n": 1}] * 3, "total": 1000, "page": 1, "size": 3, "pages": 2},
    {"items": [REJECT] * 2, "total": 2, "page": 1, "size": 100, "pages": 1},  # one row twice
    {"items": [FLOW], "total": 1, "page": 7, "size": 100, "pages": 1},  # not the page asked
    {"items": [LOG] * 5, "total": 2, "page": 1, "size": 100, "pages": 1},
    {"items": [LOG], "total": -1, "page": 1, "size": 100, "pages": 0},
]

HUGE: list[bytes] = [
    orjson.dumps({**RUN, "label": "x" * 2_000_000}),
    orjson.dumps({"items": [{"full_name": "y"}] * 20_000, "total": 1, "page": 1, "size": 50}),
    orjson.dumps({"items": [RUN] * 2_000, "next_cursor": None, "missing": []}),
    b"[" * 50_000 + b"]" * 50_000,
    b" " * 1_000_000 + b"{}",
    b'{"id": "' + b"\xff\xfe" * 1000 + b'"}',
    b'{"total": 1e999999, "items": [], "page": 1, "size": 1, "pages": 1}',
    b'{"total": 123456789012345678901234567890, "items": [], "page": 1, "size": 1}',
]


def _huge(index: int) -> bytes:
    return HUGE[index]


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
# Nested up to four containers deep, built out level by level: st.recursive draws the same
# shapes at about twice the cost per value (its recursion machinery, not the values).
json_values = _scalars
for _ in range(4):
    json_values = (
        _scalars
        | st.lists(json_values, max_size=4)
        | st.dictionaries(st.text(max_size=10), json_values, max_size=4)
    )


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


# Per valid document, the paths a mutation may pick: built once, not per example.
_MUTATED_PATHS = [
    st.lists(st.sampled_from(list(_paths(doc))), min_size=1, max_size=4) for doc in VALID_DOCUMENTS
]


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A valid answer with some fields dropped and others given values of the wrong type."""
    index = draw(st.integers(0, len(VALID_DOCUMENTS) - 1))
    doc = orjson.loads(orjson.dumps(VALID_DOCUMENTS[index]))
    for path in draw(_MUTATED_PATHS[index]):
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict) and not isinstance(path[-1], str):
                continue  # an earlier mutation turned this list into an object
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return orjson.dumps(doc)


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.sampled_from(VALID_DOCUMENTS).map(orjson.dumps),
    st.sampled_from(LYING).map(orjson.dumps),
    mutated_documents(),
    mutated_documents(),
    st.sampled_from(range(len(HUGE))).map(_huge),
)


HOSTILE = ["gzip bomb", "deflate bomb", "endless", "longer than Content-Length", "slowloris"]
LIMIT = 4 << 20  # the fuzzed client's max_response_bytes
_PARSING = 26  # orjson's peak while it parses a document, over the document's size
_CHUNK = 64 * 1024


@functools.cache
def _bomb(wbits: int) -> bytes:
    """64 MiB of zeros, compressed (gzip for wbits 31, deflate for 15): 16 times the limit.

    Compressed once per MiB, not 64 times: after a full flush the compressor starts afresh, so
    every further MiB of zeros compresses to the same bytes. The trailer's checksum (CRC-32 and
    length for gzip, Adler-32 for deflate) is then computed for all 64 MiB.
    """
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    each = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()  # the last (empty) block, and a trailer for 2 MiB: replaced below
    gzip = wbits == 31
    check = zlib.crc32 if gzip else zlib.adler32
    value = check(b"")
    for _ in range(64):
        value = check(zeros, value)
    trailer = struct.pack("<II", value, 64 << 20) if gzip else struct.pack(">I", value)
    return first + each * 63 + end[: -len(trailer)] + trailer


@attrs.frozen
class Answer:
    status: int
    body: bytes = attrs.field(repr=lambda b: repr(b) if len(b) < 200 else f"<{len(b)} bytes>")
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    length: str  # "exact", "short" (the body is cut), "none" (read until close)
    hostile: str = "none"  # one of HOSTILE: replaces the body (status and headers are kept)

    def encode(self) -> tuple[bytes, bool]:
        """The raw HTTP/1.1 answer, and whether the connection is closed after it."""
        lines = [f"HTTP/1.1 {self.status} Fuzzed", "x-request-id: req_fuzz"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        body, close = self.body, False
        if self.length == "exact":
            lines.append(f"Content-Length: {len(body)}")
        elif self.length == "short":
            lines.append(f"Content-Length: {len(body) + 10}")
            close = True
        else:
            lines.append("Connection: close")
            close = True
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, close


STATUSES = [200, 200, 200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404]
STATUSES += [405, 409, 410, 413, 418, 422, 429, 500, 502, 503, 504, 599]
CONTENT_TYPES = ["application/json", "application/json; charset=latin-1", "text/html", None]
CONTENT_TYPES += ["text/plain", "application/octet-stream", "application/problem+json"]
HEADER_VALUES = ["", "0", "1", "-1", "abc", "nan", "inf", "1e309", "0.001", "gzip", "deflate"]
HEADER_VALUES += ["br", "x-unknown", "Wed, 21 Oct 2015 07:28:00 GMT", "http://elsewhere/"]

answers = st.builds(
    Answer,
    status=st.sampled_from(STATUSES),
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["Retry-After", "retry-after-ms", "Content-Encoding", "Location"]),
            st.sampled_from(HEADER_VALUES),
        ),
        max_size=3,
        unique_by=lambda h: h[0],
    ).map(tuple),
    length=st.sampled_from(["exact", "exact", "exact", "short", "none"]),
    hostile=st.sampled_from(["none"] * 15 + HOSTILE),
)


async def _write_hostile(answer: Answer, writer: asyncio.StreamWriter) -> None:
    """An answer no client should hold more than its limit of, or wait on past its timeouts."""
    lines = [f"HTTP/1.1 {answer.status} Fuzzed", "x-request-id: req_fuzz"]
    lines += [f"{name}: {value}" for name, value in answer.headers if name != "Content-Encoding"]
    kind = answer.hostile
    if kind in ("gzip bomb", "deflate bomb"):
        body = _bomb(31 if kind == "gzip bomb" else 15)
        lines += [f"Content-Encoding: {kind.split()[0]}", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return
    if kind == "longer than Content-Length":
        lines.append(f"Content-Length: {len(answer.body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + answer.body)
        for _ in range(2 * LIMIT // _CHUNK):
            writer.write(b"x" * _CHUNK)
            await writer.drain()
        return
    lines.append("Transfer-Encoding: chunked")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    chunk = b"[" * _CHUNK if kind == "endless" else b" "
    while True:  # until the client hangs up
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        if kind == "slowloris":
            await asyncio.sleep(READ_TIMEOUT * 2)  # slower than the client's read timeout


#: Short: each body dribbled out slower than this costs the client two of them (one retry).
#: An answer that only seems slow (a busy machine) ends as an APITimeoutError: a LumeError too.
READ_TIMEOUT = 0.1


class FuzzServer:
    """Answers every request with ``self.answer``, in a loop thread shared with the client."""

    def __init__(self) -> None:
        self.answer = Answer(200, orjson.dumps(RUN), "application/json", (), "exact")
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _, context: self.loop_errors.append(context))
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                answer = self.answer
                if answer.hostile != "none":
                    await _write_hostile(answer, writer)
                    break
                raw, close = answer.encode()
                writer.write(raw)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing (Python 3.11 logs a handler that ends cancelled)
        finally:
            writer.close()

    def run(self, coro: Awaitable[Any], timeout: float = 20) -> Any:
        async def wrapped() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def __enter__(self) -> FuzzServer:
        self._thread.start()

        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

        self.run(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            # Handlers still feeding a slow or endless body: end them, closing their sockets.
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[FuzzServer]:
    with FuzzServer() as fuzz:
        yield fuzz


@pytest.fixture
def lume(server: FuzzServer) -> Iterator[AsyncLume]:
    # One retry is enough to exercise the retry path on every retryable answer.
    # The client shares the server's loop, so a virtual clock sees every answer as it comes.
    # A client per test: what one test's answers did to it (its retry budget, its clock, its
    # connections) never changes what another test's answers lead to.
    client = AsyncLume(
        api_key="k",
        base_url=server.url,
        timeout=Timeout(total=5, read=READ_TIMEOUT),
        max_response_bytes=LIMIT,
        retry=RetryPolicy(max_retries=1),
        clock=VirtualClock(),
    )
    yield client
    server.run(client.aclose())


async def _first_page(paginator: Any) -> Any:
    async for page in paginator.pages():
        return page
    return None


async def _get_many(lume: AsyncLume) -> None:
    for outcome in await lume.runs.get_many([RUN_ID, "run_01HY0000000000000000000001"]):
        if not outcome.ok and not isinstance(outcome.error, LumeError):
            raise AssertionError(f"get_many outcome holds a non-LumeError: {outcome.error!r}")


async def _create_many(lume: AsyncLume) -> None:
    items = [{"flow_version": "customer_cleaner:v1", "source_path": f"s3://b/{i}"} for i in (1, 2)]
    for outcome in await lume.runs.create_many(items):
        if not outcome.ok and not isinstance(outcome.error, LumeError):
            raise AssertionError(f"create_many outcome holds a non-LumeError: {outcome.error!r}")


CALLS: dict[str, Callable[[AsyncLume], Awaitable[Any]]] = {
    "get": lambda c: c.runs.get(RUN_ID),
    "create": lambda c: c.run("customer_cleaner:v1", "s3://bucket/x"),
    "create_many": _create_many,
    "update": lambda c: c.runs.update(RUN_ID, label="x"),
    "cancel": lambda c: c.runs.cancel(RUN_ID),
    "results_page": lambda c: c.runs.results_page(RUN_ID, page_size=50),
    "rejects": lambda c: _first_page(c.runs.rejects(RUN_ID)),
    "logs": lambda c: _first_page(c.runs.logs(RUN_ID)),
    "list": lambda c: _first_page(c.runs.list()),
    "get_many": _get_many,
    "flows_list": lambda c: _first_page(c.flows.list()),
    "flows_get": lambda c: c.flows.get("customer_cleaner"),
    "list_all": lambda c: c.runs.list().collect(),
    "results_all": lambda c: c.runs.results(RUN_ID).collect(),
    "rejects_all": lambda c: c.runs.rejects(RUN_ID, page_size=50).collect(),
    "flows_all": lambda c: c.flows.list().collect(),
}

# Each example is an answer checked on its own: 40 per call, 640 in all, a quarter of them hostile
# (LUME_HYPOTHESIS_PROFILE=thorough draws twenty times as many).
FUZZ = settings(
    max_examples=examples(40),
    deadline=None,
    derandomize=True,
    database=None,
    # The client is the test's, shared by its examples on purpose (see ``lume``).
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
@FUZZ
@given(answer=answers)
def test_only_lume_errors_escape_whatever_the_server_answers(
    server: FuzzServer, lume: AsyncLume, call: str, answer: Answer
) -> None:
    server.answer = answer
    # Per answer in flight, its chunks and the body joined from them (create_many sends two at
    # once); the bombs inflate to 64 MiB, the endless bodies to anything. A body within the
    # limit is then parsed: orjson takes up to about 25 times the document while it parses
    # (its node pool, then the Python objects; measured on HUGE), bounded by the body it was
    # allowed to read.
    held = 2 * 2 * LIMIT + 8 * (1 << 20) + 2 * _PARSING * min(len(answer.body), LIMIT)
    with (
        _held_at_most(held, hostile=answer.hostile != "none", what=answer),
        contextlib.suppress(LumeError),
    ):
        server.run(CALLS[call](lume))
    assert server.loop_errors == []


@contextlib.contextmanager
def _held_at_most(limit: int, *, hostile: bool, what: object = None) -> Iterator[None]:
    """For hostile answers: fail if the process allocated more than ``limit`` bytes at once."""
    if not hostile:
        yield
        return
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"held {peak:,} bytes at once: {what!r}"


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=examples(25))
@given(answer=answers)
def test_waiting_ends_in_a_result_or_a_lume_error_whatever_the_poller_hears(
    server: FuzzServer, lume: AsyncLume, answer: Answer
) -> None:
    server.answer = Answer(200, orjson.dumps({**RUN, "status": "RUNNING"}), None, (), "exact")
    run = server.run(lume.runs.get(RUN_ID))
    server.answer = answer
    with contextlib.suppress(LumeError):
        server.run(run.wait(timeout=0.5, poll_interval=0.01))
    assert server.loop_errors == []


@pytest.mark.timeout(120)
def test_the_answers_drawn_reach_every_kind_of_outcome(server: FuzzServer, lume: AsyncLume) -> None:
    # Guards against a vacuous fuzz (e.g. every example ending as a connection error): answers
    # drawn as above, to calls drawn from the same set, end in every kind of outcome.
    # The status and the hostile shape go round in turn (the rest of each answer is drawn):
    # which of them hypothesis draws, and how often, changes with whatever else the module holds
    # (it draws from the module's constants too), and 429s or slow bodies may all but vanish.
    # Every status comes six times; every third answer is hostile, the five shapes in turn, so
    # each shape meets eleven statuses. Self-contained: the same whatever the worker ran before.
    outcomes: Counter[str] = Counter()
    turn = itertools.count()

    @settings(FUZZ, max_examples=6 * len(STATUSES))
    @given(call=st.sampled_from(list(CALLS)), answer=answers)
    def fuzz(call: str, answer: Answer) -> None:
        i = next(turn)
        hostile = HOSTILE[i // 3 % len(HOSTILE)] if i % 3 == 2 else "none"
        server.answer = attrs.evolve(answer, status=STATUSES[i % len(STATUSES)], hostile=hostile)
        try:
            server.run(CALLS[call](lume))
        except LumeError as exc:  # a RunNotFoundError counts as a NotFoundError too
            outcomes.update(k.__name__ for k in type(exc).__mro__ if issubclass(k, LumeError))
        else:
            outcomes["returned"] += 1

    fuzz()
    expected = {"returned", "ResponseValidationError", "APIConnectionError", "ServerError"}
    expected |= {"RateLimitError", "NotFoundError", "InvalidRequestError", "APIError"}
    expected |= {"ResponseTooLargeError", "APITimeoutError"}
    assert expected <= set(outcomes), (expected - set(outcomes), dict(outcomes))
