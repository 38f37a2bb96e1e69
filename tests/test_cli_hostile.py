"""The ``lume`` command prints server text literally: never as markup, styles or control codes.

A server puts one hostile string in every text it returns (source paths, labels, tags, flow
versions, statuses, error codes and messages, log entries, result keys and values, reject
reasons and records, run metadata): Rich markup that would crash the renderer (``[/x]``) or make
a hyperlink, ANSI escape sequences, other control characters, bidirectional overrides, emoji
codes. Every command, as a table and as JSON, must succeed (or fail with its one error line),
show each string literally with its control characters spelled out, and write no raw control
character to the terminal.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from rich.console import Console

from lume_async._cli import _output, _wait, main
from lume_async._cli._escape import visible

from ._threaded_app import ThreadedApp

RUN_ID = "run_01HY0000000000000000000000"
NOW = "2026-01-01T00:00:00.000Z"
REFUSED = "refused_flow:v1"  # a listing of this flow version is answered with a 422

HOSTILE = [
    "[/x]",
    "[bold]loud[/bold]",
    "[link=https://evil.example]click[/link]",
    "[red on white]x",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b]0;new title\x07",
    "bell\x07back\x08nul\x00",
    "\x9b31mcsi",
    "tab\there\nnewline\rreturn",
    "\u202eevil\u202c",
    ":smile: :thumbs_up:",
    "\\[not escaped]",
    "[[",
]
# Raw control characters, DEL, C1 and invisible format characters: none may reach the terminal.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def spelled(text: str) -> str:
    """``text`` as the command must show it: each hidden character spelled out."""
    return RAW.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text.replace("\n", "\\x0a"),
    )


def strings(value: Any) -> set[str]:
    """Every string in parsed JSON, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value).union(*(strings(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(strings(v) for v in value))
    return set()


def run(text: str, *, run_id: str = RUN_ID, status: str = "FAILED") -> dict[str, Any]:
    return {
        "id": run_id,
        "status": status,
        "flow_version": text,
        "source_path": text,
        "label": text,
        "tags": [text, "plain"],
        "run_metadata": {text: text},
        "created_at": NOW,
        "updated_at": NOW,
        "metadata": None,
        "error": {"code": text, "message": text},
    }


def envelope(items: list[Any], size: int) -> dict[str, Any]:
    return {"items": items, "total": len(items), "page": 1, "size": size, "pages": 1}


class HostileServer(ThreadedApp):
    """Answers every route the command uses with ``text`` in each string it returns."""

    def __init__(self) -> None:
        self.text = ""
        self.batch_status = "FAILED"
        super().__init__()

    async def _answer(self, request: web.Request) -> web.Response:
        text, path = self.text, request.path
        size = int(request.query.get("size", 100))
        if request.query.get("flow_version") == REFUSED:
            refusal = orjson.dumps({"detail": text, "code": text, "error_id": text})
            return web.Response(body=refusal, status=422, content_type="application/json")
        if request.method == "POST" and path == "/v1/runs/batch-get":
            body: Any = {"items": [run(text, status=self.batch_status)], "missing": []}
        elif path.endswith("/logs"):
            entry = {"time": NOW, "level": text, "code": text, "message": text, "details": {}}
            body = envelope([entry], size)
        elif path.endswith("/results"):
            body = envelope([{text: text, "n": {text: [text]}}], size)
        elif path.endswith("/rejects"):
            reason = {"field": text, "error_code": text, "message": text}
            reject = {"index": 0, "source_record": {text: text}, "errors": [reason]}
            body = envelope([reject], size)
        elif path == "/v1/runs" and request.method == "GET":
            # A listed run's id must be a run id (it goes into URL paths): the text is elsewhere.
            body = {"items": [run(text, status=text)], "next_cursor": None}
        else:
            body = run(text, status=text if request.method == "GET" else "FAILED")
        return web.Response(
            body=orjson.dumps(body), content_type="application/json", headers={"x-request-id": "r"}
        )


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell is cut: every string can be looked for whole."""
    monkeypatch.setattr(_output.out, "width", 2000)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def invoke(server: HostileServer, *args: str) -> Any:
    env = {"LUME_BASE_URL": server.url, "LUME_API_KEY": "k", "COLUMNS": "400"}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def lume(server: HostileServer, *args: str) -> tuple[int, str]:
    """Exit status, and standard output and error together."""
    result = invoke(server, *args)
    return result.exit_code, result.output


# The hostile runs end FAILED: a wait for one exits 3 (a run waited on failed), after its output.
EXIT_STATUS = {"wait": 3}
COMMANDS = {
    "list": ("runs", "list"),
    "get": ("runs", "get", RUN_ID),
    "create": ("runs", "create", "customer_cleaner:v1", "s3://bucket/x"),
    "wait": ("runs", "wait", RUN_ID, "--poll-interval", "0.01"),
    "cancel": ("runs", "cancel", RUN_ID),
    "logs": ("runs", "logs", RUN_ID),
    "results": ("runs", "results", RUN_ID),
    "rejects": ("runs", "results", RUN_ID, "--rejects"),
}


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:30] for t in HOSTILE])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_prints_server_text_literally(
    server: HostileServer, command: str, text: str
) -> None:
    server.text = text
    code, output = lume(server, *COMMANDS[command])
    assert code == EXIT_STATUS.get(command, 0), output
    assert "Traceback" not in output and "MarkupError" not in output
    assert RAW.search(output.replace("\n", "")) is None, repr(output)
    assert spelled(text) in output, f"{spelled(text)!r} not in {output!r}"


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:30] for t in HOSTILE])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_json_output_keeps_server_text_whole_and_escaped(
    server: HostileServer, command: str, text: str
) -> None:
    server.text = text
    result = invoke(server, "--json", *COMMANDS[command])
    output = result.output
    assert result.exit_code == EXIT_STATUS.get(command, 0), output
    assert RAW.search(output.replace("\n", "")) is None, repr(output)
    assert text in strings(orjson.loads(result.stdout)), output


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:30] for t in HOSTILE])
def test_an_error_message_from_the_server_is_one_literal_line(
    server: HostileServer, text: str
) -> None:
    server.text = text
    code, output = lume(server, "runs", "list", "--flow-version", REFUSED)
    assert code == 1
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert RAW.search(output.replace("\n", "")) is None, repr(output)
    assert spelled(" ".join(text.split())) in output, repr(output)


@pytest.mark.parametrize("text", ["[bold]loud[/bold]", "\x1b[31mred", "[link=https://e.x]a[/link]"])
def test_the_live_progress_of_wait_on_a_terminal_shows_server_statuses_literally(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    # A status the SDK does not know is kept and is not terminal: the wait shows it, then times out.
    server.text = text
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=200, highlight=False)
    monkeypatch.setattr(_wait, "err", terminal)
    server.batch_status = text
    try:
        code, output = lume(server, "runs", "wait", RUN_ID, "--timeout", "0.5")
    finally:
        server.batch_status = "FAILED"
    assert code == 1 and "error: " in output
    drawn = screen.getvalue()
    shown = visible(text.lower())  # the bar counts runs by status, in lower case
    assert shown in drawn, repr(drawn)  # literally: markup as written, escapes spelled out
    assert "\x1b]8;" not in drawn  # no hyperlink was made
    assert "\x1b[31mred" not in drawn.lower()
