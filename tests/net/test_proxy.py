"""Proxies, through a real forward proxy process: ``proxy=``, the environment, NO_PROXY, and
never the API key in clear to a proxy that is not on this machine."""

from __future__ import annotations

import pytest

from lume_async import APIConnectionError, AsyncLume
from lume_async.testing import Emulator

from .conftest import NAME, ProxyProcess, TlsFront

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _lower(headers: dict[str, str]) -> set[str]:
    return {name.lower() for name in headers}


async def test_https_goes_through_an_explicit_proxy_as_a_tunnel(
    proxy: ProxyProcess, tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    async with AsyncLume(
        api_key=emu.api_key,
        base_url=f"https://{NAME}:{tls_front.port}",
        proxy=proxy.url,
        ca_bundle=ca_file,
        default_headers={"X-Team": "data"},
    ) as lume:
        run = await lume.run(FLOW, "s3://bucket/proxied")
        assert (await lume.run_status(run.id)).id == run.id
    assert proxy.targets()[0] == f"CONNECT {NAME}:{tls_front.port}"
    assert all(seen["method"] == "CONNECT" for seen in proxy.seen)
    # The proxy reads the CONNECT request in clear: neither the key nor other headers go in it.
    harmless = {"host", "user-agent", "accept", "accept-encoding"}
    assert all(_lower(seen["headers"]) <= harmless for seen in proxy.seen)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
async def test_the_proxy_in_the_environment_is_used(
    proxy: ProxyProcess,
    tls_front: TlsFront,
    emu: Emulator,
    ca_file: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    base_url = f"https://{NAME}:{tls_front.port}"
    async with AsyncLume(api_key=emu.api_key, base_url=base_url, ca_bundle=ca_file) as lume:
        await lume.run(FLOW, "s3://bucket/env-proxied")
    assert proxy.targets() == [f"CONNECT {NAME}:{tls_front.port}"]


@pytest.mark.parametrize("no_proxy", [NAME, f".{NAME}", "*", f"other.test,{NAME}"])
async def test_no_proxy_sends_the_host_directly(
    proxy: ProxyProcess,
    tls_front: TlsFront,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    base_url = f"https://{NAME}:{tls_front.port}"  # resolvable by the proxy only
    async with AsyncLume(api_key=emu.api_key, base_url=base_url, max_retries=0) as lume:
        with pytest.raises(APIConnectionError):
            await lume.run(FLOW, "s3://bucket/direct")
    assert proxy.seen == []


async def test_trust_env_false_ignores_the_environment(
    proxy: ProxyProcess, tls_front: TlsFront, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    base_url = f"https://{NAME}:{tls_front.port}"
    async with AsyncLume(
        api_key=emu.api_key, base_url=base_url, trust_env=False, max_retries=0
    ) as lume:
        with pytest.raises(APIConnectionError):
            await lume.run(FLOW, "s3://bucket/direct")
    assert proxy.seen == []


async def test_a_loopback_base_url_never_goes_through_an_environment_proxy(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, max_retries=0) as lume:
        assert (await lume.run(FLOW, "s3://bucket/local")).flow_version == FLOW


async def test_plain_http_through_a_loopback_proxy_is_sent_in_absolute_form(
    proxy: ProxyProcess, emu: Emulator
) -> None:
    base_url = f"http://{NAME}:{emu.port}"
    async with AsyncLume(
        api_key=emu.api_key, base_url=base_url, proxy=proxy.url, allow_insecure_http=True
    ) as lume:
        await lume.run(FLOW, "s3://bucket/plain")
    assert proxy.targets() == [f"POST http://{NAME}:{emu.port}/v1/runs"]


@pytest.mark.parametrize("far", ["http://proxy.example.com:3128", "http://10.0.0.8:3128"])
async def test_the_key_never_goes_in_clear_to_a_proxy_off_this_machine(
    emu: Emulator, far: str
) -> None:
    """A loopback base URL may be plain http; a proxy elsewhere would read the key in clear.

    (An environment proxy never applies to a loopback base URL, and any other plain-http base
    URL needs ``allow_insecure_http=True`` already.)
    """
    with pytest.raises(ValueError, match=r"plain HTTP through the proxy") as caught:
        AsyncLume(api_key=emu.api_key, base_url=emu.url, proxy=far)
    assert "allow_insecure_http=True" in str(caught.value)


async def test_the_opt_in_lets_plain_http_through_a_far_proxy(emu: Emulator) -> None:
    lume = AsyncLume(
        api_key=emu.api_key,
        base_url=emu.url,
        proxy="http://proxy.example.com:3128",
        allow_insecure_http=True,
    )
    await lume.aclose()


async def test_proxy_credentials_in_the_url_are_sent_and_never_shown(
    auth_proxy: ProxyProcess, tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    url = auth_proxy.url.replace("http://", "http://proxy-user:proxy-secret@")
    async with AsyncLume(
        api_key=emu.api_key,
        base_url=f"https://{NAME}:{tls_front.port}",
        proxy=url,
        ca_bundle=ca_file,
    ) as lume:
        await lume.run(FLOW, "s3://bucket/authenticated")
        assert "proxy-secret" not in repr(lume._core.config)
    assert "proxy-authorization" in _lower(auth_proxy.seen[0]["headers"])


async def test_a_proxy_that_refuses_the_credentials_is_one_clear_error(
    auth_proxy: ProxyProcess, tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    url = auth_proxy.url.replace("http://", "http://proxy-user:wrong-secret@")
    async with AsyncLume(
        api_key=emu.api_key,
        base_url=f"https://{NAME}:{tls_front.port}",
        proxy=url,
        ca_bundle=ca_file,
        max_retries=0,
    ) as lume:
        with pytest.raises(APIConnectionError) as caught:
            await lume.run(FLOW, "s3://bucket/refused")
    assert "407" in str(caught.value)
    assert "wrong-secret" not in _everything_said_about(caught.value)
    assert emu.stats()["runs_created"] == 0


def _everything_said_about(error: BaseException) -> str:
    """Its text, repr and notes, and those of every exception chained to it."""
    said = []
    seen: BaseException | None = error
    while seen is not None:
        said += [str(seen), repr(seen), *getattr(seen, "__notes__", [])]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(said)


@pytest.mark.parametrize(
    ("proxy_url", "error"),
    [
        ("socks5://127.0.0.1:1080", "SOCKS"),
        ("ftp://127.0.0.1:21", "http(s)://host:port"),
        ("http://", "http(s)://host:port"),
        ("http://127.0.0.1:99999", "http(s)://host:port"),
        ("http://user:hunter2@127.0.0.1:bad", "***"),
    ],
)
async def test_a_bad_proxy_url_is_refused_before_any_request(
    emu: Emulator, proxy_url: str, error: str
) -> None:
    with pytest.raises(ValueError, match="proxy") as caught:
        AsyncLume(api_key=emu.api_key, base_url=emu.url, proxy=proxy_url)
    assert error in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_a_proxy_that_is_not_a_str_is_a_type_error(emu: Emulator) -> None:
    with pytest.raises(TypeError, match="proxy must be a proxy URL str"):
        AsyncLume(api_key=emu.api_key, base_url=emu.url, proxy=3128)  # type: ignore[arg-type]
