"""Hostile answers of shapes the other hostile tests leave out.

- Listings: a page-numbered listing whose total grows and then falls back (still above the first
  page's total) lost rows silently; each page's total is now held to the highest total known
  when it was asked for, in every listing, its blocking twin and the command line.
- Bounds: an answer sent as a stream of one-byte chunks made the client hold about a hundred
  bytes per byte of body (one object per chunk); it now holds about twice the body at most.
- Nesting: JSON nested close to the parser's limit (1024 levels) raised ``RecursionError`` out
  of an error answer, out of a page of rows with an integer past 64 bits, and out of exports and
  ``lume`` output of rows, log details and rejected records that were read without trouble.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import orjson
import pytest
from aiohttp import web

import lume_sync
from lume_async import (
    APIError,
    AsyncLume,
    InvalidRequestError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
)

from ..cli.conftest import lume as run_lume
from ..core._scripted import RUN_ID, Answer, ScriptedServer, Seen, run_json
from ._servers import RawServer, Shape, head, json_answer

pytestmark = pytest.mark.anyio

KEY = "lume_unseen_inputs_key_0123456789"
KIB = 1 << 10
MIB = 1 << 20

# --- listings: a total that grows, then falls back ------------------------------------------


def _log_row(i: int) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "level": "INFO", "message": f"m{i}"}


def _reject_row(i: int) -> dict[str, Any]:
    return {"index": i, "source_record": {"n": i}, "errors": []}


def _flow_row(i: int) -> dict[str, Any]:
    return {"name": f"flow_{i}", "description": None, "versions": []}


def _endpoint_row(i: int) -> dict[str, Any]:
    return {"id": f"wh_{i}", "url": "https://example.com/hooks", "events": ["run.failed"]}


ROWS: dict[str, Callable[[int], dict[str, Any]]] = {
    "logs": _log_row,
    "rejects": _reject_row,
    "flows": _flow_row,
    "webhook_endpoints": _endpoint_row,
}
WALKS: dict[str, Callable[[Any], Any]] = {
    "logs": lambda c: c.runs.logs(RUN_ID, page_size=10),
    "rejects": lambda c: c.runs.rejects(RUN_ID, page_size=10),
    "flows": lambda c: c.flows.list(page_size=10),
    "webhook_endpoints": lambda c: c.webhook_endpoints.list(page_size=10),
}


def totals_by_request(pages: list[int], row: Callable[[int], dict[str, Any]]) -> Any:
    """Pages of ``row``s whose n-th answer says the listing holds ``pages[n]`` full pages of
    rows (the last count for any answer after them)."""
    served = [0]

    def respond(seen: Seen) -> Answer:
        query = parse_qs(urlsplit(seen.path).query)
        page, size = int(query["page"][0]), int(query["size"][0])
        total = pages[min(served[0], len(pages) - 1)] * size
        served[0] += 1
        start = (page - 1) * size
        items = [row(i) for i in range(start, min(total, start + size))]
        doc = {"items": items, "page": page, "size": size, "total": total}
        doc["pages"] = math.ceil(total / size)
        return Answer(200, doc, {"x-request-id": f"req_{served[0]}"})

    return respond


# Page 1 says 3 pages of rows; page 2 says 5 (rows were appended), then every later page says 4:
# a page of rows page 2 said were there is gone, and the rows after them moved up.
GROWS_THEN_FALLS = [3, 5, 4]


@pytest.mark.parametrize("what", list(WALKS))
async def test_a_total_that_falls_below_one_seen_before_is_refused(
    scripted: ScriptedServer, what: str
) -> None:
    scripted.respond = totals_by_request(GROWS_THEN_FALLS, ROWS[what])
    async with AsyncLume(api_key=KEY, base_url=scripted.url, max_retries=0) as lume:
        with pytest.raises(ResponseValidationError, match="fell from 50 to 40"):
            await WALKS[what](lume).collect()


@pytest.mark.parametrize("what", list(WALKS))
async def test_the_blocking_twin_refuses_a_total_that_falls_back(
    scripted: ScriptedServer, what: str
) -> None:
    scripted.respond = totals_by_request(GROWS_THEN_FALLS, ROWS[what])
    lume = lume_sync.Lume(api_key=KEY, base_url=scripted.url, max_retries=0)
    try:
        with pytest.raises(ResponseValidationError, match="fell from 50 to 40"):
            await anyio.to_thread.run_sync(lambda: list(WALKS[what](lume)))
    finally:
        await anyio.to_thread.run_sync(lume.close)


@pytest.mark.parametrize(
    ("what", "args"), [("flows", ["flows", "list"]), ("webhook_endpoints", ["webhooks", "list"])]
)
async def test_the_command_line_refuses_a_total_that_falls_back(
    scripted: ScriptedServer, what: str, args: list[str]
) -> None:
    scripted.respond = totals_by_request(GROWS_THEN_FALLS, ROWS[what])
    env = {"LUME_BASE_URL": scripted.url, "LUME_API_KEY": KEY}
    done = await anyio.to_thread.run_sync(lambda: run_lume("--max-retries", "0", *args, env=env))
    assert done.status == 1
    assert "fell from 500 to 400" in done.error_line()  # pages of 100


async def test_pages_asked_together_may_answer_in_any_order_while_the_listing_grows() -> None:
    """Honest: page 3 is answered first, then rows are appended, then page 2 is answered; the
    walk takes every row once, in order."""
    total = [30]
    page_three_answered = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        page, size = int(request.query["page"]), int(request.query["size"])
        if page == 2:
            await page_three_answered.wait()
        start = (page - 1) * size
        items = [_log_row(i) for i in range(start, min(total[0], start + size))]
        doc = {"items": items, "page": page, "size": size, "total": total[0]}
        doc["pages"] = math.ceil(total[0] / size)
        if page == 3:
            page_three_answered.set()
            total[0] = 40  # appended once page 3 has its answer
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/v1/runs/{run_id}/logs", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with AsyncLume(api_key=KEY, base_url=url, max_retries=0) as lume:
            rows = await lume.runs.logs(RUN_ID, page_size=10).collect()
    finally:
        await runner.cleanup()
    assert [row.message for row in rows] == [f"m{i}" for i in range(40)]


# --- bounds: an answer in one-byte chunks ---------------------------------------------------


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _padded_run(size: int) -> bytes:
    """A run's JSON of ``size`` bytes, with a label of digits that do not compress well."""
    body = orjson.dumps({**run_json(), "label": ""})
    need, digits, start = size - len(body), "", 0
    while len(digits) < need:  # numbers a block at a time, only as many as the label takes
        digits += "".join(str(i * 7919 % 10007) for i in range(start, start + 1024))
        start += 1024
    digits = digits[:need]
    return orjson.dumps({**run_json(), "label": digits})


