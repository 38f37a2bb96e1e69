"""The ``lume`` command at the edges of its options, its output and its files.

Numbers an option range lets through (``nan``, ``inf``), global options and environment
variables named in errors, tables whose cells are long, result rows holding integers past 64
bits, ``--data`` read exactly, and ``--output`` onto paths that are not plain files.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from lume_async._cli import _output
from lume_async.testing import Emulator, VirtualClock

from .._threaded_app import ThreadedApp
from .conftest import CUSTOMERS, ROWS, create, finished, lume, lume_process, ok_json

BIG = 2**70  # past both int64 and uint64: orjson neither reads nor writes it exactly
RUN_ID = "run_01HY0000000000000000000000"


# -- numbers a range lets through ----------------------------------------------------------------


@pytest.fixture
def still() -> Iterator[Emulator]:
    """An emulator whose clock never moves: its runs stay in flight."""
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("option", "value"),
    [("--timeout", "nan"), ("--poll-interval", "nan"), ("--poll-interval", "inf")],
)
def test_a_wait_option_that_is_not_a_number_creates_no_run(
    still: Emulator, option: str, value: str
) -> None:
    # Exit 2 promises nothing was sent; a script that trusts it starts the run a second time.
    args = ("runs", "create", CUSTOMERS, "s3://bucket/nan", "--wait", option, value)
    done = lume(*args, emu=still)
    assert still.stats()["runs_created"] == 0
    assert done.status == 2
    assert option in done.error_line()


def test_a_fan_out_with_a_wait_option_that_is_not_a_number_creates_no_run(
    still: Emulator, tmp_path: Path
) -> None:
    paths = tmp_path / "paths.txt"
    paths.write_text("s3://bucket/a\ns3://bucket/b\n")
    args = ("runs", "create", CUSTOMERS, "--from-file", str(paths), "--wait", "--timeout", "nan")
    done = lume(*args, emu=still)
    assert still.stats()["runs_created"] == 0
    assert done.status == 2
    assert "--timeout" in done.error_line()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_logs_follow_refuses_a_poll_interval_that_is_not_finite(emu: Emulator, value: str) -> None:
    # On a run in flight, inf sleeps forever after the first look and nan fails half-way with
    # "cannot convert float NaN to integer": refused up front, before any output, instead.
    run_id = finished(emu)
    done = lume("runs", "logs", run_id, "--follow", "--poll-interval", value, emu=emu)
    assert done.status == 2
    assert "--poll-interval" in done.error_line()
    assert done.stdout == ""


def test_a_bad_global_timeout_is_named_as_the_global_option(emu: Emulator) -> None:
    # `runs wait` has a --timeout of its own (given right here): the error must say which.
    run_id = create(emu)
    done = lume("--timeout", "0", "runs", "wait", run_id, "--timeout", "5", emu=emu)
    assert done.status == 2
    line = done.error_line()
    assert "--timeout" in line
    assert "(see: lume --help)" in line


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_bad_demo_time_scale_names_the_option(value: str) -> None:
    done = lume("demo", "--runs", "4", "--time-scale", value)
    assert done.status == 2
    line = done.error_line()
    assert "--time-scale" in line
    assert "time_scale" not in line


def test_a_wait_with_an_infinite_timeout_waits_as_without_one(emu: Emulator) -> None:
    args = ("runs", "wait", finished(emu), "--timeout", "inf", "--poll-interval", "0.05")
    [run] = ok_json(*args, emu=emu)
    assert run["status"] == "PARTIAL_FAILED"


# -- configuration from the environment -----------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [
        ("LUME_BASE_URL", "not a url", "--base-url"),
        ("LUME_BASE_URL", "ftp://host", "--base-url"),
        ("LUME_API_KEY", " key-with-a-space", "--api-key"),
    ],
)
def test_a_bad_setting_from_the_environment_names_the_variable(
    variable: str, value: str, option: str
) -> None:
    env = {"LUME_BASE_URL": "http://127.0.0.1:9", "LUME_API_KEY": "k", variable: value}
    done = lume("runs", "list", env=env)
    assert done.status == 2
    line = done.error_line()
    assert variable in line
    assert option not in line  # the user typed no such option


def test_a_bad_setting_given_as_an_option_names_the_option() -> None:
    env = {"LUME_API_KEY": "k"}
    done = lume("--base-url", "not a url", "runs", "list", env=env)
    assert done.status == 2
    assert done.error_line().startswith("error: --base-url must be")


def test_debug_logging_keeps_json_output_whole_and_the_key_unsaid(emu: Emulator) -> None:
    create(emu)
    env = {"LUME_LOG": "debug"}
    with lume_process("--json", "runs", "list", emu=emu, env=env) as process:
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert len(json.loads(stdout)) == 1  # the log lines went to stderr, not into the JSON
    assert "GET /v1/runs 200" in stderr
    assert emu.api_key not in stderr + stdout


@pytest.mark.parametrize("json_", [False, True])
def test_a_misspelt_setting_is_one_warning_line_and_the_command_goes_on(
    emu: Emulator, json_: bool
) -> None:
    create(emu)
    env = {"LUME_LOG": "verbose\x1b[2J", "LUME_LOOP": "fastest"}
    flags = ["--json"] if json_ else []
    with lume_process(*flags, "runs", "list", emu=emu, env=env) as process:
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr  # one line per setting: no source location, no code line
    if json_:
        warnings = [json.loads(line)["warning"] for line in lines]
        assert {w["type"] for w in warnings} == {"RuntimeWarning"}
        assert "LUME_LOG='verbose\\x1b[2j'" in warnings[0]["message"] + warnings[1]["message"]
        assert len(json.loads(stdout)) == 1
    else:
        assert all(line.startswith("warning: LUME_") for line in lines), stderr
        assert "\x1b" not in stderr and "\\x1b" in stderr  # the escape spelled out, not sent


# -- tables ---------------------------------------------------------------------------------------


@pytest.fixture
def piped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as the command prints them into a pipe: 160 columns."""
    monkeypatch.setattr(_output.out, "width", 160)


