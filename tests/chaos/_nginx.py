"""Debian's nginx as a real rate limiter: ``limit_req`` in front of an upstream (the emulator).

Requests over the rate (plus a burst) get nginx's own 429 page with ``Retry-After``, as a
production gateway would send them; the rest are proxied on keep-alive connections. Everything
nginx writes lives in a temporary directory removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

__all__ = ["NGINX", "RateLimitedProxy", "nginx_available", "rate_limited_proxy"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    limit_req_zone $binary_remote_addr zone=api:1m rate={rate}r/s;
    limit_req_status 429;
    limit_req_log_level info;
    # Retry-After (and retry-after-ms, if set) only on the limiter's answers (an empty value
    # adds no header).
    map $status $retry_after {{
        429 {retry_after};
        default "";
    }}
    map $status $retry_after_ms {{
        429 "{retry_after_ms}";
        default "";
    }}
    upstream lume {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /v1/ {{
            limit_req zone=api burst={burst} nodelay;
            add_header Retry-After $retry_after always;
            add_header retry-after-ms $retry_after_ms always;
            proxy_pass http://lume;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


#: Starts of nginx on a fresh port before giving up (each try races other processes for it).
_PORT_TRIES = 5


def nginx_available() -> bool:
    return os.access(NGINX, os.X_OK)


@attrs.frozen
class RateLimitedProxy:
    url: str
    rate: int
    burst: int
    error_log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], pid: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with code {proc.returncode} at start")
        if not pid.exists():  # nginx writes it once it has bound its port, not before
            time.sleep(0.02)
            continue
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nginx did not listen on port {port} within {timeout} s")


def _start(
    tmp: Path, upstream_port: int, rate: int, burst: int, retry_after: int, retry_after_ms: str
) -> tuple[subprocess.Popen[bytes], int]:
    """Start nginx on a free port; a port another process takes meanwhile means another try."""
    conf = tmp / "nginx.conf"
    for _ in range(_PORT_TRIES):
        port = _free_port()  # free now; nginx binds it a moment later, so it may be gone
        conf.write_text(
            _CONF.format(
                tmp=tmp,
                port=port,
                upstream=upstream_port,
                rate=rate,
                burst=burst,
                retry_after=retry_after,
                retry_after_ms=retry_after_ms,
            )
        )
        proc = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(port, proc, tmp / "nginx.pid", timeout=10)
        except RuntimeError as exc:
            _stop(proc)
            log = (tmp / "error.log").read_text(errors="replace") if tmp.exists() else ""
            if "Address already in use" in log:
                continue
            raise RuntimeError(f"{exc}: {log[-500:]}") from None
        return proc, port
    raise RuntimeError(f"nginx found no free port in {_PORT_TRIES} tries")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


@contextlib.contextmanager
def rate_limited_proxy(
    upstream_port: int,
    *,
    rate: int,
    burst: int,
    retry_after: int = 1,
    retry_after_ms: int | None = None,
) -> Iterator[RateLimitedProxy]:
    """Run nginx limiting ``/v1/`` to ``rate`` requests/s (plus ``burst``) per client address.

    Its 429s say ``Retry-After: <retry_after>`` (whole seconds) and, with ``retry_after_ms``, the
    finer ``retry-after-ms`` as well, which clients that know it (this one does) go by.
    """
    tmp = Path(tempfile.mkdtemp(prefix="lume-chaos-nginx-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        tmp.chmod(0o755)  # a worker running as an unprivileged user must reach its temp dirs
        ms = "" if retry_after_ms is None else str(retry_after_ms)
        proc, port = _start(tmp, upstream_port, rate, burst, retry_after, ms)
        yield RateLimitedProxy(f"http://127.0.0.1:{port}", rate, burst, tmp / "error.log")
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
