"""Python scripts run as ``python -W error script.py`` would, forked from a process holding the SDK.

A fresh interpreter spends about half a second importing the SDK before a script's first line;
the docs and README examples are dozens of such scripts. The zygote imports the SDK once, in a
process of its own with no other threads, and forks a child per script: the child gets the
script's working directory, environment, ``sys.argv`` and ``sys.path[0]``, runs the script as
``__main__`` and exits through the interpreter's usual shutdown (atexit handlers, thread joins,
the last garbage collection under ``-W error``), with the usual exit status.

Run as ``python -W error tests/_zygote.py``: one JSON request a line on stdin, answered with the
child's pid on one line, then its exit status on the next.
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

PRELOAD = ("lume_async", "lume_async.testing", "lume_sync")


class Finished:
    """What a script left: its exit status and its output."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class Zygote:
    """The forking process, seen from the test process (one per pytest worker)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-W", "error", __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._read = b""

    def run(self, script: Path, *, timeout: float) -> Finished:
        """Run ``script`` in its own directory, as ``python -W error script.py`` there would."""
        out, err = script.with_suffix(".stdout"), script.with_suffix(".stderr")
        request = {"script": str(script), "env": dict(os.environ), "out": str(out), "err": str(err)}
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
                str(script), timeout, out.read_text(), err.read_text()
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


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``python -W error script.py``, then exit as it would."""
    script = Path(request["script"])
    stdin = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(script.parent)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [str(script)]
    sys.path[0] = str(script.parent)
    import runpy

    runpy.run_path(str(script), run_name="__main__")
    # An exception or SystemExit raised above leaves the same way: through the interpreter.


def serve() -> None:
    """Import the SDK, then fork a child per request and report its pid and exit status."""
    for name in PRELOAD:
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
    serve()
