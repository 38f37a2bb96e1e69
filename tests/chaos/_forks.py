"""Processes for the chaos tests, forked from a server that has imported the SDK once.

The chaos tests run the emulator as a service of its own, and scripts (a fan-out, the README's
batch job) that they SIGKILL and run again. A fresh interpreter spends about 0.4 s of CPU
importing the SDK before doing anything; this server imports it once and forks a child per
process asked for. A child is what ``python script.py ARGS`` (or ``python -m module ARGS``) would
be, in its own process: its environment, working directory, ``sys.argv`` and ``sys.path[0]``, its
output in files, the usual interpreter shutdown and exit status. Several children run at once
(the emulator and the clients of it); the test side kills them by pid and learns how they ended
from the server, which reaps them.

Run as ``python tests/chaos/_forks.py``: one JSON request a line on stdin, answered with
``started PID``; ``exited PID STATUS`` follows when that child ends (STATUS as
``Popen.returncode``: negative for a signal).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from queue import Queue
from typing import Any

__all__ = ["Forked", "ForkServer"]

PRELOAD = ("lume_async", "lume_async.testing", "aiohttp", "anyio")


class ForkServer:
    """The forking process, seen from a test process (one per pytest worker)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._ask = threading.Lock()  # one request at a time: its "started" line is the next one
        self._started: Queue[int] = Queue()
        self._ended = threading.Condition()
        self._statuses: dict[int, int] = {}
        self._listener = threading.Thread(target=self._listen, daemon=True)
        self._listener.start()

    def start(
        self,
        argv: Sequence[str],
        *,
        out: Path,
        err: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Forked:
        """Start ``python *argv`` (``["-m", module, ...]`` or ``[script, ...]``)."""
        for path in (out, err):
            path.write_bytes(b"")  # there to be read from the start
        request = {
            "argv": list(argv),
            "out": str(out),
            "err": str(err),
            "env": dict(os.environ if env is None else env),
            "cwd": str(cwd or Path.cwd()),
        }
        assert self._process.stdin is not None
        with self._ask:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            pid = self._started.get(timeout=30)
        return Forked(self, pid, out, err)

    def run(
        self,
        argv: Sequence[str],
        *,
        out: Path,
        err: Path,
        env: Mapping[str, str] | None = None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        """Like ``subprocess.run(capture_output=True, text=True)``, its output kept in files."""
        child = self.start(argv, out=out, err=err, env=env)
        try:
            status = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(30)
            raise
        return subprocess.CompletedProcess(list(argv), status, child.output(), child.errors())

    def status(self, pid: int, timeout: float | None) -> int | None:
        """How child ``pid`` ended, waiting up to ``timeout`` s (None: still running)."""
        with self._ended:
            self._ended.wait_for(lambda: pid in self._statuses, timeout)
            return self._statuses.get(pid)

    def _listen(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            word, pid, *rest = line.split()
            if word == b"started":
                with self._ended:
                    self._statuses.pop(int(pid), None)  # a pid used before, by an ended child
                self._started.put(int(pid))
            else:
                with self._ended:
                    self._statuses[int(pid)] = int(rest[0])
                    self._ended.notify_all()

    def close(self) -> None:
        """Stop the server; it kills the children still running and reaps them first."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._listener.join(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


class Forked:
    """A child of the fork server: ``pid``, ``poll()``, ``wait()``, ``kill()``, its output."""

    def __init__(self, server: ForkServer, pid: int, out: Path, err: Path) -> None:
        self.pid, self._server, self._out, self._err = pid, server, out, err
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.status(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            self.returncode = self._server.status(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet, so the pid is still this child's
            # Ended and reaped by the server, whose "exited" line is still on its way (a second
            # kill() right after the first one lands here): nothing to do, as Popen.send_signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def output(self) -> str:
        return self._out.read_text(errors="replace")

    def errors(self) -> str:
        return self._err.read_text(errors="replace")

    def lines(self) -> list[str]:
        """The whole lines written to its output so far."""
        text = self.output()
        return text[: text.rfind("\n") + 1].splitlines(keepends=True)

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The first line of its output starting with ``prefix``, once written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.startswith(prefix):
                    return line
            if self.poll() is not None:
                break
            time.sleep(0.005)
        raise RuntimeError(f"no {prefix!r} line from process {self.pid}: {self.errors()[-500:]}")


# --- the server ----------------------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``python *argv``, then exit as it would."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv: list[str] = request["argv"]
    import runpy

    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        sys.path[0] = request["cwd"]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = str(Path(argv[0]).resolve().parent)
        runpy.run_path(argv[0], run_name="__main__")
    # An exception or SystemExit raised above leaves the same way: through the interpreter.


def _reap(children: set[int]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        children.discard(pid)
        os.write(1, f"exited {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def serve() -> None:
    """Import the SDK, then fork a child per request; report each one's pid, then its end."""
    for name in PRELOAD:
        importlib.import_module(name)
    # What is loaded now stays out of the collector's sight, so that a child's collections do
    # not write to (and so copy) every page of it.
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below, through wake_w
    children: set[int] = set()
    pending = b""
    while True:
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(children)
        if 0 not in ready:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                _child(json.loads(line))
                sys.exit(0)
            children.add(pid)
            os.write(1, f"started {pid}\n".encode())
    for pid in children:  # the tests are over: nothing of theirs outlives them
        os.kill(pid, signal.SIGKILL)
    while children:
        pid, _ = os.waitpid(-1, 0)
        children.discard(pid)


if __name__ == "__main__":
    serve()
