"""Example scripts and pytest runs, forked from a process that has imported what they import.

A fresh interpreter spends about half a second importing the SDK before a script's first line;
the docs and README examples are dozens of such scripts. The zygote imports the SDK once, in a
process of its own with no other threads, and forks a child per script: the child gets the
script's working directory, environment, ``sys.argv`` and ``sys.path[0]``, runs the script as
``__main__`` and exits through the interpreter's usual shutdown (atexit handlers, thread joins,
the last garbage collection under ``-W error``), with the usual exit status.

Test modules (the examples that define tests, the pytest plugin's tests) run as ``python -m
pytest ARGS`` would, forked from a second process (started when first needed) that has imported
pytest and the libraries the SDK needs, but neither the SDK nor any module of a pytest plugin's
distribution: pytest imports those itself, rewriting their asserts, and a run that must not load
the SDK still starts without it.

Run as ``python [-W error] tests/_zygote.py scripts|pytest``: one JSON request a line on stdin,
answered with the child's pid on one line, then its exit status on the next.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["Finished", "Zygote"]

PRELOAD = {
    "scripts": ("lume_async", "lume_async.testing", "lume_sync"),
    # Not anyio, hypothesis, schemathesis, xdist, pytest_timeout, platformdirs (plugins' own
    # distributions) nor lume_async (it imports anyio).
    "pytest": (
        "pytest",
        "aiohttp",
        "aiohttp.web",
        "attrs",
        "cattrs",
        "orjson",
        "yarl",
        "multidict",
        "ssl",
        "asyncio",
        "decimal",
        "uuid",
        "http.server",
        "requests",
    ),
}


class Finished:
    """What a script left: its exit status and its output."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class _Server:
    """One forking process, seen from the test process."""

    def __init__(self, kind: str) -> None:
        warnings = ["-W", "error"] if kind == "scripts" else []  # ``python -m pytest``: none
        self._process = subprocess.Popen(
            [sys.executable, *warnings, __file__, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._read = b""

    def run(self, request: dict[str, Any], what: str, *, timeout: float) -> Finished:
        out, err = Path(request["out"]), Path(request["err"])
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        pid = int(self._line(None))
        try:
            returncode = int(self._line(timeout))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._line(None)
            raise subprocess.TimeoutExpired(
                what, timeout, out.read_text(), err.read_text()
            ) from None
        return Finished(returncode, out.read_text(), err.read_text())

    def _line(self, timeout: float | None) -> bytes:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._read:
            if not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the zygote process died")
            self._read += chunk
        line, _, self._read = self._read.partition(b"\n")
        return line

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._process.stdout.close()


class Zygote:
    """The forking processes, seen from the test process (one each per pytest worker)."""

    def __init__(self) -> None:
        self._servers: dict[str, _Server] = {}

    def _server(self, kind: str) -> _Server:
        if kind not in self._servers:
            self._servers[kind] = _Server(kind)
        return self._servers[kind]

    def run(self, script: Path, *, timeout: float) -> Finished:
        """Run ``script`` in its own directory, as ``python -W error script.py`` there would."""
        out, err = script.with_suffix(".stdout"), script.with_suffix(".stderr")
        request = {"script": str(script), "env": dict(os.environ), "out": str(out), "err": str(err)}
        return self._server("scripts").run(request, str(script), timeout=timeout)

    def pytest(
        self, args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float
    ) -> Finished:
        """Run ``python -m pytest ARGS`` in ``cwd`` (output in ``cwd``'s ``pytest.std*``)."""
        out, err = cwd / "pytest.stdout", cwd / "pytest.stderr"
        request = {
            "pytest": args,
            "cwd": str(cwd),
            "env": dict(os.environ if env is None else env),
            "out": str(out),
            "err": str(err),
        }
        return self._server("pytest").run(request, f"pytest {args}", timeout=timeout)

    def close(self) -> None:
        for server in self._servers.values():
            server.close()


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``python -W error script.py`` or ``python -m pytest ARGS``."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    import runpy

    if "pytest" in request:
        os.chdir(request["cwd"])
        sys.argv = ["-m", *request["pytest"]]  # run_module puts the module's path first
        sys.path[0] = request["cwd"]
        runpy.run_module("pytest", run_name="__main__", alter_sys=True)
    else:
        script = Path(request["script"])
        os.chdir(script.parent)
        sys.argv = [str(script)]
        sys.path[0] = str(script.parent)
        runpy.run_path(str(script), run_name="__main__")
    # An exception or SystemExit raised above leaves the same way: through the interpreter.


def serve(kind: str) -> None:
    """Import what the children need, then fork a child per request; report pid and status."""
    for name in PRELOAD[kind]:
        __import__(name)
    while line := sys.stdin.readline():
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # a child's collections leave the zygote's objects (and pages) alone
        pid = os.fork()
        if pid == 0:
            _child(request)
            sys.exit(0)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
