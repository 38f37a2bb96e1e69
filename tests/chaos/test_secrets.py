"""Secrets and transport security.

A canary API key never shows up in a repr, a DEBUG log, an error message or a traceback; it is
never sent in clear to a host off this machine unless allowed, nor to the target of a redirect;
TLS is verified by default; webhook receivers refuse forged, stale and replayed deliveries; and
one tenant's runs, source paths and idempotency keys are invisible to another.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
import trustme
from aiohttp import web

from lume_async import (
    APIConnectionError,
    APIError,
    AsyncLume,
    DuplicateRunError,
    LumeError,
    RunNotFoundError,
    WebhookEvent,
)
from lume_async.testing import Emulator, FaultProfile, VirtualClock
from lume_async.webhooks import WebhookReceiver, sign

from ._proxy import FaultProxy

pytestmark = pytest.mark.anyio

CANARY = "lume_canary_7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b"
FLOW = "customer_cleaner:v1"


def _everything_said_about(exc: BaseException) -> str:
    """Message, repr, notes and the whole chained traceback of an error, as one text."""
    parts = [str(exc), repr(exc), *getattr(exc, "__notes__", ())]
    parts.extend(traceback.format_exception(exc))
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        parts.extend((str(cause), repr(cause)))
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


# -- the canary ---------------------------------------------------------------------------------


@pytest.fixture
async def canary_emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=CANARY, time_scale=100) as emulator:
        yield emulator


async def test_the_key_is_in_no_repr(canary_emu: Emulator) -> None:
    async with AsyncLume(api_key=CANARY, base_url=canary_emu.url) as lume:
        run = await lume.run(FLOW, "s3://bucket/repr")
        view = lume.with_options(timeout=5, max_retries=1)
        texts = [lume, view, lume._core.config, lume.runs, lume.flows, run, run.data, view.retry]
        assert all(CANARY not in repr(obj) and CANARY not in str(obj) for obj in texts)


async def _failures(emu: Emulator, lume: AsyncLume) -> list[BaseException]:
    """Make the client fail in every way it can, and return the errors."""
    caught: list[BaseException] = []

    async def expect(make: Callable[[], Awaitable[Any]]) -> None:
        try:
            await make()
        except LumeError as exc:
            caught.append(exc)

    run = await lume.run(FLOW, "synthetic://canary?rows=3&duration=1")
    await run.wait(poll_interval=0.02)
    await expect(lambda: lume.run(FLOW, "synthetic://canary?rows=3&duration=1"))  # duplicate
    await expect(lambda: lume.run_status("run_01HY0000000000000000000000"))  # not found
    await expect(lambda: lume.run("nope:v1", "s3://x"))  # unknown flow
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before"))
    await expect(lambda: lume.with_options(max_retries=2).run_status(run.id))  # 5xx, retried
    emu.set_faults(FaultProfile(rate=1.0, kinds=("reset",), phase="before"))
    await expect(lambda: lume.with_options(max_retries=1).run_status(run.id))  # reset
    emu.set_faults(FaultProfile(rate=1.0, kinds=("truncate",), phase="after"))
    await expect(lambda: lume.with_options(max_retries=0).run_status(run.id))  # cut body
    emu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=0.5))
    await expect(lambda: lume.with_options(timeout=0.1, max_retries=0).run_status(run.id))
    emu.set_faults(None)
    slow = await lume.run(FLOW, "synthetic://canary-slow?rows=3&duration=3600")
    await expect(lambda: slow.wait(timeout=0.05, poll_interval=0.01))  # run timeout
    return caught


async def test_the_key_is_in_no_error_message_traceback_or_debug_log(
    canary_emu: Emulator, caplog: pytest.LogCaptureFixture, clock: VirtualClock
) -> None:
    caplog.set_level(logging.DEBUG)
    async with AsyncLume(api_key=CANARY, base_url=canary_emu.url, clock=clock) as lume:
        caught = await _failures(canary_emu, lume)
    async with AsyncLume(
        api_key=CANARY, base_url="http://127.0.0.1:9", max_retries=1, clock=clock
    ) as lume:
        with pytest.raises(APIConnectionError) as refused:
            await lume.run_status("run_01HY0000000000000000000000")
    caught.append(refused.value)
    async with AsyncLume(api_key=CANARY + "-wrong", base_url=canary_emu.url) as lume:
        with pytest.raises(APIError) as unauthorized:
            await lume.run_status("run_01HY0000000000000000000000")
    caught.append(unauthorized.value)
    kinds = {type(exc).__name__ for exc in caught}
    assert kinds >= {"DuplicateRunError", "RunNotFoundError", "NotFoundError", "ServerError"}
    assert kinds >= {"APIConnectionError", "APITimeoutError", "RunTimeoutError"}
    assert kinds >= {"AuthenticationError"}
    for exc in caught:
        assert CANARY not in _everything_said_about(exc), type(exc).__name__
    assert "retrying" in caplog.text  # DEBUG logging was really on and saw the retries
    assert CANARY not in caplog.text


async def test_the_key_is_not_in_a_traceback_that_captures_locals() -> None:
    async with AsyncLume(api_key=CANARY, base_url="http://127.0.0.1:9", max_retries=0) as lume:
        with pytest.raises(APIConnectionError) as caught:
            await lume.run_status("run_01HY0000000000000000000000")
    report = traceback.TracebackException.from_exception(caught.value, capture_locals=True)
    assert CANARY not in "".join(report.format())


# -- plain HTTP and redirects -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://api.lume.ai",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8080",
        "http://localhost.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]:8080",
    ],
)
def test_the_key_is_not_sent_in_clear_off_this_machine(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=CANARY, base_url=url)
    monkeypatch.setenv("LUME_BASE_URL", url)
    with pytest.raises(ValueError, match="plain HTTP") as caught:
        AsyncLume(api_key=CANARY)
    assert CANARY not in str(caught.value)
    assert AsyncLume(api_key=CANARY, base_url=url, allow_insecure_http=True).base_url == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.9.9.9:1", "http://localhost:1", "http://[::1]:1"]
)
def test_plain_http_is_fine_on_loopback(url: str) -> None:
    assert AsyncLume(api_key=CANARY, base_url=url).base_url == url


class _Recorder:
    """A server that answers every request with ``status`` (and ``Location``) and logs it."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.status, self.location = status, location
        self.seen: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        headers = {"Location": self.location} if self.location else {}
        return web.json_response({"detail": "moved"}, status=self.status, headers=headers)

    async def __aenter__(self) -> _Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", ["get", "create"])
