"""The ``lume`` command, run in this process with click's runner (a subprocess only where a real
terminal or a signal is the point), against an emulator."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from lume_async._cli import main
from lume_async.testing import Emulator

CUSTOMERS = "customer_cleaner:v1"
ROWS = [
    {"name": "Ada", "email": "ada@example.com", "age": 36},
    {"name": "Bob", "email": "not-an-address", "age": 41},
    {"name": "Cy", "email": "cy@example.com", "age": 29},
]
# Variables that would change what the command does: each test says what it wants.
_AMBIENT = (
    "LUME_API_KEY",
    "LUME_BASE_URL",
    "LUME_LOG",
    "LUME_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "COLUMNS",
)


@attrs.frozen
class Done:
    """How one ``lume`` invocation ended."""

    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.status == 0, self.stderr
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """The one ``error: ...`` line a failed command prints on stderr."""
        assert self.status != 0, self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        assert "Traceback" not in self.stderr
        return lines[0]

    def json_error(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` a failed command prints on stderr with ``--json``."""
        assert self.status != 0, self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        error = json.loads(lines[0])["error"]
        assert isinstance(error, dict)
        assert error["exit_status"] == self.status
        return error


def _runner() -> CliRunner:
    try:  # click 8.1 mixes stderr into stdout unless told not to; later versions never do
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def environment(emu: Emulator | None, env: Mapping[str, str] | None) -> dict[str, str | None]:
    environ: dict[str, str | None] = dict.fromkeys(_AMBIENT)
    if emu is not None:
        environ.update(LUME_BASE_URL=emu.url, LUME_API_KEY=emu.api_key)
    environ.update(env or {})
    return environ


def lume(
    *args: str,
    emu: Emulator | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> Done:
    """Run ``lume ARGS`` in this process, with the emulator's URL and key in the environment."""
    result = _runner().invoke(
        main,
        list(args),
        input=stdin,
        env=environment(emu, env),
        catch_exceptions=False,
        prog_name="lume",
    )
    return Done(result.exit_code, result.stdout, result.stderr)


def lume_process(
    *args: str,
    emu: Emulator | None = None,
    env: Mapping[str, str] | None = None,
    ignoring: tuple[signal.Signals, ...] = (),
) -> subprocess.Popen[str]:
    """``python -m lume_async ARGS`` as a process of its own (for signals); ``ignoring``: the
    signals it starts with ignored (SIGINT, as a shell starts a job in the background)."""
    environ = {k: v for k, v in os.environ.items() if k not in _AMBIENT}
    environ.update({k: v for k, v in environment(emu, env).items() if v is not None})
    return subprocess.Popen(
        [sys.executable, "-m", "lume_async", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=functools.partial(_ignore, ignoring) if ignoring else None,
    )


def _ignore(signals: tuple[signal.Signals, ...]) -> None:
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)


def ok(*args: str, emu: Emulator, stdin: str | None = None) -> str:
    done = lume(*args, emu=emu, stdin=stdin)
    assert done.status == 0, done.stderr
    return done.stdout


def ok_json(*args: str, emu: Emulator, stdin: str | None = None) -> Any:
    return lume("--json", *args, emu=emu, stdin=stdin).json()


def create(emu: Emulator, path: str = "synthetic://t?rows=250&reject_rate=0.1") -> str:
    run = ok_json("runs", "create", CUSTOMERS, path, emu=emu)
    assert isinstance(run["id"], str)
    return run["id"]


def finished(emu: Emulator, path: str = "synthetic://t?rows=250&reject_rate=0.1") -> str:
    run = ok_json("runs", "create", CUSTOMERS, path, "--wait", "--poll-interval", "0.05", emu=emu)
    return str(run["id"])


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator on a background thread, its runs a hundred times faster than real ones."""
    with Emulator(time_scale=100) as emulator:
        yield emulator
