"""How the client uses its connections: no cookies kept, one write per request, kept alive."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, _http1
from lume_async._connections import Connections

from ..core._scripted import RUN_ID, Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

KEY = "lume_test_key_0123456789"


_COOKIE_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
_COOKIE_VALUES = st.from_regex(r"[A-Za-z0-9_.-]{1,24}", fullmatch=True)


@given(name=_COOKIE_NAMES, value=_COOKIE_VALUES, attributes=st.sampled_from(["", "; Path=/"]))
@settings(max_examples=10, deadline=None)
async def test_a_cookie_the_server_sets_is_never_sent_back(
    name: str, value: str, attributes: str
) -> None:
    async with ScriptedServer() as scripted:
        scripted.then(Answer(200, run_json(), {"Set-Cookie": f"{name}={value}{attributes}"}))
        # By name: a cookie jar ignores cookies from a bare IP address.
        url = scripted.url.replace("127.0.0.1", "localhost")
        async with AsyncLume(api_key=KEY, base_url=url) as lume:
            run = await lume.runs.get(RUN_ID)
            await run.refresh()
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 3
    assert all("Cookie" not in seen.headers for seen in scripted.seen)


async def test_a_proxied_clients_session_keeps_no_cookie_jar() -> None:
    # Through a proxy, requests go through aiohttp: its session must keep no cookies either.
    async with AsyncLume(api_key=KEY, proxy="http://127.0.0.1:9") as lume:
        session = await lume._core.transport._pool.session()
        assert isinstance(session, aiohttp.ClientSession)
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)


async def test_a_direct_client_uses_its_own_connections(scripted: ScriptedServer) -> None:
    async with AsyncLume(api_key=KEY, base_url=scripted.url) as lume:
        await lume.runs.get(RUN_ID)
        assert isinstance(lume._core.transport.session, Connections)


@given(size=st.integers(min_value=0, max_value=200_000), body=st.booleans())
@settings(max_examples=8, deadline=None)
async def test_each_request_is_one_write_on_one_kept_alive_connection(
    size: int, body: bool
) -> None:
    writes: list[int] = []
    made: list[int] = []
    real_send = _http1.Connection.send
    real_made = _http1.Connection.connection_made

    def counted_send(self: Any, request: Any, *args: Any) -> None:
        writes.append(len(request.data))
        real_send(self, request, *args)

    def counted_made(self: Any, transport: Any) -> None:
        made.append(1)
        real_made(self, transport)

    answer = run_json() | {"label": "x" * size}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_http1.Connection, "send", counted_send)
        patch.setattr(_http1.Connection, "connection_made", counted_made)
        async with ScriptedServer() as scripted:
            scripted.default = Answer(200, answer)
            async with AsyncLume(api_key=KEY, base_url=scripted.url) as lume:
                for _ in range(3):
                    if body:
                        await lume.runs.update(RUN_ID, label="y" * min(size, 256))
                    else:
                        run = await lume.runs.get(RUN_ID)
                        assert run.label == "x" * size
    assert len(writes) == 3  # head and body together, one write per request
    assert made == [1]  # one connection, kept alive across the three
    assert all(len(seen.body) == (len(scripted.seen[0].body)) for seen in scripted.seen)


async def test_answers_are_read_into_the_pools_one_buffer(scripted: ScriptedServer) -> None:
    buffers: list[int] = []
    real = _http1.Connection.get_buffer

    def counted(self: Any, sizehint: int) -> memoryview:
        buffer = real(self, sizehint)
        buffers.append(id(buffer.obj))
        return buffer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_http1.Connection, "get_buffer", counted)
        async with AsyncLume(api_key=KEY, base_url=scripted.url, max_connections=4) as lume:
            await asyncio.gather(*(lume.runs.get(RUN_ID) for _ in range(8)))
    assert len(buffers) >= 8  # every read went through it
    assert len(set(buffers)) == 1  # one buffer for every connection and read