LONG_SOURCE = "synthetic://" + "d/" * 60 + "end?rows=5&duration=1"


@pytest.mark.parametrize("command", ["list", "wait"])
def test_a_long_source_path_leaves_every_status_shown(
    emu: Emulator, piped: None, command: str
) -> None:
    run_id = finished(emu, LONG_SOURCE)
    short = finished(emu, "synthetic://short?rows=5&duration=1")
    args = ("runs", "list") if command == "list" else ("runs", "wait", run_id, short)
    done = lume(*args, emu=emu)
    assert done.status == 0, done.stderr
    header, _, *lines = done.stdout.splitlines()
    assert "STATUS" in header
    assert "FLOW VERSION" in header
    for shown in (run_id, short):
        [line] = [line for line in lines if shown in line]
        assert " SUCCEEDED " in line, done.stdout


# -- rows holding integers past 64 bits -----------------------------------------------------------


class BigIntServer(ThreadedApp):
    """Serves a run's results and rejects whose rows hold an integer past 64 bits."""

    def __init__(self) -> None:
        super().__init__()

    async def _answer(self, request: web.Request) -> web.Response:
        size = int(request.query.get("size", "100"))
        if request.path.endswith("/results"):
            item: dict[str, Any] = {"id": "BIG", "neg": "-BIG", "name": "a"}
        elif request.path.endswith("/rejects"):
            reason = {"field": "id", "error_code": "out_of_range", "message": "too big"}
            item = {"index": 0, "source_record": {"id": "BIG"}, "errors": [reason]}
        else:
            return web.json_response({"detail": "not here"}, status=404)
        page = {"items": [item], "total": 1, "page": 1, "size": size, "pages": 1}
        body = orjson.dumps(page).replace(b'"-BIG"', b"-%d" % BIG).replace(b'"BIG"', b"%d" % BIG)
        return web.Response(body=body, content_type="application/json")


@pytest.fixture(scope="module")
def big_server() -> Iterator[BigIntServer]:
    with BigIntServer() as server:
        yield server


SHOWN_WITH = {
    "json": ("--json", "runs", "results", RUN_ID),
    "table": ("runs", "results", RUN_ID),
    "jsonl": ("runs", "results", RUN_ID, "-o", "-", "--format", "jsonl"),
    "csv": ("runs", "results", RUN_ID, "-o", "-", "--format", "csv"),
    "rejects-json": ("--json", "runs", "results", RUN_ID, "--rejects"),
    "rejects-table": ("runs", "results", RUN_ID, "--rejects"),
}


