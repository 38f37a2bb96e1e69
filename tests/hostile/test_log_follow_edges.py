"""Following a run's log against a service that loses, rewrites or never ends it.

A real-socket service answers the run's status and its log pages from a script of what the log
holds; the client runs on a virtual clock. Each follow must give every entry once, in order, or
end with a clear error: a log rewritten behind a page boundary is refused as one rewritten
inside a page is, and the log of a run that has ended cannot grow for ever. ``lume runs logs
--follow`` follows as the SDK does: each entry read once, not the whole log on every look.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from lume_async import AsyncLume, ResponseValidationError
from lume_async._cli import main
from lume_async._converter import decode_run
from lume_async._log_stream import follow
from lume_async.models import LogEntry, Page, RunData
from lume_async.testing import VirtualClock

from .._threaded_app import ThreadedApp
from ..core._scripted import RUN_ID, Answer, ScriptedServer, Seen, run_json

pytestmark = pytest.mark.anyio

LOG_PATH = f"/v1/runs/{RUN_ID}/logs"


def entry(n: int) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "level": "INFO", "code": "c", "message": f"line {n}"}


def envelope(entries: list[Any], page: int, size: int) -> dict[str, Any]:
    total = len(entries)
    items = entries[(page - 1) * size : page * size]
    return {"items": items, "page": page, "size": size, "total": total, "pages": -(-total // size)}


class Log:
    """What a service holds of one run: its status, its log, and hooks called on each read."""

    def __init__(self, entries: int = 0) -> None:
        self.entries = [entry(i) for i in range(entries)]
        self.status = "TRANSFORMING"
        self.on_status: Callable[[Log], None] = lambda _: None
        self.page_of: Callable[[int, int], dict[str, Any]] | None = None  # page, size: answer
        self.status_reads = 0
        self.log_reads = 0

    def answer(self, method: str, path_qs: str) -> tuple[int, dict[str, Any]]:
        url = urlsplit(path_qs)
        if method == "GET" and url.path == LOG_PATH:
            self.log_reads += 1
            query = parse_qs(url.query)
            page, size = int(query["page"][0]), int(query["size"][0])
            if self.page_of is not None:
                return 200, self.page_of(page, size)
            return 200, envelope(self.entries, page, size)
        if method == "GET" and url.path == f"/v1/runs/{RUN_ID}":
            self.status_reads += 1
            self.on_status(self)
            return 200, run_json(status=self.status)
        return 404, {"detail": "not found", "code": "not_found"}

    def respond(self, seen: Seen) -> Answer:
        status, body = self.answer(seen.method, seen.path)
        return Answer(status, body)


def client_of(scripted: ScriptedServer) -> AsyncLume:
    return AsyncLume(api_key="k_follow", base_url=scripted.url, clock=VirtualClock())


async def follow_into(
    lume: AsyncLume, got: list[str], *, page_size: int, limit: int = 10_000
) -> None:
    """Follow the run's log into ``got`` (messages); stop at ``limit`` entries."""
    async for item in lume.runs.logs(RUN_ID, page_size=page_size, follow=True, poll_interval=1):
        got.append(item.message)
        if len(got) >= limit:
            return


# -- a log rewritten behind a page boundary ----------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("page_size", [5, 1])
async def test_a_log_rewritten_behind_a_page_boundary_is_refused_not_skipped(
    scripted: ScriptedServer, page_size: int
) -> None:
    log = Log(entries=5)

    def rewrite(log_: Log) -> None:
        if log_.status_reads == 2:  # after the first round gave the 5 entries
            # 3 entries lost, and 6 others written after the 2 kept: the total is 8, past the
            # 5 handed out, so only the entry at the boundary can tell the log was rewritten.
            log_.entries = log_.entries[:2] + [entry(100 + i) for i in range(6)]
            log_.status = "SUCCEEDED"

    log.on_status = rewrite
    scripted.respond = log.respond
    got: list[str] = []
    with anyio.fail_after(10):
        async with client_of(scripted) as lume:
            with pytest.raises(ResponseValidationError, match="removed or rewritten"):
                await follow_into(lume, got, page_size=page_size)
    assert got == [f"line {i}" for i in range(5)]  # and nothing after: none skipped


@pytest.mark.timeout(30)
async def test_a_log_at_a_page_boundary_that_grows_is_followed_on_without_repeats(
    scripted: ScriptedServer,
) -> None:
    log = Log(entries=0)

    def grow(log_: Log) -> None:
        # 5 entries a round, pages of 5: every round starts at a page boundary.
        log_.entries += [entry(len(log_.entries) + i) for i in range(5)]
        if len(log_.entries) >= 30:
            log_.status = "SUCCEEDED"

    log.on_status = grow
    scripted.respond = log.respond
    got: list[str] = []
    with anyio.fail_after(10):
        async with client_of(scripted) as lume:
            await follow_into(lume, got, page_size=5)
    assert got == [f"line {i}" for i in range(30)]
    # Each round after the first reads the page of the last entry given, then the new one.
    assert log.log_reads <= 2 * log.status_reads


# -- the log of a run that has ended --------------------------------------------------------------


