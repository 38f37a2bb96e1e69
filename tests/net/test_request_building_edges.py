"""What reaches the wire from the caller's values: request lines and settings refused early."""

from __future__ import annotations

import asyncio

import anyio
import orjson
import pytest

from lume_async import AsyncLume

from ..core._scripted import RUN_ID, run_json

pytestmark = pytest.mark.anyio

KEY = "lume_test_key_0123456789"


class _Recorder:
    """A raw HTTP/1.1 server: keeps each request head as sent, answers one run."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _Recorder:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            body = orjson.dumps(run_json())
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        finally:
            writer.close()


class _Twisted(str):
    """A str whose text is a run id but whose formatting says something else."""

    def __str__(self) -> str:
        return "run_x/../../admin"

    def __format__(self, spec: str) -> str:
        return "run_x/../../admin"


async def test_a_str_subclass_run_id_goes_into_the_path_as_its_checked_text() -> None:
    with anyio.fail_after(10):
        async with _Recorder() as server:
            lume = AsyncLume(api_key=KEY, base_url=server.url, max_retries=0)
            async with lume:
                await lume.runs.get(_Twisted(RUN_ID))
    assert server.heads[0].split(b"\r\n")[0] == f"GET /v1/runs/{RUN_ID} HTTP/1.1".encode()


def test_base_url_port_zero_is_refused() -> None:
    # Port 0 names no server: it was dialled as the scheme's default port instead.
    with pytest.raises(ValueError, match=r"base_url must be a URL with a port between 1 and"):
        AsyncLume(api_key=KEY, base_url="https://api.example.com:0")


@pytest.mark.parametrize(
    "path",
    ["/api/../admin", "/api/./v2", "/api/%2e%2e/admin", "/api/%2E.", "/a%zz", "/a%2"],
)
def test_base_url_path_that_would_move_the_routes_is_refused(path: str) -> None:
    # Sent as is on a direct connection, but normalised by the proxy route: a request line
    # that depends on the route taken, outside the prefix given.
    with pytest.raises(ValueError, match=r"base_url must be a path without '\.' or '\.\.'"):
        AsyncLume(api_key=KEY, base_url=f"https://api.example.com{path}")


def test_base_url_path_with_dots_inside_segments_is_kept() -> None:
    lume = AsyncLume(api_key=KEY, base_url="https://api.example.com/v1.2/..x/%2Fa")
    assert lume.base_url == "https://api.example.com/v1.2/..x/%2Fa"


def test_a_default_header_too_long_to_send_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match=r"default_headers\['X-Trace'\] must be at most") as caught:
        AsyncLume(api_key=KEY, default_headers={"X-Trace": "a" * 200_000})
    assert "aaaa" not in str(caught.value)


def test_a_long_default_header_within_the_bound_is_kept() -> None:
    AsyncLume(api_key=KEY, default_headers={"X-Trace": "a" * 4000})


def test_an_api_key_too_long_to_send_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="api_key must be at most 4096 characters") as caught:
        AsyncLume(api_key="k" * 100_000)
    assert "kkkk" not in str(caught.value)
    AsyncLume(api_key="k" * 4096)  # at the bound: kept
