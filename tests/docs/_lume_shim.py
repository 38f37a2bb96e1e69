"""The ``lume`` of the docs' shell examples, forked from a process that has imported the SDK.

A ``lume`` process spends about 0.3 s of CPU importing aiohttp, click and rich before it reads
its arguments; a page of shell examples runs dozens. ``LumeServer`` starts one process (per
pytest worker) that imports the libraries the command needs and listens on a Unix socket, and
writes a small ``lume`` (the shim: a Python started with ``-IS`` that imports nothing beyond
``socket`` and ``signal``, ~20 ms of CPU) into a directory to put first on ``PATH``. The shim
sends the server its argv, environment, working directory, signals it ignores and its
stdin/stdout/stderr (``SCM_RIGHTS``); the server forks a child that takes them over, runs the
installed ``lume`` console script as ``__main__`` (it imports the CLI's own modules afresh, so
their module-level state, such as rich's consoles, comes from the command's environment) and
exits through the interpreter's usual shutdown. The shim passes on the signals it gets and exits
as the child did: with its exit status, or killed by the same signal.

What a fork shares with its server where fresh processes would differ (the hash seed; stdio's
encoding, which follows the server's locale) makes no difference to the pages' commands;
``tests/cli/test_startup.py`` and the CLI's process-level tests run the real command start-up.

Run as ``python tests/docs/_lume_shim.py SOCKET LUME``: it prints ``ready`` once it listens and
serves until its stdin closes.
"""

from __future__ import annotations

import gc
import io
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

__all__ = ["LumeServer"]

#: The libraries the ``lume`` command imports, loaded once by the server.
PRELOAD = ("aiohttp", "click", "rich.console", "rich.table", "rich.progress", "lume_async")
#: Signals the shim passes on to the command (the ones a terminal or a job control sends).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)

SHIM = """\
#!{python} -IS
import os, signal, socket, sys

fds = []
for fd in (0, 1, 2):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
server.connect({socket!r})
ignored = [s for s in {forwarded!r} if signal.getsignal(s) == signal.SIG_IGN]
head = [os.getcwdb(), b" ".join(b"%d" % fd for fd in fds), b" ".join(b"%d" % s for s in ignored)]
argv = [os.fsencode(arg) for arg in sys.argv]
env = [key + b"=" + value for key, value in os.environb.items()]
message = b"\\0".join([*head, b"%d" % len(argv), *argv, *env])
socket.send_fds(server, [message], fds)


def forward(signum, frame):
    server.send(b"%d" % signum)


for signum in {forwarded!r}:
    if signum not in ignored:
        signal.signal(signum, forward)
reply = server.recv(64).split()
if not reply:
    sys.stderr.write("lume (docs tests): the command's server went away\\n")
    os._exit(70)
kind, number = reply[0], int(reply[1])
if kind == b"signal":
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
os._exit(number)
"""


class LumeServer:
    """The forking server and its shim, seen from the test process (one per pytest worker)."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="lume-shim-"))
        self.bin = self._dir / "bin"
        self.bin.mkdir()
        address = str(self._dir / "socket")
        lume = Path(sys.executable).parent / "lume"
        shim = self.bin / "lume"
        shim.write_text(
            SHIM.format(
                python=sys.executable, socket=address, forwarded=tuple(int(s) for s in FORWARDED)
            )
        )
        shim.chmod(0o755)
        self._process = subprocess.Popen(
            [sys.executable, __file__, address, str(lume)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        ready = self._process.stdout.readline()
        assert ready == b"ready\n", f"the lume server did not start: {ready!r}"

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._process.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# -- the server process ---------------------------------------------------------------------------


class _Command:
    """One ``lume`` invocation: the shim's connection and the child that runs it."""

    def __init__(self, connection: socket.socket, pid: int) -> None:
        self.connection, self.pid = connection, pid
        self.pidfd = os.pidfd_open(pid)
        self.shim_gone = self.ended = False


def _parse(message: bytes) -> tuple[bytes, list[int], list[int], list[bytes], dict[bytes, bytes]]:
    cwd, fds, ignored, count, *rest = message.split(b"\0")
    argv, env = rest[: int(count)], rest[int(count) :]
    environ = dict(item.split(b"=", 1) for item in env)
    return cwd, [int(fd) for fd in fds.split()], [int(s) for s in ignored.split()], argv, environ