@pytest.mark.parametrize("how", list(SHOWN_WITH))
def test_rows_with_integers_past_64_bits_are_shown_exactly(
    big_server: BigIntServer, piped: None, how: str
) -> None:
    env = {"LUME_BASE_URL": big_server.url, "LUME_API_KEY": "k"}
    done = lume(*SHOWN_WITH[how], env=env)
    assert done.status == 0, done.stderr
    assert str(BIG) in done.stdout
    if how in ("json", "rejects-json"):
        assert str(BIG) in json.dumps(json.loads(done.stdout))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_export_of_integers_past_64_bits_writes_them_exactly(
    big_server: BigIntServer, tmp_path: Path, suffix: str
) -> None:
    env = {"LUME_BASE_URL": big_server.url, "LUME_API_KEY": "k"}
    target = tmp_path / f"rows{suffix}"
    done = lume("runs", "results", RUN_ID, "-o", str(target), env=env)
    assert done.status == 0, done.stderr
    assert str(BIG) in target.read_text()


def test_data_with_an_integer_past_64_bits_is_not_sent_rounded(emu: Emulator) -> None:
    # The SDK refuses such an integer (it cannot send it exactly); the command read it as a
    # float first and sent 1.1805916207174113e+21 in its place, without a word.
    rows = f'[{{"name": "Big", "email": "big@example.com", "age": 36, "account": {BIG}}}]'
    done = lume("runs", "create", CUSTOMERS, "--data", "-", emu=emu, stdin=rows)
    assert done.status == 2
    assert "--data" in done.error_line()
    assert emu.stats()["runs_created"] == 0


@pytest.mark.parametrize("text", ['[{"a": NaN}]', '[{"a": Infinity}]', '[{"a": 1e999}]'])
def test_data_with_a_number_json_has_not_is_a_usage_error(emu: Emulator, text: str) -> None:
    done = lume("runs", "create", CUSTOMERS, "--data", "-", emu=emu, stdin=text)
    assert done.status == 2
    assert "--data" in done.error_line()
    assert emu.stats()["runs_created"] == 0


# -- --output onto what is not a plain file -------------------------------------------------------


def test_an_export_to_a_named_pipe_writes_into_the_pipe(emu: Emulator, tmp_path: Path) -> None:
    # As root, `-o /dev/null` or `-o /dev/stdout` replaced the device node or the link alike.
    run_id = finished(emu, "synthetic://fifo?rows=5&duration=1")
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        done = lume("runs", "results", run_id, "-o", str(fifo), "--format", "jsonl", emu=emu)
        assert done.status == 0, done.stderr
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the pipe was replaced"
        received = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert len(received.splitlines()) == 5


def test_an_export_through_a_symbolic_link_writes_the_file_it_names(
    emu: Emulator, tmp_path: Path
) -> None:
    run_id = finished(emu, "synthetic://link?rows=5&duration=1")
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "rows.csv"
    real.write_text("old\n")
    link = tmp_path / "rows.csv"
    link.symlink_to(real)
    done = lume("runs", "results", run_id, "-o", str(link), emu=emu)
    assert done.status == 0, done.stderr
    assert link.is_symlink()
    assert len(real.read_text().splitlines()) == 6  # a header and five rows


def test_an_empty_output_path_is_a_usage_error_that_leaves_no_file(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = finished(emu, "synthetic://empty?rows=5&duration=1")
    monkeypatch.chdir(tmp_path)
    done = lume("runs", "results", run_id, "-o", "", "--format", "csv", emu=emu)
    assert sorted(os.listdir(tmp_path)) == []
    assert done.status == 2
    assert "--output" in done.error_line()


def test_an_output_path_in_a_missing_directory_is_named_as_given(
    emu: Emulator, tmp_path: Path
) -> None:
    run_id = finished(emu, "synthetic://nodir?rows=5&duration=1")
    target = tmp_path / "missing" / "rows.csv"
    done = lume("runs", "results", run_id, "-o", str(target), emu=emu)
    assert ".part" not in done.stderr, done.stderr
    assert str(target.parent) in done.stderr
    assert done.status == 2
    done.error_line()


def test_an_export_onto_a_plain_file_replaces_it_whole(emu: Emulator, tmp_path: Path) -> None:
    run_id = finished(emu, "synthetic://plain?rows=5&duration=1")
    target = tmp_path / "rows.jsonl"
    target.write_text("stale\n" * 100)
    target.chmod(0o640)
    done = lume("runs", "results", run_id, "-o", str(target), emu=emu)
    assert done.status == 0, done.stderr
    assert len(target.read_text().splitlines()) == 5
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["rows.jsonl"]


def test_rows_from_standard_input_and_an_empty_standard_input(emu: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, "--data", "-", emu=emu, stdin="")
    assert done.status == 2
    assert "--data" in done.error_line()
    run = ok_json("runs", "create", CUSTOMERS, "--data", "-", emu=emu, stdin=json.dumps(ROWS))
    assert run["source_path"] is None
