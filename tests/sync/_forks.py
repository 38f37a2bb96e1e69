"""Scripts run as ``python -X dev -W error script.py ARG...`` would, forked from a process holding
lume_sync (the private-loop tests' fork server).

A fresh interpreter spends most of a script's 0.3 s CPU importing lume_sync, uvloop and aiohttp.
The server imports them once, in a process of its own with no threads and no event loop, and
forks a child per script. The child gets the script's arguments, environment and working
directory, ``sys.path[0]`` and a ``__main__`` module of its own (kept until the interpreter
shuts down, as a script's is), and leaves through the interpreter's usual exit: thread joins,
atexit handlers, module teardown and the last garbage collection, under ``-X dev -W error``.
Its stdout is a pipe the test reads as the script writes (the Ctrl-C tests wait for a line),
its stderr a file; signals reach it as they would a script started by ``subprocess``.

Run as ``python -X dev -W error tests/sync/_forks.py FD``: FD is a Unix socket; each request is
a JSON message with the child's stdout and stderr attached, answered with its pid, then its exit
status.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

__all__ = ["ForkServer", "Forked"]

PRELOAD = ("asyncio", "aiohttp", "lume_sync", "lume_sync._loop", "tests.sync._support")
#: Imported where installed (uvloop comes with the ``speed`` extra only).
OPTIONAL = ("uvloop",)
ROOT = Path(__file__).resolve().parents[2]


class Forked:
    """One script's process: its pid, its stdout as it comes, and how it ended."""

    def __init__(self, server: ForkServer, pid: int, stdout: int, stderr: Any) -> None:
        self.pid, self._server, self._stdout, self._stderr = pid, server, stdout, stderr
        self._pending = b""
        self.returncode: int | None = None

    def readline(self, timeout: float) -> str:
        """The next line of stdout (``""`` at its end), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._stdout], [], [], left)[0]:
                raise TimeoutError(f"no line from {self.pid} within {timeout} s")
            chunk = os.read(self._stdout, 65536)
            if not chunk:
                line, self._pending = self._pending, b""
                return line.decode()
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode() + "\n"

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def finish(self, timeout: float) -> tuple[str, str]:
        """The rest of stdout and all of stderr, once the process has ended (killed at
        ``timeout``: ``subprocess.TimeoutExpired``)."""
        rest = []
        try:
            while line := self.readline(timeout):
                rest.append(line)
        except TimeoutError:
            self.kill()
            raise subprocess.TimeoutExpired(str(self.pid), timeout) from None
        self.returncode = self._server.status()
        os.close(self._stdout)
        self._stderr.seek(0)
        stderr = self._stderr.read().decode()
        self._stderr.close()
        return "".join(rest), stderr

    def kill(self) -> None:
        """Kill the process if it still runs, and reap it."""
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
            self.returncode = self._server.status()
            os.close(self._stdout)
            self._stderr.close()


class ForkServer:
    """The forking process, seen from the test process (one per pytest worker)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._socket = ours
        self._process = subprocess.Popen(
            [sys.executable, "-X", "dev", "-W", "error", __file__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        theirs.close()
        self._read = b""

    def start(self, script: Path, *args: str, env: dict[str, str]) -> Forked:
        """Start ``script`` with ``args`` as ``python -X dev -W error`` in the project's root
        would, with ``env`` as its whole environment."""
        stdout, stdout_w = os.pipe()
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the Forked closes it)
        request = {"argv": [str(script), *args], "env": env, "cwd": str(ROOT)}
        try:
            try:
                socket.send_fds(
                    self._socket, [json.dumps(request).encode()], [stdout_w, stderr.fileno()]
                )
            finally:
                os.close(stdout_w)
            pid = int(self._line())
        except BaseException:  # the server is gone: nothing will read or close these
            os.close(stdout)
            stderr.close()
            raise
        return Forked(self, pid, stdout, stderr)

    def status(self) -> int:
        return int(self._line())

    def _line(self) -> bytes:
        while b"\n" not in self._read:
            chunk = self._socket.recv(4096)
            if not chunk:
                raise RuntimeError("the fork server died")
            self._read += chunk
        line, _, self._read = self._read.partition(b"\n")
        return line

    def close(self) -> None:
        self._socket.close()
        self._process.wait(timeout=30)


def _child(control: socket.socket, request: dict[str, Any], stdout: int, stderr: int) -> None:
    """In the forked child: become ``python -X dev -W error script.py ARG...``."""
    control.close()
    stdin = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = Path(request["argv"][0])
    sys.argv = list(request["argv"])
    sys.path[0] = str(script.parent)
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main  # torn down at exit with the others, as a script's module is
    code = compile(script.read_bytes(), str(script), "exec")
    try:
        exec(code, main.__dict__)
    except Exception as exc:
        # What the interpreter does with an exception a script leaves: print its traceback
        # (from the script's frames on, not this module's), then exit with status 1.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        sys.exit(1)
    # SystemExit and KeyboardInterrupt leave the same way as a script's: through the interpreter.


def serve(control: socket.socket) -> None:
    """Import what the scripts use, then fork a child per request; report pid and status."""
    for name in PRELOAD:
        __import__(name)
    for name in OPTIONAL:
        with contextlib.suppress(ImportError):
            __import__(name)
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        if not message:
            return
        stdout, stderr = fds
        pid = os.fork()
        if pid == 0:
            _child(control, json.loads(message), stdout, stderr)
            sys.exit(0)
        os.close(stdout)
        os.close(stderr)
        control.sendall(b"%d\n" % pid)
        _, status = os.waitpid(pid, 0)
        control.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    with socket.socket(fileno=int(sys.argv[1])) as control:
        serve(control)
