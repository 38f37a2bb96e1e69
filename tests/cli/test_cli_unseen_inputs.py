"""The ``lume`` command given inputs its other tests do not use: groups called bare with
``--json``, Ctrl-C while standard input is read, CSV exports whose rows differ, malformed
bracketed hosts, the emulator's own settings, options that only act with another, and failure
lines on a pipe."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from lume_async._cli import main
from lume_async.testing import Emulator

from .._threaded_app import ThreadedApp
from .conftest import CUSTOMERS, Done, create, environment, finished, lume, ok_json

RUN_ID = "run_01HY0000000000000000000000"


def only_json_on_stderr(done: Done) -> list[dict[str, Any]]:
    """Every line the command wrote on stderr, each a JSON object (none blank)."""
    lines = done.stderr.splitlines()
    assert lines, done
    found = []
    for line in lines:
        value = json.loads(line)
        assert isinstance(value, dict), line
        found.append(value)
    return found


# -- a group called without its command -----------------------------------------------------------


@pytest.mark.parametrize("group", ["runs", "flows", "webhooks"])
def test_a_group_without_a_command_is_a_json_usage_error_with_json(group: str) -> None:
    done = lume("--json", group)
    assert done.status == 2
    [document] = only_json_on_stderr(done)
    error = document["error"]
    assert (error["type"], error["exit_status"]) == ("usage", 2)
    assert f"lume {group} --help" in error["message"]
    assert done.stdout == ""


def test_a_group_without_a_command_still_shows_its_help_without_json() -> None:
    done = lume("runs")
    assert done.status == 2
    assert "Commands:" in done.stderr
    assert "wait" in done.stderr


# -- Ctrl-C while standard input is being read -------------------------------------------------


class _Interrupted(io.RawIOBase):
    """Standard input at which Ctrl-C is pressed: reading it raises ``KeyboardInterrupt``."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise KeyboardInterrupt


def interrupted_while_reading(*args: str) -> Done:
    try:  # click 8.1 mixes stderr into stdout unless told not to; later versions never do
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(
        main,
        list(args),
        input=io.BufferedReader(_Interrupted()),
        env=environment(None, {"LUME_BASE_URL": "http://127.0.0.1:9", "LUME_API_KEY": "k"}),
        catch_exceptions=False,
        prog_name="lume",
    )
    return Done(result.exit_code, result.stdout, result.stderr)


READING_STDIN = {
    "data": ("runs", "create", CUSTOMERS, "--data", "-"),
    "from-file": ("runs", "create", CUSTOMERS, "--from-file", "-"),
}


@pytest.mark.parametrize("reading", list(READING_STDIN))
def test_ctrl_c_while_reading_stdin_is_one_json_object_with_json(reading: str) -> None:
    done = interrupted_while_reading("--json", *READING_STDIN[reading])
    assert done.status == 130
    [document] = only_json_on_stderr(done)
    assert (document["error"]["type"], document["error"]["exit_status"]) == ("interrupted", 130)


@pytest.mark.parametrize("reading", list(READING_STDIN))
def test_ctrl_c_while_reading_stdin_is_one_error_line_on_a_pipe(reading: str) -> None:
    done = interrupted_while_reading(*READING_STDIN[reading])
    assert done.status == 130
    assert done.error_line() == "error: interrupted"


# -- CSV exports of rows whose fields differ ----------------------------------------------------

ODD_FIELD = "late\x1b]0;owned\x07field"


class _UnevenRows(ThreadedApp):
    """A run's results: 100 rows of one shape, then a row with a field the others lack."""

    async def _answer(self, request: web.Request) -> web.Response:
        if not request.path.endswith("/results"):
            return web.json_response({"detail": "not here"}, status=404)
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("size", "100"))
        items: list[dict[str, Any]]
        if page == 1:
            items = [{"name": f"row {i}"} for i in range(100)]
        else:
            items = [{"name": "row 100", ODD_FIELD: 1}]
        body = {"items": items, "total": 101, "page": page, "size": size, "pages": 2}
        return web.Response(body=orjson.dumps(body), content_type="application/json")


@pytest.fixture(scope="module")
def uneven() -> Iterator[_UnevenRows]:
    with _UnevenRows() as server:
        yield server


def export_csv(server: _UnevenRows, path: Path, *flags: str) -> Done:
    env = {"LUME_BASE_URL": server.url, "LUME_API_KEY": "k"}
    return lume(*flags, "runs", "results", RUN_ID, "-o", str(path), env=env)


def test_a_field_left_out_of_a_csv_is_named_spelled_out(
    uneven: _UnevenRows, tmp_path: Path
) -> None:
    done = export_csv(uneven, tmp_path / "rows.csv")
    assert done.status == 0, done.stderr
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert "late\\x1b]0;owned\\x07field" in warning
    assert (tmp_path / "rows.csv").read_text(encoding="utf-8").count("\n") == 102


def test_a_field_left_out_of_a_csv_is_a_json_warning_with_json(
    uneven: _UnevenRows, tmp_path: Path
) -> None:
    done = export_csv(uneven, tmp_path / "rows.csv", "--json")
    assert done.status == 0, done.stderr
    [document] = only_json_on_stderr(done)
    assert ODD_FIELD in document["warning"]["message"]
    assert json.loads(done.stdout)["rows"] == 101


# -- a malformed bracketed host ------------------------------------------------------------------