async def test_a_redirect_to_another_host_never_receives_the_key(status: int, call: str) -> None:
    async with _Recorder() as elsewhere:
        # "localhost" vs "127.0.0.1": another host name, as a cross-site redirect would be.
        target = elsewhere.url.replace("127.0.0.1", "localhost") + "/v1/runs"
        async with _Recorder(status, target) as origin:
            async with AsyncLume(api_key=CANARY, base_url=origin.url) as lume:
                send: Callable[[], Awaitable[Any]] = (
                    (lambda: lume.run_status("run_01HY0000000000000000000000"))
                    if call == "get"
                    else (lambda: lume.run(FLOW, "s3://bucket/redirected"))
                )
                with pytest.raises(APIError) as caught:
                    await send()
            assert len(origin.seen) == 1
            assert origin.seen[0]["lume-api-key"] == CANARY
    assert elsewhere.seen == []
    assert caught.value.status_code == status
    assert CANARY not in _everything_said_about(caught.value)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def tls_emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=CANARY, time_scale=100) as emulator:
        yield emulator


async def test_tls_with_a_trusted_certificate_works(tls_emu: Emulator, ca: trustme.CA) -> None:
    server = _server_context(ca, "127.0.0.1", "localhost")
    async with (
        FaultProxy(tls_emu.port, ssl=server) as proxy,
        AsyncLume(api_key=CANARY, base_url=proxy.url, ssl_context=_trusting(ca)) as lume,
    ):
        run = await lume.run(FLOW, "s3://bucket/tls")
        assert (await lume.run_status(run.id)).id == run.id
    assert proxy.url.startswith("https://")


