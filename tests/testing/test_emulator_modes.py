from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from lume_async.testing import Emulator, FaultProfile
from lume_pytest import lume_emulator  # noqa: F401  (the plugin's fixture)

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, key: str) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, headers={"lume-api-key": key})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.anyio
async def test_async_with_serves_on_the_callers_loop() -> None:
    async with Emulator() as emu:
        assert emu.url == f"http://127.0.0.1:{emu.port}"
        assert emu.api_key.startswith("lume_test_")
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{emu.url}/v1/flows", headers={"lume-api-key": emu.api_key}) as resp,
        ):
            assert resp.status == 200


def test_with_runs_in_a_background_thread_and_stops_cleanly() -> None:
    before = threading.active_count()
    with Emulator(api_key="fixed-key") as emu:
        assert _get(f"{emu.url}/v1/flows", "fixed-key")[0] == 200
        other = emu.add_tenant()
        assert _get(f"{emu.url}/v1/runs", other)[1] == {"items": [], "next_cursor": None}
        emu.set_faults(FaultProfile(rate=0.0))
        emu.advance(1.0)
        assert emu.stats()["requests"]["GET /v1/flows"] == {"200": 1}
        emu.reset()
    assert threading.active_count() == before


def test_the_fixture_gives_a_running_emulator(lume_emulator: Emulator) -> None:  # noqa: F811
    assert _get(f"{lume_emulator.url}/v1/flows", lume_emulator.api_key)[0] == 200


@pytest.mark.lume_emulator(time_scale=50.0, api_key="marked")
def test_the_fixture_takes_options_from_a_marker(lume_emulator: Emulator) -> None:  # noqa: F811
    assert lume_emulator.api_key == "marked"


def test_cli_prints_a_ready_line_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lume_async.testing", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = None
        for line in proc.stdout:
            if line.startswith("LUME_EMULATOR "):
                ready = json.loads(line.removeprefix("LUME_EMULATOR "))
                break
        assert ready is not None
        assert ready["api_key"] == "cli-key"
        assert _get(f"{ready['url']}/v1/flows", "cli-key")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        (("10.0.0.5", 1234), False),
        (("::ffff:10.0.0.5", 1234, 0, 0), False),
        (("fe80::1%eth0", 1234, 0, 2), False),
        (("127.0.0.1", 1234), True),
        (("127.1.2.3", 1234), True),  # all of 127.0.0.0/8 is this machine
        (("::1", 1234, 0, 0), True),
        (("::ffff:127.0.0.9", 1234, 0, 0), True),
        ("", False),  # a Unix socket: no address to judge by
        (None, False),
    ],
)
def test_control_plane_takes_loopback_peers_only(peer: object, loopback: bool) -> None:
    from lume_async.testing._http import _is_loopback

    class FakeTransport:
        def get_extra_info(self, name: str) -> object:
            return peer

    class FakeRequest:
        transport = FakeTransport()

    assert _is_loopback(FakeRequest()) is loopback  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_control_plane_answers_a_peer_on_another_loopback_address() -> None:
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        ) as session,
        session.get(f"{emu.url}/_emulator/stats") as resp,
    ):
        assert resp.status == 200, await resp.text()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/runs?label=" + b"x" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/runs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 70_000 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["long-url", "long-header", "garbage"],
)
async def test_unparseable_requests_get_the_json_error_with_a_request_id(
    request_bytes: bytes,
) -> None:
    async with Emulator() as emu:
        reader, writer = await asyncio.open_connection(emu.host, emu.port)
        try:
            writer.write(request_bytes)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert lines[0].split()[1] == "400"
    assert headers["content-type"].startswith("application/json")
    assert headers["x-request-id"]
    error = json.loads(body)
    assert error["code"] == "bad_request"
    assert {"detail", "error_id"} <= set(error)