def one_byte_chunks(body: bytes, status: int = 200, encoding: str | None = None) -> Shape:
    """``body`` (gzipped first, with ``encoding``) as chunks of one byte each."""
    data = gzip.compress(body) if encoding else body
    extra = {"content_encoding": encoding} if encoding else {}
    framed = head(status, content_type="application/json", transfer_encoding="chunked", **extra)
    # Made once, here: the server's side of the exchange holds next to nothing while it runs.
    # Each byte framed as b"1\r\n" + byte + b"\r\n", built by slice assignment: no object per
    # byte, so making it costs next to nothing (it runs under tracemalloc).
    chunks = bytearray(b"1\r\n_\r\n" * len(data))
    chunks[3::6] = data
    wire = memoryview(framed + bytes(chunks) + b"0\r\n\r\n")

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        for start in range(0, len(wire), 6 * 4096):
            writer.write(wire[start : start + 6 * 4096])
            await writer.drain()
        return True

    return write


async def _peak(call: Callable[[], Any]) -> tuple[Any, int]:
    """What ``call()`` returned or raised, and the most memory held at once while it ran."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        outcome = await call()
    except APIError as exc:
        outcome = exc
    return outcome, tracemalloc.get_traced_memory()[1] - base


BODY = 40 * KIB
# Twice the body (its pieces, then the body joined from them), two of the connection's reads of
# up to 256 KiB (as received, then in the chunk parser's buffer) and a little for the rest. Each
# byte kept as an object of its own costs some 35 bytes: over a MiB for this body.
BOUND = 2 * BODY + 2 * 256 * KIB + 128 * KIB


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_an_answer_in_one_byte_chunks_is_read_whole_within_bounds(
    encoding: str | None,
) -> None:
    async with (
        RawServer(json_answer(run_json())) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0, max_response_bytes=MIB) as lume,
    ):
        await lume.runs.get(RUN_ID)  # the connection and its buffers are made before measuring
        server.shape = one_byte_chunks(_padded_run(BODY), encoding=encoding)
        run, peak = await _peak(lambda: lume.runs.get(RUN_ID))
    assert run.id == RUN_ID
    assert peak < BOUND


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize(("status", "error"), [(200, ResponseTooLargeError), (503, ServerError)])
async def test_one_byte_chunks_past_the_limit_are_held_within_the_limit(
    status: int, error: type[APIError]
) -> None:
    limit = BODY // 2
    async with (
        RawServer(json_answer(run_json())) as server,
        AsyncLume(
            api_key=KEY, base_url=server.url, max_retries=0, max_response_bytes=limit
        ) as lume,
    ):
        await lume.runs.get(RUN_ID)
        server.shape = one_byte_chunks(b"[" * BODY, status=status)
        raised, peak = await _peak(lambda: lume.runs.get(RUN_ID))
    assert isinstance(raised, error)
    assert peak < BOUND


# --- nesting: JSON nested close to the parser's limit ---------------------------------------

DEEP = 1000  # orjson reads up to 1024 levels; the json module and repr nest on the stack


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize(
    "detail",
    [
        f"[{nested(DEEP)}]",
        f'[{{"loc": ["body", {nested(DEEP)}], "msg": "bad"}}]',
        f'[{{"loc": ["body"], "msg": {nested(DEEP)}}}]',
    ],
    ids=["an issue", "a place", "a message"],
)
async def test_an_error_whose_detail_is_nested_deeply_is_still_an_api_error(
    scripted: ScriptedServer, detail: str
) -> None:
    body = f'{{"detail": {detail}, "code": "invalid"}}'.encode()
    scripted.then(Answer(422, body))
    async with AsyncLume(api_key=KEY, base_url=scripted.url, max_retries=0) as lume:
        with pytest.raises(InvalidRequestError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.status_code == 422
    assert len(str(caught.value)) < 1_000


def rows_page(rows: list[str]) -> Callable[[Seen], Answer]:
    """Page 1 of a listing of ``rows`` (JSON texts), at the page size asked for."""

    def respond(seen: Seen) -> Answer:
        size = int(parse_qs(urlsplit(seen.path).query)["size"][0])
        envelope = f'{{"page": 1, "size": {size}, "total": {len(rows)}, "pages": 1, "items": ['
        return Answer(200, (envelope + ",".join(rows) + "]}").encode())

    return respond


async def test_a_page_nested_deeply_with_an_integer_past_64_bits_is_refused_clearly(
    scripted: ScriptedServer,
) -> None:
    row = f'{{"id": 12345678901234567890123, "x": {nested(DEEP)}}}'
    scripted.respond = rows_page([row])
    async with AsyncLume(api_key=KEY, base_url=scripted.url, max_retries=0) as lume:
        with pytest.raises(ResponseValidationError, match="nested too deeply"):
            await lume.runs.results(RUN_ID).collect()


DEEP_ROWS = [f'{{"n":{i},"x":{nested(DEEP, str(i))}}}' for i in range(3)]


async def test_rows_nested_deeply_are_exported_exactly(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    scripted.respond = rows_page(DEEP_ROWS)
    async with AsyncLume(api_key=KEY, base_url=scripted.url, max_retries=0) as lume:
        assert await lume.runs.results(RUN_ID).to_jsonl(tmp_path / "rows.jsonl") == 3
        assert await lume.runs.results(RUN_ID).to_csv(tmp_path / "rows.csv") == 3
    assert (tmp_path / "rows.jsonl").read_text().splitlines() == DEEP_ROWS
    cells = [line.split(",", 1) for line in (tmp_path / "rows.csv").read_text().splitlines()]
    assert cells == [["n", "x"]] + [[str(i), nested(DEEP, str(i))] for i in range(3)]


async def test_the_command_line_shows_rows_nested_deeply(scripted: ScriptedServer) -> None:
    scripted.respond = rows_page(DEEP_ROWS)
    env = {"LUME_BASE_URL": scripted.url, "LUME_API_KEY": KEY}
    done = await anyio.to_thread.run_sync(
        lambda: run_lume("--json", "--max-retries", "0", "runs", "results", RUN_ID, env=env)
    )
    assert done.status == 0, done.stderr
    assert [row["n"] for row in orjson.loads(done.stdout)] == [0, 1, 2]
    assert "".join(done.stdout.split()) == "[" + ",".join(DEEP_ROWS) + "]"  # indented, whole


DEEP_MODELS = {
    "rejects": f'{{"index": 0, "errors": [], "source_record": {{"x": {nested(DEEP)}}}}}',
    "logs": f'{{"time": "2026-01-01T00:00:00Z", "level": "INFO", "message": "m", '
    f'"details": {{"x": {nested(DEEP)}}}}}',
}


@pytest.mark.parametrize("what", list(DEEP_MODELS))
async def test_models_holding_json_nested_deeply_are_exported_and_shown(
    scripted: ScriptedServer, tmp_path: Path, what: str
) -> None:
    scripted.respond = rows_page([DEEP_MODELS[what]])
    async with AsyncLume(api_key=KEY, base_url=scripted.url, max_retries=0) as lume:
        listing = getattr(lume.runs, what)(RUN_ID)
        assert await listing.to_jsonl(tmp_path / "rows.jsonl") == 1
    assert f'{{"x":{nested(DEEP)}}}' in (tmp_path / "rows.jsonl").read_text()
    env = {"LUME_BASE_URL": scripted.url, "LUME_API_KEY": KEY}
    args = ("runs", "results", "--rejects") if what == "rejects" else ("runs", "logs")
    done = await anyio.to_thread.run_sync(lambda: run_lume("--json", *args, RUN_ID, env=env))
    assert done.status == 0, done.stderr
    assert f'{{"x":{nested(DEEP)}}}' in "".join(done.stdout.split())