KEY = {"LUME_API_KEY": "k"}
HTTPS = {**KEY, "LUME_BASE_URL": "https://lume.invalid"}
BRACKETS = {
    "base-url-option": (("--base-url", "http://[::1"), KEY, "--base-url"),
    "base-url-variable": ((), {**KEY, "LUME_BASE_URL": "http://[zz]"}, "$LUME_BASE_URL"),
    "proxy-option": (("--proxy", "http://[::1"), HTTPS, "--proxy"),
    "proxy-variable": ((), {**HTTPS, "HTTPS_PROXY": "http://[zz]:3128"}, "$HTTPS_PROXY"),
}


@pytest.mark.parametrize("where", list(BRACKETS))
def test_a_malformed_bracketed_host_names_the_setting(where: str) -> None:
    flags, env, named = BRACKETS[where]
    done = lume(*flags, "--max-retries", "0", "runs", "get", RUN_ID, env=env)
    assert done.status == 2, done.stderr
    line = done.error_line()
    assert named in line, line
    assert "Invalid IPv6 URL" not in line
    assert "does not appear to be" not in line


# -- the emulator's settings -------------------------------------------------------------------

EMULATOR_SETTINGS = [
    (["--time-scale", "0"], "--time-scale must be"),
    (["--time-scale", "nan"], "--time-scale must be"),
    (["--faults", "1.5"], "--faults must be between 0 and 1"),
    (["--faults", "-0.1"], "--faults must be between 0 and 1"),
    (["--faults", "0.5", "--fault-kinds", "bogus"], "--fault-kinds must be"),
    (["--faults", "0.5", "--fault-kinds", ","], "--fault-kinds must be"),
    (["--rate-limit", "0"], "--rate-limit must be"),
    (["--api-key="], "--api-key must not be empty"),
]


@pytest.mark.parametrize(("args", "says"), EMULATOR_SETTINGS)
def test_a_bad_emulator_setting_names_its_option(args: list[str], says: str) -> None:
    done = lume("emulator", "--port", "0", *args)
    assert done.status == 2
    line = done.error_line()
    assert says in line, line
    assert "None" not in line
    assert line.endswith("(see: lume emulator --help)")


@pytest.mark.parametrize(
    "args", [["--port", "99999"], ["--time-scale", "-1"], ["--bogus"]], ids=str
)
def test_a_bad_emulator_setting_is_json_with_json(args: list[str]) -> None:
    done = lume("--json", "emulator", *args)
    assert done.status == 2
    [document] = only_json_on_stderr(done)
    assert (document["error"]["type"], document["error"]["exit_status"]) == ("usage", 2)
    assert done.stdout == ""


# -- options that act only with another ---------------------------------------------------------

WITHOUT_WAIT = [
    ("--fail-on-partial",),
    ("--timeout", "30"),
    ("--poll-interval", "1"),
]


@pytest.mark.parametrize("option", WITHOUT_WAIT, ids=lambda o: o[0])
def test_a_wait_option_without_wait_is_a_usage_error_that_creates_nothing(
    emu: Emulator, option: tuple[str, ...]
) -> None:
    done = lume("runs", "create", CUSTOMERS, "synthetic://alone?duration=5", *option, emu=emu)
    assert done.status == 2, done.stdout
    line = done.error_line()
    assert option[0] in line
    assert "--wait" in line
    assert emu.stats()["runs_created"] == 0


def test_concurrency_without_a_paths_file_is_a_usage_error(emu: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, "synthetic://c", "--concurrency", "4", emu=emu)
    assert done.status == 2
    assert "--from-file" in done.error_line()
    assert emu.stats()["runs_created"] == 0


def test_wait_options_with_wait_still_wait(emu: Emulator) -> None:
    path = "synthetic://partial?rows=50&reject_rate=0.2&duration=5"
    args = ("runs", "create", CUSTOMERS, path, "--wait", "--fail-on-partial")
    done = lume(*args, "--timeout", "60", "--poll-interval", "0.05", emu=emu)
    assert done.status == 4, done.stderr
    assert ok_json("runs", "list", emu=emu)[0]["status"] == "PARTIAL_FAILED"


# -- failure lines of a fan-out on a pipe ---------------------------------------------------------


def test_each_failed_path_of_a_fan_out_is_one_whole_line_on_a_pipe(
    emu: Emulator, tmp_path: Path
) -> None:
    paths = [f"s3://bucket/{'deep/' * 30}{i}.csv" for i in range(2)]
    file = tmp_path / "paths.txt"
    file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    done = lume("runs", "create", "nope:v1", "--from-file", str(file), emu=emu)
    assert done.status == 1
    lines = done.stderr.splitlines()
    for path in paths:
        [line] = [line for line in lines if path in line]
        assert line.startswith(f"{path}: [404 not_found]"), done.stderr
        assert "request_id=" in line
    assert lines[-1].startswith("error: 2 of 2 runs could not be created")


# -- a wait that times out on some of its runs --------------------------------------------------


@pytest.mark.parametrize("json_", [False, True])
def test_a_timed_out_wait_counts_every_run_it_was_given(emu: Emulator, json_: bool) -> None:
    ended = finished(emu, "synthetic://ended?rows=5&duration=1")
    slow = create(emu, "synthetic://slow?duration=100000")
    flags = ["--json"] if json_ else []
    args = ("runs", "wait", ended, slow, "--timeout", "0.05", "--poll-interval", "0.01")
    done = lume(*flags, *args, emu=emu)
    assert done.status == 1
    message = done.json_error()["message"] if json_ else done.stderr.splitlines()[-1]
    assert "1 of 2 runs are not finished after 0.05 s" in message, message
    assert slow in message
