"""Exports of a listing: JSON Lines and CSV files written page by page, DataFrames and Tables."""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, AsyncPaginator, Page, _converter
from lume_async.testing import Emulator

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
_names = itertools.count()


def synthetic(rows: int, reject_rate: float = 0.0) -> str:
    return f"synthetic://export-{next(_names)}?rows={rows}&reject_rate={reject_rate}&duration=1"


def stream_of(pages: list[list[dict[str, Any]]]) -> AsyncPaginator[dict[str, Any]]:
    async def stream() -> AsyncIterator[Page[dict[str, Any]]]:
        for number, items in enumerate(pages, 1):
            yield Page(items=tuple(items), page=number, size=len(items))

    return AsyncPaginator(stream=stream, page_size=100)


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.integers(0, 260), page_size=st.integers(1, 100), reject_rate=st.floats(0, 1))
async def test_jsonl_holds_exactly_the_listings_items_in_order(
    vlume: AsyncLume, tmp_path: Path, rows: int, page_size: int, reject_rate: float
) -> None:
    run = await (await vlume.run(FLOW, synthetic(rows, reject_rate))).wait()
    target = tmp_path / f"results-{next(_names)}.jsonl"
    written = await run.results(page_size=page_size).to_jsonl(target)
    expected = await run.results().collect()
    assert written == len(expected)
    assert read_jsonl(target) == expected
    rejects_file = tmp_path / f"rejects-{next(_names)}.jsonl"
    assert await run.rejects(page_size=page_size).to_jsonl(rejects_file) == len(
        await run.rejects().collect()
    )
    assert read_jsonl(rejects_file) == [
        _converter.unstructure(r) for r in await run.rejects().collect()
    ]


async def test_csv_has_a_header_and_one_line_per_row(vlume: AsyncLume, tmp_path: Path) -> None:
    run = await (await vlume.run(FLOW, synthetic(230))).wait()
    target = tmp_path / "results.csv"
    assert await run.results(page_size=50).to_csv(target) == 230
    with target.open(newline="") as f:
        read = list(csv.DictReader(f))
    expected = await run.results().collect()
    assert list(read[0]) == list(expected[0])
    assert read == [{k: "" if v is None else str(v) for k, v in row.items()} for row in expected]


async def test_csv_of_rejects_writes_nested_values_as_json(
    vlume: AsyncLume, tmp_path: Path
) -> None:
    bad = [{"name": "", "email": "x", "age": "old", "extra": {"a": [1, None]}}]
    run = await (await vlume.run(FLOW, source_data=bad)).wait()
    target = tmp_path / "rejects.csv"
    assert await run.rejects().to_csv(target) == 1
    with target.open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert list(row) == ["index", "source_record", "errors"]
    assert json.loads(row["source_record"]) == bad[0]
    assert {e["field"] for e in json.loads(row["errors"])} >= {"full_name", "email", "age"}


async def test_csv_columns_choose_and_order_the_fields(tmp_path: Path) -> None:
    target = tmp_path / "chosen.csv"
    pages = [[{"a": 1, "b": 2}], [{"b": 3}]]
    assert await stream_of(pages).to_csv(target, columns=["b", "a"]) == 2
    assert target.read_text() == "b,a\n2,1\n3,\n"


async def test_csv_of_an_empty_listing_with_columns_is_the_header_alone(tmp_path: Path) -> None:
    target = tmp_path / "empty.csv"
    assert await stream_of([[]]).to_csv(target, columns=["a", "b"]) == 0
    assert target.read_text() == "a,b\n"


async def test_a_row_with_a_field_outside_the_columns_fails_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "strays.csv"
    with pytest.raises(ValueError, match=r"'c'.*columns="):
        await stream_of([[{"a": 1}], [{"a": 2, "c": 3}]]).to_csv(target)
    assert not target.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_a_failed_export_leaves_the_previous_file_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    target = tmp_path / f"kept.{kind}"
    target.write_text("previous content\n")

    def boom(written: int) -> None:
        if written >= 2:
            raise RuntimeError("stop")

    pages = [[{"a": 1}], [{"a": 2}], [{"a": 3}]]
    export = getattr(stream_of(pages), f"to_{kind}")
    with pytest.raises(RuntimeError, match="stop"):
        await export(target, on_progress=boom)
    assert target.read_text() == "previous content\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_progress_reports_the_rows_written_after_each_page(tmp_path: Path, kind: str) -> None:
    seen: list[int] = []
    pages = [[{"a": i} for i in range(n)] for n in (3, 0, 5, 1)]
    export = getattr(stream_of(pages), f"to_{kind}")
    assert await export(tmp_path / f"p.{kind}", on_progress=seen.append) == 9
    assert seen == [3, 3, 8, 9]


async def test_the_file_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "late.jsonl"
    states: list[tuple[bool, list[str]]] = []

    def look(_: int) -> None:
        states.append((target.exists(), leftovers(tmp_path)))

    await stream_of([[{"a": 1}], [{"a": 2}]]).to_jsonl(target, on_progress=look)
    assert all(not exists and len(parts) == 1 for exists, parts in states)
    assert target.exists() and leftovers(tmp_path) == []


