"""Where secrets can go and where requests are sent.

Error trackers read the locals of every frame of a traceback: Sentry reprs them, Rollbar sends a
``str`` value as it is, and both drop a local named ``secret`` by its name only. So neither the
API key, nor a webhook signing secret, nor a webhook endpoint's secret is held by a frame local
of a failed call under any other name, whether the request went straight to the service or
through a proxy. A proxy's password is never shown, however its URL is spelled. Plain HTTP is
only allowed to what surely is this machine, and ``NO_PROXY`` entries are honoured as curl
reads them: host names with or without a trailing dot, and address ranges (CIDR).
"""

from __future__ import annotations

import base64

import pytest

from lume_async import APIError, AsyncLume, LumeError, WebhookVerificationError
from lume_async._network import proxy_for
from lume_async.webhooks import WebhookReceiver, sign, verify

from ..cli.conftest import lume
from ._frames import holding
from ._servers import SHAPES, RawServer, head, json_answer, raw

pytestmark = pytest.mark.anyio

CANARY = "lume_canary_3d5f7a9b1c2e4f6a8b0c1d2e3f4a5b6c"
RAW_SECRET = b"route-canary-0123456789ab"  # 25 bytes: the Standard Webhooks key
WHSEC = "whsec_" + base64.b64encode(RAW_SECRET).decode()
PASSWORD = "pw-canary-9f8e7d6c5b4a"
RUN_ID = "run_01HY0000000000000000000000"
EVENT = (
    b'{"id":"evt_1","type":"run.succeeded","created_at":"2024-01-01T00:00:00Z",'
    b'"data":{"run_id":"run_01HY0000000000000000000000","status":"SUCCEEDED"}}'
)


def _holding(exc: BaseException, *needles: str) -> list[str]:
    return holding(exc, *needles, skip={__file__})


# -- webhook signing secrets -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["standard", "lume"])
def test_a_refused_delivery_leaves_no_signing_secret_in_frame_locals(scheme: str) -> None:
    headers = sign(EVENT, "whsec_" + base64.b64encode(b"another-key-0123456789").decode())
    if scheme == "lume":
        headers = {"X-Lume-Signature-256": headers["X-Lume-Signature-256"]}
    with pytest.raises(WebhookVerificationError) as caught:
        verify(EVENT, headers, WHSEC, now=1704067200)
    assert _holding(caught.value, WHSEC, WHSEC[6:], repr(RAW_SECRET)[2:-1]) == []


def test_a_receivers_attributes_do_not_show_its_signing_secret() -> None:
    receiver = WebhookReceiver([WHSEC, "plain-text-secret-0123"])
    shown = repr(vars(receiver))
    assert WHSEC not in shown
    assert repr(RAW_SECRET)[2:-1] not in shown
    assert "plain-text-secret-0123" not in shown


def test_a_delivery_signed_with_the_secret_still_verifies() -> None:
    event = verify(EVENT, sign(EVENT, WHSEC, timestamp=1704067200), WHSEC, now=1704067200)
    assert event.id == "evt_1"


# -- a webhook endpoint's secret, sent to the service ------------------------------------------


async def test_a_failed_endpoint_create_leaves_its_secret_out_of_frame_locals() -> None:
    async with (
        RawServer(raw(b"")) as server,
        AsyncLume(api_key=CANARY, base_url=server.url, max_retries=0) as client,
    ):
        with pytest.raises(LumeError) as caught:
            await client.webhook_endpoints.create("https://hooks.example/in", secret=WHSEC)
    assert server.requests == 1
    assert _holding(caught.value, WHSEC, CANARY) == []


# -- the API key through a proxy ---------------------------------------------------------------


async def _through(proxy: str, base_url: str) -> BaseException:
    async with AsyncLume(
        api_key=CANARY, base_url=base_url, proxy=proxy, max_retries=0, allow_insecure_http=True
    ) as client:
        with pytest.raises(LumeError) as caught:
            await client.runs.get(RUN_ID)
    return caught.value


