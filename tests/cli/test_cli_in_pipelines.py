"""The ``lume`` command in shell scripts: closed or full standard streams and non-UTF-8 encodings.

Each command runs as a process of its own (a shell closes or redirects its streams), against an
emulator. A stream the shell closed must not be taken over by a connection the command opens; a
full disk must be one error line and exit status 1; ``--json`` must stay valid JSON whatever the
encoding of the stream it is written to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

from lume_async.testing import Emulator

from .conftest import _AMBIENT, CUSTOMERS, environment, ok_json

pytestmark = pytest.mark.timeout(60)

LABEL = "Zo\u00eb \U0001f600 na\u00efve \U0001d11e"


def shell(
    redirect: str, *args: str, emu: Emulator, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m lume_async ARGS REDIRECT`` run by ``sh`` (``<&-``, ``> /dev/full``...).

    Standard output is block buffered, as it is for a script (not line by line, as a test
    runner's environment may ask for).
    """
    environ = {k: v for k, v in os.environ.items() if k not in _AMBIENT}
    environ.pop("PYTHONUNBUFFERED", None)
    environ.update({k: v for k, v in environment(emu, env).items() if v is not None})
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "lume_async", *args],
        env=environ,
        capture_output=True,
        timeout=30,
        check=False,
    )


def creates(emu: Emulator) -> int:
    return sum(emu.stats()["requests"].get("POST /v1/runs", {}).values())


def labelled_run(emu: Emulator) -> str:
    run = ok_json("runs", "create", CUSTOMERS, "synthetic://p?rows=5", "--label", LABEL, emu=emu)
    return str(run["id"])


@pytest.mark.parametrize("redirect", ["<&-", "2>&-"], ids=["stdin", "stderr"])
def test_a_closed_stdin_or_stderr_is_not_taken_by_a_connection(
    emu: Emulator, redirect: str
) -> None:
    done = shell(redirect, "--json", "runs", "create", CUSTOMERS, "synthetic://x", emu=emu)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source_path"] == "synthetic://x"
    assert creates(emu) == 1


def test_an_error_with_stderr_closed_still_exits_1(emu: Emulator) -> None:
    done = shell("2>&-", "runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", emu=emu)
    assert done.returncode == 1


def test_a_closed_stdout_is_one_error_line_before_anything_is_sent(emu: Emulator) -> None:
    done = shell(">&-", "runs", "create", CUSTOMERS, "synthetic://x", emu=emu)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: standard output is closed")
    assert creates(emu) == 0


@pytest.mark.parametrize(
    "args",
    [("runs", "list"), ("--json", "runs", "list"), ("flows", "list")],
    ids=["table", "json", "flows"],
)
def test_a_full_disk_is_one_error_line_and_exit_1(emu: Emulator, args: tuple[str, ...]) -> None:
    labelled_run(emu)
    done = shell("> /dev/full", *args, emu=emu)
    assert done.returncode == 1, done.stderr
    text = done.stderr.decode()
    assert "Exception ignored" not in text
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert "No space left on device" in text


@pytest.mark.parametrize("encoding", ["latin-1", "ascii", "cp1252"])
def test_json_stays_valid_json_in_a_narrow_encoding(emu: Emulator, encoding: str) -> None:
    run_id = labelled_run(emu)
    env = {"PYTHONIOENCODING": encoding}
    for args in (
        ("--json", "runs", "get", run_id),
        ("--json", "runs", "list"),
    ):
        done = shell("", *args, emu=emu, env=env)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout.decode("ascii"))
        run = found if isinstance(found, dict) else found[0]
        assert run["label"] == LABEL


def test_json_lines_stay_valid_json_in_a_narrow_encoding(emu: Emulator) -> None:
    path = "synthetic://\u00fc\U0001d11e?rows=3"
    run = ok_json("runs", "create", CUSTOMERS, path, "--wait", "--poll-interval", "0.05", emu=emu)
    env = {"PYTHONIOENCODING": "latin-1"}
    done = shell("", "--json", "runs", "logs", run["id"], "--follow", emu=emu, env=env)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stdout.decode("ascii").splitlines()]
    assert path in json.dumps(entries, ensure_ascii=False)