async def test_a_new_file_gets_the_usual_permissions_and_a_replaced_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.jsonl"
    await stream_of([[{"a": 1}]]).to_jsonl(fresh)
    assert fresh.stat().st_mode & 0o777 == 0o644
    kept = tmp_path / "kept.jsonl"
    kept.write_text("")
    os.chmod(kept, 0o600)
    await stream_of([[{"a": 1}]]).to_jsonl(kept)
    assert kept.stat().st_mode & 0o777 == 0o600


async def test_memory_holds_about_one_page_whatever_the_length(tmp_path: Path) -> None:
    row = {"payload": "x" * 1000}

    async def stream() -> AsyncIterator[Page[dict[str, Any]]]:
        for number in range(1, 301):  # 300 pages of 100 rows: 30 MB in all
            yield Page(items=tuple(dict(row, n=number) for _ in range(100)), page=number)

    tracemalloc.start()
    try:
        written = await AsyncPaginator(stream=stream, page_size=100).to_jsonl(tmp_path / "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 30_000
    assert peak < 3_000_000  # a few pages, never the whole listing


async def test_a_run_listing_exports_each_run_as_its_json(vlume: AsyncLume, tmp_path: Path) -> None:
    for _ in range(3):
        await vlume.run(FLOW, synthetic(5), label="exported")
    target = tmp_path / "runs.jsonl"
    assert await vlume.runs.list(label="exported", page_size=2).to_jsonl(target) == 3
    listed = read_jsonl(target)
    assert [r["label"] for r in listed] == ["exported"] * 3
    assert all(r["id"].startswith("run_") and r["status"] for r in listed)


async def test_followed_logs_export_as_they_are_written(vlume: AsyncLume, tmp_path: Path) -> None:
    run = await vlume.run(FLOW, "synthetic://followed?rows=3&duration=60")
    target = tmp_path / "logs.jsonl"
    written = await run.logs(follow=True, poll_interval=5).to_jsonl(target)
    assert written == len(await run.logs().collect())
    assert read_jsonl(target)[-1]["code"] == "run.succeeded"


# -- bad arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda p, d: p.to_jsonl(42), TypeError, "path"),
        (lambda p, d: p.to_jsonl(b"bytes"), TypeError, "path"),
        (lambda p, d: p.to_jsonl(d), ValueError, "path"),
        (lambda p, d: p.to_jsonl(d / "no" / "such" / "dir.jsonl"), ValueError, "path"),
        (lambda p, d: p.to_jsonl(d / "x", on_progress=3), TypeError, "on_progress"),
        (lambda p, d: p.to_csv(d / "x", columns="ab"), TypeError, "columns"),
        (lambda p, d: p.to_csv(d / "x", columns=[1]), TypeError, "columns"),
        (lambda p, d: p.to_csv(d / "x", columns=[]), ValueError, "columns"),
        (lambda p, d: p.to_csv(d / "x", columns=["a", "a"]), ValueError, "columns"),
        (lambda p, d: p.to_csv(d / "x", columns=[""]), ValueError, "columns"),
    ],
)
async def test_bad_export_arguments_are_refused_before_any_request(
    vemu: Emulator, tmp_path: Path, call: Any, error: type[Exception], argument: str
) -> None:
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url) as lume:
        listing = lume.runs.results("run_01HY0000000000000000000000")
        with pytest.raises(error, match=argument):
            await call(listing, tmp_path)
    assert vemu.stats()["requests"] == {}
    assert leftovers(tmp_path) == []


# -- pandas and pyarrow --------------------------------------------------------------------------


async def test_to_pandas_gives_a_dataframe_of_the_rows(vlume: AsyncLume) -> None:
    pytest.importorskip("pandas")
    run = await (await vlume.run(FLOW, synthetic(130, 0.2))).wait()
    frame = await run.results(page_size=40).to_pandas()
    rows = await run.results().collect()
    assert len(frame) == len(rows)
    assert list(frame.columns) == list(rows[0])
    assert frame.to_dict("records") == rows
    rejects = await run.rejects().to_pandas()
    assert list(rejects.columns) == ["index", "source_record", "errors"]


async def test_to_arrow_gives_a_table_of_the_rows(vlume: AsyncLume) -> None:
    pytest.importorskip("pyarrow")
    run = await (await vlume.run(FLOW, synthetic(130, 0.2))).wait()
    table = await run.results(page_size=40).to_arrow()
    assert table.to_pylist() == await run.results().collect()
    rejects = await run.rejects().to_arrow()
    expected = await run.rejects().collect()
    assert rejects.column_names == ["index", "source_record", "errors"]
    assert rejects.column("index").to_pylist() == [r.index for r in expected]
    # Source records mix types (an age is a number in one, text in another): kept as JSON text.
    records = [json.loads(text) for text in rejects.column("source_record").to_pylist()]
    assert records == [r.source_record for r in expected]


@pytest.mark.parametrize(
    ("method", "module", "extra"),
    [("to_pandas", "pandas", "pandas"), ("to_arrow", "pyarrow", "arrow")],
)
async def test_without_the_library_the_error_names_the_extra_and_nothing_is_sent(
    vemu: Emulator, monkeypatch: pytest.MonkeyPatch, method: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url) as lume:
        listing = lume.runs.results("run_01HY0000000000000000000000")
        with pytest.raises(ImportError, match=rf"lume-sdk\[{extra}\]"):
            await getattr(listing, method)()
    assert vemu.stats()["requests"] == {}
