"""Client input the emulator must answer as documented: raw bytes, odd queries, races."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio


async def _raw_head(emu: Emulator, request: bytes) -> list[bytes]:
    """The header lines of the answer to ``request``, sent as is."""
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    return head.split(b"\r\n")


@pytest.mark.parametrize("given", [b"\xff\xfe\xe9", b"\x80abc"])
async def test_a_request_id_that_is_not_utf8_gets_a_new_one_not_an_empty_one(
    emu: Emulator, given: bytes
) -> None:
    request = (
        b"GET /v1/flows HTTP/1.1\r\nHost: x\r\nlume-api-key: "
        + emu.api_key.encode()
        + b"\r\nx-request-id: "
        + given
        + b"\r\n\r\n"
    )
    lines = await _raw_head(emu, request)
    assert lines[0].startswith(b"HTTP/1.1 200")
    [echoed] = [line for line in lines if line.lower().startswith(b"x-request-id:")]
    assert echoed.split(b":", 1)[1].strip() != b""


async def test_a_request_id_in_utf8_text_is_sent_back_as_given(emu: Emulator) -> None:
    request = (
        b"GET /v1/flows HTTP/1.1\r\nHost: x\r\nlume-api-key: "
        + emu.api_key.encode()
        + "\r\nx-request-id: req é-1\r\n\r\n".encode()
    )
    lines = await _raw_head(emu, request)
    assert "x-request-id: req é-1".encode() in lines


@pytest.mark.parametrize(
    "query",
    ["size=0", "size=101", "page=0", "page=-1", "page=abc", "size=1e3", "size=%ff"],
)
async def test_page_parameters_out_of_range_are_422(api: aiohttp.ClientSession, query: str) -> None:
    status, body = await call(api, "GET", f"/v1/flows?{query}")
    assert status == 422
    assert body["code"] == "validation_error"


async def test_a_page_past_the_end_is_an_empty_envelope(api: aiohttp.ClientSession) -> None:
    status, body = await call(api, "GET", "/v1/flows?size=1&page=50")
    assert status == 200
    assert set(body) == {"items", "total", "page", "size", "pages"}
    assert body["items"] == [] and body["page"] == 50 and body["size"] == 1
    assert body["pages"] == body["total"]


async def test_concurrent_creates_of_one_pair_make_one_run(api: aiohttp.ClientSession) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "s3://adversarial/same"}
    answers = await asyncio.gather(*(call(api, "POST", "/v1/runs", json=body) for _ in range(20)))
    assert sorted(status for status, _ in answers) == [200] * 19 + [201]
    assert len({run["id"] for _, run in answers}) == 1


@pytest.mark.parametrize(("length", "status"), [(255, 201), (256, 422)])
async def test_idempotency_keys_are_at_most_255_characters(
    api: aiohttp.ClientSession, length: int, status: int
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": f"s3://adversarial/key{length}"}
    headers = {"Idempotency-Key": "k" * length}
    got, _ = await call(api, "POST", "/v1/runs", json=body, headers=headers)
    assert got == status


async def test_a_canceled_run_stays_canceled_with_nothing_served(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    body = {"flow_version": CUSTOMERS, "source_path": "synthetic://c?rows=10&duration=5"}
    _, run = await call(api, "POST", "/v1/runs", json=body)
    status, canceled = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert status == 200 and canceled["status"] == "CANCELED"
    assert canceled["updated_at"] >= canceled["created_at"]
    emu.advance(60)  # past the end it was planned to reach
    status, again = await call(api, "POST", f"/v1/runs/{run['id']}/cancel")
    assert (status, again["status"]) == (200, "CANCELED")
    _, results = await call(api, "GET", f"/v1/runs/{run['id']}/results")
    assert results["total"] == 0
    results_meta = again["metadata"]["results"]
    assert results_meta["mapped_rows"] + results_meta["rejected_rows"] == results_meta["input_rows"]


def test_a_stopped_emulator_frees_its_port_and_can_start_again() -> None:
    emu = Emulator()
    with emu:
        port = emu.port
    emu.__exit__(None, None, None)  # a second stop does nothing
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
    with emu:
        assert emu.stats()["runs_created"] == 0