def _stdio(fd: int, template: TextIO, *, write: bool) -> io.TextIOWrapper:
    """A standard stream on ``fd`` as Python's start-up makes one (line-buffered on a terminal)."""
    raw = io.FileIO(fd, "wb" if write else "rb", closefd=False)
    buffered: io.BufferedIOBase = io.BufferedWriter(raw) if write else io.BufferedReader(raw)
    line_buffering = write and (fd == 2 or raw.isatty())
    return io.TextIOWrapper(
        buffered,  # type: ignore[arg-type]
        encoding=template.encoding,
        errors=template.errors,
        line_buffering=line_buffering,
    )


def _child(lume: str, message: bytes, received: list[int], open_fds: set[int]) -> None:
    """In the forked child: become ``lume ARGS`` as the shell started it, then run it."""
    cwd, fds, ignored, argv, environ = _parse(message)
    for fd in open_fds:
        os.close(fd)
    for source, target in zip(received, fds, strict=True):
        os.dup2(source, target)
        os.close(source)
    for target in {0, 1, 2} - set(fds):
        os.close(target)
    templates = (sys.__stdin__, sys.__stdout__, sys.__stderr__)
    streams = [  # None where the shell closed it, as in Python's start-up
        _stdio(fd, template, write=fd != 0) if fd in fds and template else None
        for fd, template in enumerate(templates)
    ]
    sys.stdin = sys.__stdin__ = streams[0]
    sys.stdout = sys.__stdout__ = streams[1]
    sys.stderr = sys.__stderr__ = streams[2]
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)
    os.chdir(cwd)
    os.environb.clear()
    os.environb.update(environ)
    sys.argv = [lume, *(os.fsdecode(arg) for arg in argv[1:])]
    sys.orig_argv = [sys.executable, *sys.argv]
    import runpy

    runpy.run_path(lume, run_name="__main__")
    # Its SystemExit (or an exception) leaves the same way: through the interpreter's shutdown.


def serve(address: str, lume: str) -> None:
    """Import what ``lume`` needs, then fork a child per shim that connects."""
    sys.path[0] = str(Path(lume).parent)  # a console script's own directory, not this one's
    for name in PRELOAD:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listener")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    commands: set[_Command] = set()
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data == "stdin":
                for command in commands:
                    os.kill(command.pid, signal.SIGKILL)
                    os.waitpid(command.pid, 0)
                return
            if key.data == "listener":
                connection, _ = listener.accept()
                message, received, flags, _ = socket.recv_fds(connection, 1 << 20, 3)
                assert not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC), "message cut short"
                open_fds = {listener.fileno(), connection.fileno(), selector.fileno()}
                open_fds |= {c.connection.fileno() for c in commands} | {c.pidfd for c in commands}
                sys.stdout.flush()
                sys.stderr.flush()
                gc.freeze()  # a child's collections leave the server's objects (and pages) alone
                pid = os.fork()
                if pid == 0:
                    _child(lume, message, received, open_fds)
                    return
                for fd in received:
                    os.close(fd)
                command = _Command(connection, pid)
                commands.add(command)
                selector.register(command.pidfd, selectors.EVENT_READ, ("exit", command))
                selector.register(connection, selectors.EVENT_READ, ("shim", command))
                continue
            what, command = key.data
            if command.ended:
                continue  # a stale event of this batch
            if what == "shim":  # a signal to pass on, or the shim is gone (killed)
                sent = command.connection.recv(64)
                if sent:
                    os.kill(command.pid, int(sent))
                else:
                    command.shim_gone = True
                    selector.unregister(command.connection)
                    os.kill(command.pid, signal.SIGKILL)
                continue
            command.ended = True  # what == "exit": the child ended
            commands.discard(command)
            selector.unregister(command.pidfd)
            os.close(command.pidfd)
            _, status = os.waitpid(command.pid, 0)
            if os.WIFSIGNALED(status):
                reply = f"signal {os.WTERMSIG(status)}"
            else:
                reply = f"exit {os.waitstatus_to_exitcode(status)}"
            if not command.shim_gone:
                selector.unregister(command.connection)
                command.connection.send(reply.encode())
            command.connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
