"""Shared helpers for the benchmark scripts: local servers, statistics, results and tables.

``Nginx`` serves a canned run from a temporary directory on a free loopback port, so a client
can be measured against a server that costs almost nothing; ``EmulatorProcess`` runs the SDK's
own emulator in a subprocess. Both stop their process on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

__all__ = [
    "NGINX",
    "REPO_ROOT",
    "RESULTS_DIR",
    "EmulatorProcess",
    "Nginx",
    "ServerUnavailable",
    "ensure_sdk_importable",
    "free_port",
    "loop_factory",
    "loop_kinds",
    "machine",
    "machine_line",
    "median",
    "percentile",
    "print_table",
    "sample_run",
    "use_sync_loop",
    "wait_for_port",
    "write_results",
]

NGINX = (
    shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    or "/usr/sbin/nginx"
)
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).parent / "results"


def ensure_sdk_importable() -> None:
    """Let a checkout that is not installed import ``lume_async``, here and in subprocesses."""
    if importlib.util.find_spec("lume_async") is not None:
        return
    sys.path.insert(0, str(REPO_ROOT))
    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)


class ServerUnavailable(RuntimeError):
    """A server the benchmark needs cannot be started here (the message says why)."""


# --- payloads -------------------------------------------------------------------------------------


def sample_run(run_id: str = "run_01HYB6ZX8R4J5K7W9Q2N3M4P5T") -> dict[str, Any]:
    """A finished run with every metadata section filled in, as the service returns it."""
    return {
        "id": run_id,
        "status": "PARTIAL_FAILED",
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://acme-ingest/customers/2024-05-01/batch_0042.csv",
        "label": "nightly customers",
        "tags": ["nightly", "customers", "eu-west-1"],
        "run_metadata": {"triggered_by": "airflow", "dag": "customers_nightly", "attempt": 1},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:05:12.345678Z",
        "metadata": {
            "run": {
                "run_id": run_id,
                "flow_version": "customer_cleaner:v1",
                "source_path": "s3://acme-ingest/customers/2024-05-01/batch_0042.csv",
                "started_at": "2024-05-01T10:00:01.5Z",
                "finished_at": "2024-05-01T10:05:12Z",
            },
            "pipeline": {
                "created_at": "2024-05-01T10:00:00Z",
                "completed_at": "2024-05-01T10:05:12Z",
                "duration_seconds": 311.2,
                "stages": {
                    "sync_source_seconds": 20.4,
                    "transform_seconds": 250.0,
                    "sync_target_seconds": 40.8,
                },
            },
            "results": {
                "input_rows": 10000,
                "mapped_rows": 9875,
                "rejected_rows": 125,
                "target_locations": {
                    "mapped": "s3://acme-out/customers/mapped/2024-05-01/batch_0042/",
                    "rejects": "s3://acme-out/customers/rejects/2024-05-01/batch_0042/",
                },
            },
            "validation": {
                "tests_executed": 48,
                "tests_failed": 3,
                "error_rate": 0.0125,
                "top_errors": [
                    {"error_code": "invalid_email", "field": "email", "count": 80},
                    {"error_code": "missing_required", "field": "customer_id", "count": 30},
                    {"error_code": "invalid_date", "field": "signup_date", "count": 15},
                ],
            },
            "errors": [
                {
                    "stage": "transform",
                    "error_code": "row_rejected",
                    "message": "125 rows rejected by validation (see rejects)",
                }
            ],
        },
        "error": None,
    }


# --- ports and processes --------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float, proc: subprocess.Popen[Any]) -> None:
    """Block until ``host:port`` accepts connections; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"the server exited with code {proc.returncode} at start")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise ServerUnavailable(f"nothing listens on {host}:{port} after {timeout:g} s")


