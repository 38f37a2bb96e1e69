"""``lume runs logs`` (and ``--follow``) and ``lume runs results`` (and ``--output``)."""

from __future__ import annotations

import contextlib
import csv
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, ROWS, Done, create, finished, lume, ok, ok_json


def inline_run(emu: Emulator) -> str:
    args = ("runs", "create", CUSTOMERS, "--data", "-", "--wait", "--poll-interval", "0.05")
    return str(ok_json(*args, emu=emu, stdin=json.dumps(ROWS))["id"])


# -- logs -------------------------------------------------------------------------------------


def test_logs_shows_the_log_oldest_first(emu: Emulator) -> None:
    out = ok("runs", "logs", finished(emu), emu=emu)
    assert out.index("run.created") < out.index("run.partial_failed")


def test_logs_json(emu: Emulator) -> None:
    entries = ok_json("runs", "logs", finished(emu), emu=emu)
    assert entries[0]["code"] == "run.created"
    assert {"time", "level", "message"} <= entries[0].keys()


def test_logs_follow_prints_each_entry_once_until_the_run_finishes(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://follow?rows=50&duration=30")
    out = ok("runs", "logs", run_id, "--follow", "--poll-interval", "0.05", emu=emu)
    codes = [line.split("[")[-1].rstrip("]") for line in out.splitlines()]
    assert codes[0] == "run.created"
    assert codes[-1] == "run.succeeded"
    assert len(codes) == len(set(codes))
    assert len(codes) == len(ok_json("runs", "logs", run_id, emu=emu))


def test_logs_follow_json_prints_one_object_per_line(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://follow?rows=50&duration=30")
    out = ok("runs", "logs", run_id, "--follow", "--json", "--poll-interval", "0.05", emu=emu)
    entries = [json.loads(line) for line in out.splitlines()]
    assert entries == ok_json("runs", "logs", run_id, emu=emu)


def test_logs_follow_of_a_finished_run_prints_its_log_and_ends(emu: Emulator) -> None:
    run_id = finished(emu)
    out = ok("runs", "logs", run_id, "--follow", "--json", emu=emu)
    assert len(out.splitlines()) == len(ok_json("runs", "logs", run_id, emu=emu))


# -- results on screen ------------------------------------------------------------------------


def test_results_shows_mapped_rows_as_a_table(emu: Emulator) -> None:
    out = ok("runs", "results", inline_run(emu), emu=emu)
    assert "full_name" in out.splitlines()[0]
    assert "ada@example.com" in out
    assert "cy@example.com" in out


def test_results_json_pages_up_to_the_limit(emu: Emulator) -> None:
    rows = ok_json("runs", "results", finished(emu), "--limit", "130", emu=emu)
    assert len(rows) == 130
    assert all("email" in row for row in rows)


def test_results_rejects_shows_the_reasons(emu: Emulator) -> None:
    out = ok("runs", "results", inline_run(emu), "--rejects", emu=emu)
    assert "email: invalid_email" in out
    assert "not-an-address" in out


def test_results_rejects_json(emu: Emulator) -> None:
    rejects = ok_json("runs", "results", finished(emu), "--rejects", "--limit", "5", emu=emu)
    assert len(rejects) == 5
    assert {"index", "source_record", "errors"} <= rejects[0].keys()


# -- results to a file ------------------------------------------------------------------------


@attrs.frozen
class Big:
    """A finished run of some 1,200 mapped rows (13 pages), its rows and rejects as listed."""

    emu: Emulator
    run_id: str
    rows: list[dict[str, Any]]
    rejects: list[dict[str, Any]]

    def results(self, *args: str) -> Done:
        return lume("runs", "results", self.run_id, *args, emu=self.emu)


@pytest.fixture(scope="module")
def big() -> Iterator[Big]:
    with Emulator(time_scale=100) as emu:
        run_id = finished(emu, "synthetic://big?rows=1300&reject_rate=0.05")
        rows = ok_json("runs", "results", run_id, "--limit", "5000", emu=emu)
        rejects = ok_json("runs", "results", run_id, "--rejects", "--limit", "5000", emu=emu)
        yield Big(emu, run_id, rows, rejects)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_output_jsonl_writes_every_row_in_order(big: Big, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rows{suffix}"
    done = big.results("-o", str(path))
    assert done.status == 0, done.stderr
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert written == big.rows
    assert f"wrote {len(written):,} rows to {path}" in done.stderr


def test_output_csv_writes_a_header_and_every_row(big: Big, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    done = big.results("--output", str(path))
    assert done.status == 0, done.stderr
    with path.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    rows = big.rows
    assert len(written) == len(rows)
    assert list(written[0]) == list(rows[0])
    assert [row["email"] for row in written] == [row["email"] for row in rows]
    ages = [json.dumps(source["age"]) for source in rows]
    assert [row["age"] for row in written] == ages


def test_output_of_rejects_keeps_the_reasons(big: Big, tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    args = ("--rejects", "--output", str(path))
    assert big.results(*args).status == 0
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert written == big.rejects


def test_output_stops_at_the_limit(big: Big, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    args = ("--limit", "150", "--output", str(path))
    assert big.results(*args).status == 0
    assert len(path.read_text().splitlines()) == 150


def test_output_dash_with_a_format_writes_to_stdout(big: Big) -> None:
    args = ("-o", "-", "--format", "jsonl", "--limit", "3")
    done = big.results(*args)
    rows = big.rows
    assert [json.loads(line) for line in done.stdout.splitlines()] == rows[:3]


def test_output_json_reports_what_was_written(big: Big, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    args = ("-o", str(path), "--json")
    report = big.results(*args).json()
    rows = big.rows
    assert report == {"path": str(path), "format": "csv", "rows": len(rows), "rejects": False}


def test_output_with_an_unknown_suffix_is_a_usage_error(big: Big, tmp_path: Path) -> None:
    done = big.results("-o", str(tmp_path / "rows.xlsx"))
    assert done.status == 2
    assert ".jsonl or .csv" in done.error_line()
    assert list(tmp_path.iterdir()) == []


def test_an_export_that_fails_leaves_no_file(emu: Emulator, tmp_path: Path) -> None:
    run_id = create(emu, "synthetic://slow?duration=100000")  # results of an unfinished run: 409
    path = tmp_path / "rows.jsonl"
    done = lume("runs", "results", run_id, "-o", str(path), emu=emu)
    assert done.status == 1
    assert "409" in done.error_line()
    assert list(tmp_path.iterdir()) == []


def test_an_export_streams_page_by_page(big: Big, tmp_path: Path) -> None:
    """Rows reach the file while later pages are still being asked for (memory stays bounded)."""
    path = tmp_path / "rows.jsonl"
    seen_while_paging: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        parts = tmp_path.glob(".rows.jsonl.*.part")
        while not stop.wait(0.001):
            for part in parts:
                with contextlib.suppress(FileNotFoundError):  # moved into place meanwhile
                    seen_while_paging.append(part.stat().st_size)
            parts = tmp_path.glob(".rows.jsonl.*.part")

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert big.results("-o", str(path)).status == 0
    finally:
        stop.set()
        watcher.join()
    final = path.stat().st_size
    assert any(0 < size < final for size in seen_while_paging)
    assert not list(tmp_path.glob("*.part"))
