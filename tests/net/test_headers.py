"""Extra default headers: sent with every request, never in place of the API key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async import AsyncLume

from ..core._scripted import ScriptedServer

pytestmark = pytest.mark.anyio

KEY = "lume_test_key_0123456789"


async def test_default_headers_go_with_every_request(scripted: ScriptedServer) -> None:
    headers = {"X-Team": "data-eng", "X-Trace-Origin": "nightly"}
    async with AsyncLume(api_key=KEY, base_url=scripted.url, default_headers=headers) as lume:
        run = await lume.run_status("run_01HY0000000000000000000000")
        await lume.run("customer_cleaner:v1", "s3://b/1")
        await run.refresh()
    assert len(scripted.seen) == 3
    for seen in scripted.seen:
        assert seen.headers["X-Team"] == "data-eng"
        assert seen.headers["X-Trace-Origin"] == "nightly"
        assert seen.headers["lume-api-key"] == KEY


async def test_a_default_user_agent_replaces_the_sdks(scripted: ScriptedServer) -> None:
    headers = {"User-Agent": "acme-loader/2.1"}
    async with AsyncLume(api_key=KEY, base_url=scripted.url, default_headers=headers) as lume:
        await lume.run_status("run_01HY0000000000000000000000")
    assert scripted.seen[0].headers["User-Agent"] == "acme-loader/2.1"


_RESERVED = [
    "lume-api-key",
    "Lume-Api-Key",
    "Authorization",
    "AUTHORIZATION",
    "Proxy-Authorization",
    "Idempotency-Key",
    "Content-Type",
    "Host",
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Upgrade",
    "TE",
    "Trailer",
    "Expect",
]


@pytest.mark.parametrize("name", _RESERVED)
def test_a_header_the_client_sets_itself_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="default_headers may not set") as caught:
        AsyncLume(api_key=KEY, default_headers={name: "other-key-value"})
    assert "other-key-value" not in str(caught.value)
    assert KEY not in str(caught.value)


@given(
    name=st.sampled_from(_RESERVED).map(
        lambda n: "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(n))
    )
)
def test_the_key_header_is_refused_in_any_case(name: str) -> None:
    with pytest.raises(ValueError, match="default_headers may not set"):
        AsyncLume(api_key=KEY, default_headers={name: "x"})


@pytest.mark.parametrize(
    ("headers", "error", "says"),
    [
        ({"X-A": "one\r\nInjected: yes"}, ValueError, "one line"),
        ({"X-A": "nul\x00"}, ValueError, "one line"),
        ({"X-A": "c1\x85control"}, ValueError, "one line"),
        ({"X-A": "del\x7f"}, ValueError, "one line"),
        ({"Bad Name": "x"}, ValueError, "header name"),
        ({"X-A": 3}, TypeError, "must be a str"),
        ({3: "x"}, TypeError, "names must be str"),
        ({"X-A": "1", "x-a": "2"}, ValueError, "twice"),
        ([("X-A", "1")], TypeError, "mapping"),
    ],
)
def test_bad_default_headers_are_refused_before_any_request(
    headers: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match="default_headers") as caught:
        AsyncLume(api_key=KEY, default_headers=headers)  # type: ignore[arg-type]
    assert says in str(caught.value)