def _stop(proc: subprocess.Popen[Any], sig: int, *, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location ~ ^/v1/runs/ {{
            types {{ }}
            default_type application/json;
            add_header x-request-id $request_id always;
            try_files /run.json =404;
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx, one worker, serving ``body`` as JSON at ``/v1/runs/<anything>``.

    Everything nginx writes (config, pid, logs, temp files) lives in a temporary directory that
    is removed on exit. Use as a context manager; ``url`` is the base URL to give a client.
    """

    def __init__(self, body: bytes, *, binary: str = NGINX) -> None:
        self._body = body
        self._binary = binary
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def version(self) -> str:
        out = subprocess.run([self._binary, "-v"], capture_output=True, text=True, check=False)
        return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")

    def __enter__(self) -> Self:
        if not os.access(self._binary, os.X_OK):
            raise ServerUnavailable(
                f"nginx is not installed at {self._binary} (apt-get install nginx-light)"
            )
        tmp = Path(tempfile.mkdtemp(prefix="lume-bench-nginx-"))
        self._tmp = tmp
        try:
            # The worker may run as an unprivileged user: let it read the canned answer.
            tmp.chmod(0o755)
            (tmp / "www").mkdir(mode=0o755)
            (tmp / "www" / "run.json").write_bytes(self._body)
            (tmp / "www" / "run.json").chmod(0o644)
            self.port = free_port()
            conf = tmp / "nginx.conf"
            conf.write_text(_NGINX_CONF.format(tmp=tmp, port=self.port))
            self._proc = subprocess.Popen(
                [self._binary, "-p", str(tmp), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_for_port("127.0.0.1", self.port, timeout=10, proc=self._proc)
            except ServerUnavailable as exc:
                raise ServerUnavailable(f"nginx did not start: {exc}; {self._log()}") from None
        except BaseException:
            self._cleanup()
            raise
        return self

    def _log(self) -> str:
        if self._tmp is None:
            return ""
        log = self._tmp / "error.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if self._proc is not None and self._proc.poll() is not None and self._proc.stderr:
            text += self._proc.stderr.read().decode(errors="replace")
        return text.strip()[-500:]

    def _cleanup(self) -> None:
        if self._proc is not None:
            _stop(self._proc, signal.SIGQUIT)  # graceful: the master stops its worker
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()


_READY_PREFIX = "LUME_EMULATOR "
_URL_RE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
_KEY_RE = re.compile(r"API key:\s*(\S+)")


class EmulatorProcess:
    """``python -m lume_async.testing --port 0`` in a subprocess, found by the line it prints.

    The emulator announces itself with ``LUME_EMULATOR {"url": ..., "api_key": ...}``; the
    human-readable ``... listening on URL`` / ``API key: KEY`` lines are a fallback. ``api_key``
    is passed on the command line, and replaced by the key the emulator reports.
    """

    def __init__(self, *, api_key: str, startup_timeout: float = 30.0) -> None:
        self.api_key = api_key
        self.url = ""
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []

    @staticmethod
    def available() -> str | None:
        """None if the emulator can be started, else the reason why not."""
        try:
            import lume_async.testing as testing
        except ImportError as exc:
            return f"lume_async.testing cannot be imported ({exc})"
        folder = Path(testing.__file__).parent
        if not (folder / "__main__.py").exists():
            return "lume_async/testing/__main__.py does not exist yet (no emulator command line)"
        return None

    def __enter__(self) -> Self:
        reason = self.available()
        if reason is not None:
            raise ServerUnavailable(reason)
        cmd = [sys.executable, "-m", "lume_async.testing", "--port", "0"]
        cmd += ["--api-key", self.api_key]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self._await_url()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _await_url(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        found = threading.Event()
        stdout = self._proc.stdout

        def read() -> None:
            # Keeps draining stdout for the emulator's whole life, so it never blocks on a pipe.
            for line in stdout:
                self._lines.append(line.rstrip())
                if line.startswith(_READY_PREFIX):
                    with contextlib.suppress(ValueError):
                        ready = json.loads(line[len(_READY_PREFIX) :])
                        self.url = str(ready["url"]).rstrip("/")
                        self.api_key = str(ready.get("api_key") or self.api_key)
                        found.set()
                elif (m := _URL_RE.search(line)) is not None and not self.url:
                    self.url = m.group(0).rstrip("/")
                elif (k := _KEY_RE.search(line)) is not None:
                    self.api_key = k.group(1)
            found.set()

        threading.Thread(target=read, daemon=True, name="emulator-stdout").start()
        found.wait(self._timeout)
        if not self.url:
            tail = "\n".join(self._lines[-10:])
            raise ServerUnavailable(
                f"the emulator printed no URL within {self._timeout:g} s:\n{tail}"
            )
        host_port = self.url.split("://", 1)[1]
        host, _, port = host_port.rpartition(":")
        wait_for_port(host.strip("[]") or "127.0.0.1", int(port), timeout=10, proc=self._proc)

    def _cleanup(self) -> None:
        if self._proc is not None:
            _stop(self._proc, signal.SIGINT)
            self._proc = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()


# --- event loops ----------------------------------------------------------------------------------


def loop_kinds() -> list[str]:
    """``["asyncio", "uvloop"]`` with ``lume-sdk[speed]`` installed, else ``["asyncio"]``."""
    if importlib.util.find_spec("uvloop") is None:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """``new_event_loop`` of asyncio or of uvloop, for ``asyncio.Runner(loop_factory=...)``."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return asyncio.new_event_loop


def use_sync_loop(kind: str) -> None:
    """Start lume_sync's private loop afresh on the next call, as an asyncio or uvloop loop.

    lume_sync picks uvloop whenever it is installed; the benchmarks switch it to compare both.
    """
    from lume_sync import _loop, _loop_thread

    _loop.shutdown()
    _loop_thread.new_event_loop = loop_factory(kind)  # type: ignore[attr-defined]


# --- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What every table states about where it was measured."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    """``machine()`` as one line: ``2 CPUs (AMD EPYC), CPython 3.11.7, Linux-..., load 2.1``."""
    m = info or machine()
    load = ", ".join(f"{v:.1f}" for v in m["load_average"])
    return (
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['python']}, {m['platform']}, load average {load}"
    )


# --- statistics -----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- output ---------------------------------------------------------------------------------------


def write_results(name: str, data: Any, path: Path | None = None) -> Path:
    """Write ``data`` as indented JSON to ``benchmarks/results/<name>.json`` (or ``path``)."""
    target = path or RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    return target


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None
) -> None:
    """A plain aligned text table; numbers are right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))
    ]

    def fmt(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    if title:
        print(f"\n{title}")
    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(fmt(row))
    sys.stdout.flush()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