@pytest.mark.parametrize("case", ["default trust store", "another CA", "wrong host name"])
async def test_tls_that_does_not_verify_fails_at_once_and_sends_nothing(
    tls_emu: Emulator, ca: trustme.CA, case: str
) -> None:
    names = ("lume.example",) if case == "wrong host name" else ("127.0.0.1",)
    client_ctx = {
        "default trust store": None,
        "another CA": _trusting(trustme.CA()),
        "wrong host name": _trusting(ca),
    }[case]
    # A plain TCP proxy in front of the TLS one counts the connection attempts.
    async with (
        FaultProxy(tls_emu.port, ssl=_server_context(ca, *names)) as tls,
        FaultProxy(tls.port) as counter,
        AsyncLume(
            api_key=CANARY,
            base_url=f"https://127.0.0.1:{counter.port}",
            ssl_context=client_ctx,
            max_retries=3,
        ) as lume,
    ):
        with pytest.raises(APIConnectionError) as caught:
            await lume.run(FLOW, "s3://bucket/tls-refused")
    assert "certificate" in str(caught.value).lower()
    assert counter.stats.connections == 1  # a certificate that failed is not retried
    assert tls_emu.stats()["requests"] == {}  # no request, no key, went through
    assert CANARY not in _everything_said_about(caught.value)


# -- webhooks -----------------------------------------------------------------------------------


async def test_a_receiver_accepts_real_deliveries_and_refuses_forged_stale_and_replayed(
    emu: Emulator,
) -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    receiver = WebhookReceiver(secret)
    events: list[WebhookEvent] = []
    arrived = asyncio.Event()

    def listen(event: WebhookEvent) -> None:
        events.append(event)
        arrived.set()

    receiver.add_listener(listen)
    async with receiver.serve() as hook_url, aiohttp.ClientSession() as http:
        auth = {"lume-api-key": emu.api_key}
        async with http.post(
            f"{emu.url}/v1/webhooks", json={"url": hook_url, "secret": secret}, headers=auth
        ) as resp:
            assert resp.status == 201
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
            run = await lume.run(FLOW, "synthetic://hooked?rows=3&duration=1")
            await run.wait(poll_interval=0.02)
        with anyio.fail_after(10):
            await arrived.wait()
        assert [e.data.run_id for e in events] == [run.id]  # the real delivery verified

        body = orjson.dumps(
            {
                "id": "evt_forged",
                "type": "run.succeeded",
                "created_at": "2026-01-01T00:00:00Z",
                "data": {"run_id": run.id, "status": "SUCCEEDED", "flow_version": FLOW},
            }
        )
        tampered_body = body.replace(b"SUCCEEDED", b"FAILED")
        signed = sign(body, secret)
        attempts = {
            "unsigned": (body, {}),
            "tampered": (tampered_body, signed),
            "stale": (body, sign(body, secret, timestamp=int(time.time()) - 3600)),
            "wrong secret": (body, sign(body, "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==")),
        }
        for name, (payload, headers) in attempts.items():
            async with http.post(hook_url, data=payload, headers=headers) as resp:
                assert resp.status == 401, name
        for _ in range(3):  # a valid delivery, then the same one replayed, then re-signed
            async with http.post(hook_url, data=body, headers=signed) as resp:
                assert resp.status == 200
            signed = sign(body, secret)
    assert [e.id for e in events][1:] == ["evt_forged"]  # delivered to listeners once


# -- tenants ------------------------------------------------------------------------------------


async def test_one_tenant_can_neither_see_nor_touch_another_tenants_runs(
    emu: Emulator,
) -> None:
    other_key = emu.add_tenant()
    path = "synthetic://tenant?rows=3&duration=1"
    async with (
        AsyncLume(api_key=emu.api_key, base_url=emu.url) as mine,
        AsyncLume(api_key=other_key, base_url=emu.url) as theirs,
    ):
        run = await mine.run(FLOW, path, idempotency_key="shared-key")
        await run.wait(poll_interval=0.02)
        for attempt in (
            lambda: theirs.run_status(run.id),
            lambda: theirs.runs.cancel(run.id),
            lambda: theirs.runs.update(run.id, label="pwned"),
            lambda: theirs.runs.results_page(run.id),
            lambda: theirs.runs.rejects(run.id).collect(),
            lambda: theirs.runs.logs(run.id).collect(),
        ):
            with pytest.raises(RunNotFoundError):
                await attempt()
        [outcome] = await theirs.runs.get_many([run.id])
        assert isinstance(outcome.error, RunNotFoundError)
        assert [r.id async for r in theirs.runs.list()] == []
        # Their source path and idempotency key are their own: a new run, not ours replayed.
        own = await theirs.run(FLOW, path, idempotency_key="shared-key")
        assert own.id != run.id
        with pytest.raises(DuplicateRunError) as caught:
            await mine.run(FLOW, path)
        assert caught.value.existing_run_id == run.id
        assert (await mine.run_status(run.id)).label is None
        assert [r.id async for r in mine.runs.list()] == [run.id]
