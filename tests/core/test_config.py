"""Client configuration: where settings come from, what is refused, and what is never shown."""

from __future__ import annotations

import logging

import pytest

from lume_async import AsyncLume, AuthenticationError, RetryPolicy, Timeout
from lume_async._transport import USER_AGENT
from lume_async._version import __version__
from lume_async.testing import VirtualClock

from ._scripted import ScriptedServer

KEY = "lume_canary_7f3a9c"


def test_missing_api_key_is_an_authentication_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LUME_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="LUME_API_KEY"):
        AsyncLume(base_url="http://127.0.0.1:1")


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUME_API_KEY", KEY)
    monkeypatch.setenv("LUME_BASE_URL", "http://127.0.0.1:9/")
    lume = AsyncLume()
    assert lume.base_url == "http://127.0.0.1:9"


def test_default_base_url_is_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUME_BASE_URL", raising=False)
    assert AsyncLume(api_key=KEY).base_url == "https://api.lume.ai"


def test_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=KEY, base_url="http://lume.example.com")
    AsyncLume(api_key=KEY, base_url="http://lume.example.com", allow_insecure_http=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080",
        "http://127.0.0.2",
        "http://[::1]:80",
        "http://[::ffff:127.0.0.1]:8080",  # IPv4's loopback, written as IPv6
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    AsyncLume(api_key=KEY, base_url=url)


@pytest.mark.parametrize("url", ["http://[::ffff:10.0.0.1]:8080", "http://[::ffff:8.8.8.8]"])
def test_plain_http_to_a_remote_host_written_as_ipv6_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=KEY, base_url=url)


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "https://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncLume(api_key=KEY, base_url=url)


def test_the_key_never_appears_in_reprs() -> None:
    lume = AsyncLume(api_key=KEY, base_url="http://127.0.0.1:1")
    assert KEY not in repr(lume)
    assert KEY not in repr(lume._core.config)
    assert KEY not in repr(lume.with_options(timeout=5))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": -1}, ValueError),
        ({"timeout": "soon"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_connections": 0}, ValueError),
        ({"max_retries": 2, "retry": RetryPolicy()}, TypeError),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncLume(api_key=KEY, base_url="http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_with_options_changes_only_the_view() -> None:
    lume = AsyncLume(api_key=KEY, base_url="http://127.0.0.1:1", timeout=30)
    quick = lume.with_options(timeout=2, max_retries=0)
    assert quick.timeout.total == 2
    assert quick.retry.max_retries == 0
    assert lume.timeout == Timeout(total=30, connect=10)
    assert lume.retry.max_retries == 3


@pytest.mark.anyio
async def test_requests_carry_the_key_header_and_a_versioned_user_agent(
    scripted: ScriptedServer,
) -> None:
    async with AsyncLume(api_key=KEY, base_url=scripted.url) as lume:
        await lume.runs.get("run_01HY0000000000000000000000")
    headers = scripted.seen[0].headers
    assert headers["lume-api-key"] == KEY
    assert headers["User-Agent"] == USER_AGENT
    assert f"lume-sdk-python/{__version__}" in USER_AGENT


@pytest.mark.anyio
async def test_the_key_is_not_logged_at_debug(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture, clock: VirtualClock
) -> None:
    from ._scripted import Answer

    scripted.then(Answer(503, {"detail": "busy"}), Answer(503, {"detail": "busy"}))
    caplog.set_level(logging.DEBUG)
    async with AsyncLume(api_key=KEY, base_url=scripted.url, clock=clock) as lume:
        await lume.runs.get("run_01HY0000000000000000000000")
    assert "retrying" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.anyio
async def test_a_client_still_works_on_a_second_loop_after_the_first_closed() -> None:
    import asyncio

    import anyio

    async with ScriptedServer() as server:
        lume = AsyncLume(api_key=KEY, base_url=server.url)

        def first_loop() -> None:
            async def use() -> None:
                await lume.runs.get("run_01HY0000000000000000000000")

            asyncio.run(use())

        await anyio.to_thread.run_sync(first_loop)
        run = await lume.runs.get("run_01HY0000000000000000000000")
        assert run.id == "run_01HY0000000000000000000000"
        await lume.aclose()
