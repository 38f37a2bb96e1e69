"""Exports of a listing at their edges: odd values, empty listings, stopped and failed exports.

Rows come from the emulator, or, where the rows must be ones the emulator never makes (integers
past 64 bits, a listing that repeats itself, a page answered late on purpose), from a small
aiohttp service on the test's loop; both over real sockets. The blocking client and the ``lume``
command are run against an emulator on a background thread.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

import lume_sync
from lume_async import AsyncLume, AsyncPaginator, Page, ResponseValidationError
from lume_async._cli import main as cli_main
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"
KEY = "k" * 16
_names = itertools.count()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- a service answering a run's results from a script -------------------------------------------

Pages = Callable[[int, int], Any]
"""``pages(page, size)``: the body of one results page (a coroutine's result is awaited)."""


@asynccontextmanager
async def results_service(pages: Pages) -> AsyncIterator[AsyncLume]:
    """A client of a service whose ``GET /v1/runs/{id}/results`` answers ``pages(page, size)``."""

    async def handle(request: web.Request) -> web.Response:
        if not re.fullmatch(r"/v1/runs/run_\w+/results", request.path):
            return web.json_response({"detail": "?", "code": "not_found"}, status=404)
        doc = pages(int(request.query["page"]), int(request.query["size"]))
        if asyncio.iscoroutine(doc):
            doc = await doc
        body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with AsyncLume(api_key=KEY, base_url=url, clock=VirtualClock()) as lume:
            yield lume
    finally:
        await runner.cleanup()


def envelope(items: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    pages = max(1, -(-total // size))
    return {"items": items, "page": page, "size": size, "total": total, "pages": pages}


# -- values in CSV cells ---------------------------------------------------------------------------


async def test_a_text_value_holding_a_carriage_return_stays_in_its_csv_cell(
    vlume: AsyncLume, tmp_path: Path
) -> None:
    rows = [{"name": "Ada\rLovelace", "email": "ada@example.com", "age": 36}]
    run = await (await vlume.run(FLOW, source_data=rows)).wait()
    target = tmp_path / "cr.csv"
    assert await run.results().to_csv(target) == 1
    assert read_csv(target) == [
        {"full_name": "Ada\rLovelace", "email": "ada@example.com", "age": "36", "signup_date": ""}
    ]


async def test_quotes_newlines_nul_and_astral_characters_survive_a_csv_round_trip(
    vlume: AsyncLume, tmp_path: Path
) -> None:
    names = ['say "hi", then', "two\nlines", "nul\x00inside", "emoji \U0001f600 \u2028 end"]
    rows = [{"name": n, "email": f"u{i}@example.com", "age": i} for i, n in enumerate(names)]
    run = await (await vlume.run(FLOW, source_data=rows)).wait()
    target = tmp_path / "odd.csv"
    assert await run.results().to_csv(target) == len(names)
    assert [row["full_name"] for row in read_csv(target)] == names
    assert [row["age"] for row in read_csv(target)] == ["0", "1", "2", "3"]


# -- large integers --------------------------------------------------------------------------------


async def test_integers_past_64_bits_in_rows_are_exported_exactly(tmp_path: Path) -> None:
    big, small = 123456789012345678901234567890, -9223372036854775809
    body = b'{"items":[{"id":%d,"low":%d}],"page":1,"size":100,"total":1,"pages":1}' % (
        big,
        small,
    )
    async with results_service(lambda page, size: body) as lume:
        target = tmp_path / "big.jsonl"
        assert await lume.runs.results(RUN_ID).to_jsonl(target) == 1
    assert target.read_text() == f'{{"id":{big},"low":{small}}}\n'


async def test_to_arrow_keeps_a_reject_whose_source_holds_an_integer_past_int64(
    vlume: AsyncLume,
) -> None:
    pytest.importorskip("pyarrow")
    rows = [{"name": "Bob", "email": "bob@example.com", "age": 2**63}]
    run = await (await vlume.run(FLOW, source_data=rows)).wait()
    (reject,) = await run.rejects().collect()
    assert reject.source_record["age"] == 2**63
    table = await run.rejects().to_arrow()
    assert table.num_rows == 1
    (record,) = table.column("source_record").to_pylist()
    if isinstance(record, str):  # kept as JSON text, as a column of mixed types is
        record = json.loads(record)
    assert record["age"] == 2**63


async def test_to_pandas_keeps_large_integers_exact_in_a_column_with_gaps() -> None:
    pytest.importorskip("pandas")
    account = 2**53 + 1
    items = [{"account": account, "name": "a"}, {"account": None, "name": "b"}, {"name": "c"}]
    async with results_service(lambda page, size: envelope(items, page, size, 3)) as lume:
        frame = await lume.runs.results(RUN_ID).to_pandas()
    assert len(frame) == 3
    assert int(frame["account"].iloc[0]) == account


# -- empty listings --------------------------------------------------------------------------------


async def one_clean_run(lume: AsyncLume) -> Any:
    rows = [{"name": "Cy", "email": "cy@example.com", "age": 29}]
    return await (await lume.run(FLOW, source_data=rows)).wait()


async def test_an_empty_rejects_listing_exports_a_csv_with_its_header(
    vlume: AsyncLume, tmp_path: Path
) -> None:
    run = await one_clean_run(vlume)
    target = tmp_path / "rejects.csv"
    assert await run.rejects().to_csv(target) == 0
    assert target.read_text() == "index,source_record,errors\n"


async def test_an_empty_rejects_listing_gives_a_dataframe_with_its_columns(
    vlume: AsyncLume,
) -> None:
    pytest.importorskip("pandas")
    run = await one_clean_run(vlume)
    frame = await run.rejects().to_pandas()
    assert len(frame) == 0
    assert list(frame.columns) == ["index", "source_record", "errors"]


# -- file names ------------------------------------------------------------------------------------


async def test_an_export_to_a_long_but_valid_file_name_succeeds(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 245 + ".jsonl")  # 251 characters: within NAME_MAX (255)
    target.write_text("previous\n")  # the name itself can be written

    async def stream() -> AsyncIterator[Page[dict[str, Any]]]:
        yield Page(items=({"a": 1},), page=1, size=1)

    assert await AsyncPaginator(stream=stream, page_size=100).to_jsonl(target) == 1
    assert target.read_text() == '{"a":1}\n'
    assert leftovers(tmp_path) == []


# -- stopped and failed exports --------------------------------------------------------------------


def late_second_page(total: int) -> Pages:
    """Pages of one row each; page 2 is answered only once page 3 has been: so when page 2
    arrives, the read-ahead already holds page 3 and has asked for page 4."""
    answered = {n: asyncio.Event() for n in range(1, total + 1)}

    async def pages(page: int, size: int) -> dict[str, Any]:
        if page == 2:
            await answered[3].wait()
            for _ in range(50):  # let the client read page 3's answer first
                await asyncio.sleep(0)
        answered[page].set()
        return envelope([{"n": page}], page, size, total)

    return pages


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_an_export_stopped_by_a_cancel_scope_leaves_no_temporary_file(
    tmp_path: Path, kind: str
) -> None:
    target = tmp_path / f"stopped.{kind}"
    target.write_text("previous\n")
    async with results_service(late_second_page(6)) as lume:
        with anyio.CancelScope() as scope:

            def stop_after_two(written: int) -> None:
                if written == 2:
                    scope.cancel()  # enough rows: stop the export

            export = getattr(lume.runs.results(RUN_ID, page_size=1), f"to_{kind}")
            await export(target, on_progress=stop_after_two)
        assert scope.cancelled_caught
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


async def test_an_export_stopped_by_a_timeout_while_a_page_is_awaited_leaves_no_trace(
    tmp_path: Path,
) -> None:
    never = asyncio.Event()

    async def pages(page: int, size: int) -> dict[str, Any]:
        if page == 3:
            await never.wait()
        return envelope([{"n": page}], page, size, 5)

    target = tmp_path / "late.jsonl"
    target.write_text("previous\n")
    async with results_service(pages) as lume:
        with anyio.move_on_after(1) as scope:
            await lume.runs.results(RUN_ID, page_size=1).to_jsonl(target)
        never.set()
    assert scope.cancelled_caught
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_a_listing_that_repeats_a_page_fails_and_leaves_the_target_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    def pages(page: int, size: int) -> dict[str, Any]:
        # Asked for page 3, it answers page 2 again.
        shown = min(page, 2)
        items = [{"id": f"row-{shown}-{i}"} for i in range(size)]
        return envelope(items, shown, size, size * 4)

    target = tmp_path / f"repeats.{kind}"
    target.write_text("previous\n")
    async with results_service(pages) as lume:
        listing = lume.runs.results(RUN_ID, page_size=10)
        with pytest.raises(ResponseValidationError):
            await getattr(listing, f"to_{kind}")(target)
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


# -- the blocking client -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thread_emu() -> Iterator[Emulator]:
    with Emulator(time_scale=1000) as emulator:
        yield emulator


@pytest.fixture
def sync_lume(thread_emu: Emulator) -> Iterator[lume_sync.Lume]:
    with lume_sync.Lume(api_key=thread_emu.api_key, base_url=thread_emu.url) as client:
        yield client


def finished_sync_run(lume: lume_sync.Lume, rows: int) -> lume_sync.Run:
    path = f"synthetic://edges-{uuid.uuid4().hex}?rows={rows}&duration=1"
    return lume.run(FLOW, path).wait(poll_interval=0.01)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_blocking_export_whose_progress_callback_raises_leaves_the_target_as_it_was(
    sync_lume: lume_sync.Lume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    run = finished_sync_run(sync_lume, 5)  # one page
    target = tmp_path / f"kept.{kind}"
    target.write_text("previous\n")
    renamed = threading.Event()
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        renamed.set()

    monkeypatch.setattr(os, "replace", replace)

    def refuse(_: int) -> None:
        # A callback that takes a moment (a progress bar redrawing), then fails. The bound only
        # matters where the export waits for its callbacks: nothing is renamed then.
        renamed.wait(0.25)
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        getattr(run.results(), f"to_{kind}")(target, on_progress=refuse)
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


def test_a_blocking_export_stopped_by_its_callback_midway_leaves_no_trace(
    sync_lume: lume_sync.Lume, tmp_path: Path
) -> None:
    run = finished_sync_run(sync_lume, 200)
    target = tmp_path / "kept.jsonl"
    target.write_text("previous\n")

    def refuse(_: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        run.results(page_size=10).to_jsonl(target, on_progress=refuse)
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


# -- the lume command ------------------------------------------------------------------------------


def cli(emu: Emulator, *args: str) -> str:
    env = {"LUME_BASE_URL": emu.url, "LUME_API_KEY": emu.api_key}
    result = CliRunner().invoke(cli_main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_cli_export_gets_the_usual_permissions_and_a_replaced_file_keeps_its_own(
    thread_emu: Emulator, sync_lume: lume_sync.Lume, tmp_path: Path
) -> None:
    run = finished_sync_run(sync_lume, 3)
    kept = tmp_path / "kept.jsonl"
    kept.write_text("previous\n")
    os.chmod(kept, 0o640)
    fresh = tmp_path / "fresh.csv"
    cli(thread_emu, "runs", "results", run.id, "-o", str(kept))
    cli(thread_emu, "runs", "results", run.id, "-o", str(fresh))
    assert len(kept.read_text().splitlines()) == 3
    assert (kept.stat().st_mode & 0o777, fresh.stat().st_mode & 0o777) == (0o640, 0o644)
