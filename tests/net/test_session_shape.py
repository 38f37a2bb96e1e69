"""How the client uses its HTTP session: no cookies kept, a known-length answer read in one call."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume

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


async def test_the_session_keeps_no_cookie_jar(scripted: ScriptedServer) -> None:
    async with AsyncLume(api_key=KEY, base_url=scripted.url) as lume:
        await lume.runs.get(RUN_ID)
        session = lume._core.transport.session
        assert session is not None
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)


@given(size=st.integers(min_value=0, max_value=200_000))
@settings(max_examples=8, deadline=None)
async def test_an_answer_of_known_length_is_read_in_one_call(size: int) -> None:
    reads: list[int] = []
    chunked: list[int] = []
    real_read = aiohttp.ClientResponse.read
    real_iter = aiohttp.StreamReader.iter_any

    async def counted_read(self: aiohttp.ClientResponse) -> bytes:
        body = await real_read(self)
        reads.append(len(body))
        return body

    def counted_iter(self: aiohttp.StreamReader) -> Any:
        chunked.append(1)
        return real_iter(self)

    body = run_json() | {"label": "x" * size}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aiohttp.ClientResponse, "read", counted_read)
        patch.setattr(aiohttp.StreamReader, "iter_any", counted_iter)
        async with ScriptedServer() as scripted:
            scripted.default = Answer(200, body)
            async with AsyncLume(api_key=KEY, base_url=scripted.url) as lume:
                run = await lume.runs.get(RUN_ID)
    assert run.label == "x" * size
    assert len(reads) == 1
    assert chunked == []