@pytest.mark.parametrize(
    "answer", ["refused", "401", "too large", "reset"], ids=lambda answer: answer
)
async def test_a_failed_request_through_a_proxy_leaves_the_key_out_of_frame_locals(
    answer: str,
) -> None:
    if answer == "refused":
        failure = await _through("http://127.0.0.1:9", "https://api.lume.example")
    else:
        shape = {
            "401": json_answer({"detail": "no", "code": "unauthorized"}, 401),
            "too large": SHAPES["endless chunked body"],
            "reset": raw(b""),
        }[answer]
        # A plain-HTTP base URL through a loopback proxy: the "proxy" answers as the service.
        async with RawServer(shape) as proxy:
            failure = await _through(proxy.url, "http://127.0.0.1:1")
        assert CANARY.encode() in proxy.heads[0]  # the key went with the request, as it must
    assert _holding(failure, CANARY) == []


async def test_a_redirect_through_a_proxy_is_not_followed() -> None:
    async with RawServer(json_answer({}, 200)) as elsewhere:
        moved = raw(head(307, location=f"{elsewhere.url}/v1/runs/{RUN_ID}", content_length=0))
        async with RawServer(moved) as proxy:
            failure = await _through(proxy.url, "http://127.0.0.1:1")
    assert isinstance(failure, APIError) and failure.status_code == 307
    assert elsewhere.requests == 0 and proxy.requests == 1


# -- a proxy's password ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"proxyuser:{PASSWORD}@proxy.corp:3128",
        f"http//proxyuser:{PASSWORD}@proxy.corp:3128",
        f"socks5//proxyuser:{PASSWORD}@proxy.corp:1080",
    ],
)
def test_a_proxy_url_without_a_scheme_is_refused_without_showing_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="proxy") as caught:
        AsyncLume(api_key=CANARY, base_url="https://api.lume.example", proxy=url)
    said = [str(caught.value), repr(caught.value), *map(str, caught.value.args)]
    assert not any(PASSWORD in text for text in said)


def test_the_cli_refuses_a_proxy_url_without_a_scheme_without_showing_its_password() -> None:
    env = {"LUME_BASE_URL": "https://api.lume.example", "LUME_API_KEY": CANARY}
    done = lume("--proxy", f"proxyuser:{PASSWORD}@proxy.corp:3128", "flows", "list", env=env)
    assert done.status == 2
    assert "proxy" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


# -- plain HTTP only to this machine -----------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "proxy"),
    [
        ("http://api.localhost:8080", None),
        ("http://lume.dev.localhost", None),
        ("http://127.0.0.1:8080", "http://proxy.localhost:3128"),
    ],
    ids=["base url", "nested name", "proxy"],
)
def test_a_name_under_localhost_is_not_trusted_with_the_key_in_clear(
    base_url: str, proxy: str | None
) -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=CANARY, base_url=base_url, proxy=proxy)


@pytest.mark.parametrize(
    "url", ["http://localhost:8080", "http://127.0.0.1", "http://[::1]:1", "http://127.8.9.10"]
)
def test_plain_http_to_loopback_needs_no_opt_in(url: str) -> None:
    assert AsyncLume(api_key=CANARY, base_url=url).base_url == url


# -- NO_PROXY ----------------------------------------------------------------------------------


def _env_proxy(base_url: str, no_proxy: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("all_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    return proxy_for(base_url, proxy=None, trust_env=True, allow_insecure_http=True)


@pytest.mark.parametrize(
    ("base_url", "no_proxy"),
    [
        ("http://10.20.30.40:8080", "10.0.0.0/8"),  # plain HTTP: the proxy would read the key
        ("https://192.168.7.9", "localhost, 192.168.0.0/16"),
        ("https://[2001:db8::5]:8443", "2001:db8::/32"),
        ("https://172.16.0.1", "172.16.0.1/32"),
        ("https://api.corp.example.", "corp.example"),
        ("https://api.corp.example", ".corp.example."),
    ],
)
def test_no_proxy_entries_are_read_as_curl_reads_them(
    base_url: str, no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _env_proxy(base_url, no_proxy, monkeypatch) is None


@pytest.mark.parametrize(
    ("base_url", "no_proxy"),
    [
        ("https://11.0.0.1", "10.0.0.0/8"),
        ("https://10.example.com", "10.0.0.0/8"),
        ("https://[2001:db9::5]", "2001:db8::/32"),
        ("https://192.168.1.1", "192.168.1.0/33"),
        ("https://notcorp.example", "corp.example"),
        ("https://corp.example.org", "corp.example"),
    ],
)
def test_no_proxy_entries_that_do_not_match_leave_the_proxy_in_use(
    base_url: str, no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _env_proxy(base_url, no_proxy, monkeypatch) == "http://proxy.corp:3128"