@pytest.mark.timeout(30)
async def test_an_ended_run_whose_log_never_ends_is_refused_not_followed_for_ever(
    scripted: ScriptedServer,
) -> None:
    log = Log()
    log.status = "SUCCEEDED"

    def endless(page: int, size: int) -> dict[str, Any]:
        # Every page is full and the total is always one page further on: a log without end.
        total = (page + 1) * size
        items = [entry((page - 1) * size + i) for i in range(size)]
        return {"items": items, "page": page, "size": size, "total": total, "pages": page + 1}

    log.page_of = endless
    scripted.respond = log.respond
    got: list[str] = []
    with anyio.fail_after(20):
        async with client_of(scripted) as lume:
            with pytest.raises(ResponseValidationError, match="has ended"):
                await follow_into(lume, got, page_size=100, limit=5_000)
    assert got == [f"line {i}" for i in range(100)]  # the page whose total the run ended with
    assert log.log_reads == 2


@pytest.mark.timeout(30)
async def test_an_ended_run_whose_log_total_falls_mid_read_is_refused_not_cut_short(
    scripted: ScriptedServer,
) -> None:
    log = Log(entries=200)
    log.status = "FAILED"

    def lagging(page: int, size: int) -> dict[str, Any]:
        # Page 1 says 200 entries; page 2 comes from a copy that has only 150 of them.
        return envelope(log.entries[: 200 if page == 1 else 150], page, size)

    log.page_of = lagging
    scripted.respond = log.respond
    got: list[str] = []
    with anyio.fail_after(10):
        async with client_of(scripted) as lume:
            with pytest.raises(ResponseValidationError, match="from 200 to 150 entries"):
                await follow_into(lume, got, page_size=100)
    assert got == [f"line {i}" for i in range(100)]


# -- lume runs logs --follow ----------------------------------------------------------------------


class LogService(ThreadedApp):
    """``Log`` served from a thread of its own, for the ``lume`` command."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    async def _answer(self, request: web.Request) -> web.Response:
        status, body = self.log.answer(request.method, request.path_qs)
        headers = {"x-request-id": f"req_{self.log.status_reads}_{self.log.log_reads}"}
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
        )


@pytest.fixture
def served() -> Iterator[LogService]:
    with LogService(Log()) as service:
        yield service


def follow_command(service: LogService, *extra: str) -> Any:
    env = {"LUME_BASE_URL": service.url, "LUME_API_KEY": "k_follow", "LUME_LOG": None}
    args = ["runs", "logs", RUN_ID, "--follow", "--poll-interval", "0.01", *extra]
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.mark.timeout(60)
def test_cli_follow_reads_each_page_once_not_the_whole_log_on_every_look(
    served: LogService,
) -> None:
    log = served.log
    log.entries = [entry(i) for i in range(250)]  # three pages of 100

    def later(log_: Log) -> None:
        log_.entries.append(entry(len(log_.entries)))
        if log_.status_reads == 8:
            log_.status = "SUCCEEDED"

    log.on_status = later
    done = follow_command(served, "--json")
    assert done.exit_code == 0, done.output
    lines = [orjson.loads(line)["message"] for line in done.output.splitlines()]
    assert lines == [f"line {i}" for i in range(258)]
    # The first look reads three pages; each later one the page it left off on. Reading the
    # whole log again on every look would take 8 x 3 reads.
    assert log.log_reads <= 3 + 7


@pytest.mark.timeout(60)
def test_cli_follow_refuses_a_rewritten_log_rather_than_skip_lines(served: LogService) -> None:
    log = served.log
    log.entries = [entry(i) for i in range(5)]

    def rewrite(log_: Log) -> None:
        if log_.status_reads == 2:
            log_.entries = log_.entries[:2] + [entry(100 + i) for i in range(6)]
            log_.status = "SUCCEEDED"

    log.on_status = rewrite
    done = follow_command(served)
    assert done.exit_code == 1, done.output
    printed = [line for line in done.output.splitlines() if re.search(r"line \d+", line)]
    assert [re.findall(r"line \d+", line)[0] for line in printed] == [f"line {i}" for i in range(5)]
    assert "removed or rewritten" in done.output


@pytest.mark.anyio
@pytest.mark.timeout(10)
async def test_a_log_without_a_total_is_followed_page_after_page_to_its_end() -> None:
    """``follow`` on its own, fed pages that do not say their total: each page is read once."""
    log = [
        LogEntry(
            time=datetime(2026, 1, 1, tzinfo=UTC),
            level="INFO",
            code=None,
            message=f"line {n}",
            details=None,
        )
        for n in range(7)
    ]
    asked: list[int] = []

    async def read_run() -> RunData:
        return decode_run(orjson.dumps(run_json(status="SUCCEEDED")))

    async def read_page(number: int) -> Page[LogEntry]:
        asked.append(number)
        items = log[(number - 1) * 2 : number * 2]
        return Page(items=items, page=number, size=2, total=None, pages=None)

    got = [
        entry.message
        async for page in follow(
            read_run=read_run,
            read_page=read_page,
            page_size=2,
            poll_interval=1,
            clock=VirtualClock(),
        )
        for entry in page.items
    ]
    assert got == [entry.message for entry in log]
    assert asked == [1, 2, 3, 4]
