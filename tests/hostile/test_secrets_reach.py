"""Secrets out of reach of error trackers: no frame local, exception attribute or chained error
holds the API key in clear, in any way a request can fail; a key the service echoes is masked.

Error trackers (Sentry, Rollbar) serialise the locals of every frame of a traceback and the
attributes of every exception in the chain; developers ``json.dumps`` an aiohttp error's request
headers. ``_reach`` does all of that: ``repr``, ``str`` and JSON of every value, recursively into
mappings, sequences, attrs instances, exceptions and their frames. A ``base_url`` with a password
is refused, and the refusal does not show the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import aiohttp
import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from lume_async import (
    APIConnectionError,
    AsyncLume,
    LumeError,
    RetryPolicy,
    Timeout,
)
from lume_async._pool import mask_request_info
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from ._servers import SHAPES, RawServer, head, json_answer, raw, silence

pytestmark = pytest.mark.anyio

CANARY = "lume_canary_5b9e1f3a7c2d4e6f8091a2b3c4d5e6f7"
PASSWORD = "pw-canary-0d1e2f3a4b5c6d7e"
USER = "proxyuser"
FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"


def _reach(obj: Any, seen: set[int] | None = None, depth: int = 0) -> Iterator[str]:
    """Every text an error tracker could make of ``obj`` and of what hangs off it."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return
    seen.add(id(obj))
    for render in (repr, str):
        try:
            yield render(obj)
        except Exception:
            yield f"<{render.__name__} failed>"
    if isinstance(obj, bytes | bytearray | memoryview):
        yield bytes(obj).decode("latin-1")
    elif isinstance(obj, Mapping):
        with contextlib.suppress(TypeError, ValueError):
            yield json.dumps(dict(obj), default=str)
        for key, value in list(obj.items())[:2000]:
            yield from _reach(key, seen, depth + 1)
            yield from _reach(value, seen, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in list(obj)[:2000]:
            yield from _reach(item, seen, depth + 1)
    elif attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            yield from _reach(getattr(obj, field.name, None), seen, depth + 1)
    elif isinstance(obj, BaseException):
        yield "".join(traceback.format_exception(obj))
        yield from _reach(obj.args, seen, depth + 1)
        yield from _reach(getattr(obj, "__notes__", []), seen, depth + 1)
        yield from _reach(vars(obj), seen, depth + 1)
        for frame, _ in traceback.walk_tb(obj.__traceback__):
            yield from _reach(dict(frame.f_locals), seen, depth + 1)
        yield from _reach(obj.__cause__, seen, depth + 1)
        yield from _reach(obj.__context__, seen, depth + 1)


def _leaks(obj: Any) -> list[str]:
    # The key is never bound to a test's local variable: the walk reads the test's frame too.
    return [text[:300] for text in _reach(obj) if CANARY in text]


# -- how requests fail --------------------------------------------------------------------------

Scenario = Callable[[Callable[..., AsyncLume]], Awaitable[None]]


async def _against(shape: Any, make: Callable[..., AsyncLume], **kwargs: Any) -> None:
    async with RawServer(shape) as server, make(server.url, **kwargs) as lume:
        await lume.runs.get(RUN_ID)


async def _create_against(shape: Any, make: Callable[..., AsyncLume]) -> None:
    async with RawServer(shape) as server, make(server.url) as lume:
        await lume.run(FLOW, "s3://bucket/secret", idempotency_key="key-1")


echo = f"your key {CANARY} is wrong"
SCENARIOS: dict[str, Scenario] = {
    "connection refused": lambda make: _refused(make),
    "timeout": lambda make: _against(silence, make, timeout=Timeout(total=0.2)),
    "401 echoing the secrets": lambda make: _against(
        json_answer({"detail": echo, "code": "unauthorized", "key": CANARY}, 401), make
    ),
    "500 echoing them as text": lambda make: _against(
        raw(head(500, content_length=len(echo)) + echo.encode()), make
    ),
    "422 echoing them in a list": lambda make: _against(
        json_answer({"detail": [{"loc": ["header", CANARY], "msg": echo}]}, 422), make
    ),
    "reset before answering": lambda make: _against(raw(b""), make),
    "body cut short": lambda make: _against(raw(head(content_length=100) + b'{"id": '), make),
    "malformed status line": lambda make: _against(raw(b"HTTP/1.1 OK\r\n\r\n"), make),
    "malformed header": lambda make: _against(raw(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n"), make),
    "not JSON": lambda make: _against(raw(head(content_length=9) + b"not json!"), make),
    "too large": lambda make: _against(SHAPES["endless chunked body"], make),
    "redirect": lambda make: _against(
        raw(head(302, location=f"http://elsewhere/{CANARY}", content_length=0)), make
    ),
    "TLS to a plain server": lambda make: _tls_mismatch(make),
    "create reset": lambda make: _create_against(raw(b""), make),
}


async def _refused(make: Callable[..., AsyncLume]) -> None:
    async with make("http://127.0.0.1:9") as lume:
        await lume.runs.get(RUN_ID)


async def _tls_mismatch(make: Callable[..., AsyncLume]) -> None:
    # A plain HTTP server answers the first bytes of a TLS handshake the way nginx does: a 400
    # in plain text, then it closes. (One that waited for a request head would leave the client
    # waiting for its connect timeout instead: a timeout, which has its own scenario.)
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(head(400, connection="close", content_length=0))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make(f"https://127.0.0.1:{port}") as lume:
            await lume.runs.get(RUN_ID)
    finally:
        server.close()
        await server.wait_closed()


def make(url: str, **kwargs: Any) -> AsyncLume:
    kwargs.setdefault("retry", RetryPolicy(max_retries=1, base_delay=0))
    return AsyncLume(api_key=CANARY, base_url=url, **kwargs)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_no_failure_leaves_the_key_where_an_error_tracker_looks(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LumeError) as caught:
        await SCENARIOS[scenario](make)
    assert _leaks(caught.value) == []
    assert CANARY not in caplog.text


async def test_a_direct_requests_error_carries_no_request_headers() -> None:
    with pytest.raises(APIConnectionError) as caught:
        await SCENARIOS["malformed status line"](make)
    cause = caught.value.__cause__
    assert cause is not None and cause.__traceback__ is None  # its frames are dropped
    assert getattr(cause, "request_info", None) is None
    assert _leaks(caught.value) == []


def test_an_aiohttp_errors_request_headers_dump_without_the_key() -> None:
    # Through a proxy, requests go through aiohttp, whose errors carry the request's headers.
    info = aiohttp.RequestInfo(
        URL("https://api.example/v1/runs"),
        "GET",
        CIMultiDictProxy(CIMultiDict({"lume-api-key": CANARY, "Accept": "application/json"})),
    )
    error = aiohttp.ClientResponseError(info, (), status=400, message="bad")
    try:
        raise APIConnectionError("failed") from error
    except APIConnectionError as exc:
        mask_request_info(error)
        wrapped = exc
    cause = wrapped.__cause__
    info = getattr(cause, "request_info", None)
    assert info is not None
    dumped = json.dumps(dict(info.headers))
    assert '"lume-api-key": "***"' in dumped
    assert CANARY not in json.dumps([dict(arg.headers) for arg in cause.args if arg is info])


async def test_the_key_is_still_sent() -> None:
    async with (
        RawServer(json_answer({"detail": "no"}, 404)) as server,
        AsyncLume(api_key=CANARY, base_url=server.url, max_retries=0) as lume,
    ):
        with pytest.raises(LumeError):
            await lume.runs.get(RUN_ID)
    assert f"lume-api-key: {CANARY}" in server.heads[0].decode().lower()


# -- the emulator's failures: statuses, faults, waiting ----------------------------------------


async def test_no_failure_against_the_emulator_leaves_the_key_in_reach(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caught: list[BaseException] = []

    async def expect(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except LumeError as exc:
            caught.append(exc)

    async with (
        Emulator(api_key=CANARY, time_scale=100) as emu,
        AsyncLume(api_key=CANARY, base_url=emu.url, clock=VirtualClock()) as lume,
    ):
        done = await lume.run(FLOW, "synthetic://reach?rows=3&duration=1")
        await done.wait(poll_interval=0.01)
        slow = await lume.run(FLOW, "synthetic://reach-slow?rows=3&duration=3600")
        await expect(lambda: lume.run(FLOW, "synthetic://reach?rows=3&duration=1"))
        await expect(lambda: lume.run_status(RUN_ID))
        await expect(lambda: lume.run("nope:v1", "s3://x"))
        await expect(lambda: slow.wait(timeout=0.5, poll_interval=0.1))
        await expect(lambda: lume.runs.wait_all([slow], timeout=0.5, poll_interval=0.1))
        for kind, phase in [("503", "before"), ("reset", "after"), ("truncate", "after")]:
            emu.set_faults(FaultProfile(rate=1.0, kinds=(kind,), phase=phase))
            await expect(lambda: lume.with_options(max_retries=1).run_status(done.id))
            await expect(lambda: lume.with_options(max_retries=1).webhook_endpoints.delete("wh_1"))
        emu.set_faults(None)
    assert len(caught) == 11
    for exc in caught:
        assert _leaks(exc) == [], type(exc).__name__
    assert CANARY not in caplog.text


# -- a URL with a password ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"http://{USER}:{PASSWORD}@127.0.0.1:9",
        f"https://{USER}:{PASSWORD}@api.lume.example/v1",
        f"ftp://{USER}:{PASSWORD}@127.0.0.1:9",
        f"http://{USER}:{PASSWORD}@lume.example",  # plain HTTP off this machine, too
        f"https://{USER}:{PASSWORD}@",  # and no host
    ],
)
def test_a_base_url_with_a_password_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        AsyncLume(api_key=CANARY, base_url=url)
    said = [str(caught.value), repr(caught.value), *map(str, caught.value.args)]
    assert not any(PASSWORD in text or CANARY in text for text in said)
