"""Bad input from the caller: each invalid call fails with a clear error before any request.

One table, one row per mistake a user can make; every row runs against a live emulator whose
request counter must stay at zero.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from lume_async import (
    AsyncLume,
    AuthenticationError,
    LumeError,
    RetryPolicy,
    RunRequest,
    Timeout,
)
from lume_async.testing import Emulator
from lume_async.webhooks import ReplayGuard, WebhookReceiver, verify

pytestmark = pytest.mark.anyio

Call = Callable[[AsyncLume], Awaitable[Any] | Any]
RUN_ID = "run_01HY0000000000000000000000"
FLOW = "customer_cleaner:v1"
PATH = "s3://bucket/batch_001"


async def _invoke(call: Call, lume: AsyncLume) -> None:
    result = call(lume)
    if isinstance(result, Awaitable):
        await result


async def _collect(paginator: Any) -> Any:
    return await paginator.collect()


async def _first_completed(lume: AsyncLume, **kwargs: Any) -> Any:
    async for run in lume.runs.as_completed([], **kwargs):
        return run
    return None


# (id, call, error type, a word the message must contain)
CASES: list[tuple[str, Call, type[Exception], str]] = [
    # -- creating a run ---------------------------------------------------------------------------
    ("empty flow_version", lambda c: c.run("", PATH), ValueError, "flow_version"),
    ("flow_version not a str", lambda c: c.run(7, PATH), TypeError, "flow_version"),
    ("flow_version without :vN", lambda c: c.run("customer_cleaner", PATH), ValueError, "name:vN"),
    ("no source at all", lambda c: c.run(FLOW), ValueError, "exactly one"),
    (
        "both sources",
        lambda c: c.run(FLOW, PATH, source_data=[{"a": 1}]),
        ValueError,
        "exactly one",
    ),
    ("blank source_path", lambda c: c.run(FLOW, "   "), ValueError, "source_path"),
    ("source_path not a str", lambda c: c.run(FLOW, 42), TypeError, "source_path"),
    (
        "source_data a string",
        lambda c: c.run(FLOW, source_data="a,b\n1,2"),
        TypeError,
        "source_data",
    ),
    (
        "source_data a single dict",
        lambda c: c.run(FLOW, source_data={"name": "x"}),
        TypeError,
        "source_data",
    ),
    (
        "source_data rows not objects",
        lambda c: c.run(FLOW, source_data=[{"a": 1}, [1, 2]]),
        TypeError,
        "source_data[1]",
    ),
    (
        "source_data not JSON",
        lambda c: c.run(FLOW, source_data=[{"at": datetime.now}]),
        TypeError,
        "source_data[0]",
    ),
    (
        "run_metadata not a dict",
        lambda c: c.run(FLOW, PATH, run_metadata=[("a", 1)]),
        TypeError,
        "run_metadata",
    ),
    (
        "run_metadata not JSON",
        lambda c: c.run(FLOW, PATH, run_metadata={"ids": {1, 2}}),
        TypeError,
        "run_metadata",
    ),
    (
        "force_rerun not a bool",
        lambda c: c.run(FLOW, PATH, force_rerun="yes"),
        TypeError,
        "force_rerun",
    ),
    ("label not a str", lambda c: c.run(FLOW, PATH, label=3), TypeError, "label"),
    ("tags a single string", lambda c: c.run(FLOW, PATH, tags="nightly"), TypeError, "tags"),
    ("tags not strings", lambda c: c.run(FLOW, PATH, tags=["a", 2]), TypeError, "tags"),
    (
        "empty idempotency_key",
        lambda c: c.run(FLOW, PATH, idempotency_key=""),
        ValueError,
        "idempotency_key",
    ),
    (
        "idempotency_key not ASCII",
        lambda c: c.run(FLOW, PATH, idempotency_key="clé-1"),
        ValueError,
        "idempotency_key",
    ),
    (
        "idempotency_key too long",
        lambda c: c.run(FLOW, PATH, idempotency_key="k" * 256),
        ValueError,
        "idempotency_key",
    ),
    (
        "idempotency_key with a newline",
        lambda c: c.run(FLOW, PATH, idempotency_key="a\r\nX-Evil: 1"),
        ValueError,
        "idempotency_key",
    ),
    (
        "idempotency_key with a space",
        lambda c: c.run(FLOW, PATH, idempotency_key="batch 7"),
        ValueError,
        "idempotency_key",
    ),
    (
        "idempotency_namespace with a space",
        lambda c: c.runs.create_many([], idempotency_namespace="night 1"),
        ValueError,
        "idempotency_namespace",
    ),
    (
        "idempotency_namespace too long for its keys",
        lambda c: c.run(FLOW, PATH, idempotency_namespace="n" * 191),
        ValueError,
        "idempotency_namespace",
    ),
    (
        "both an idempotency_key and a namespace",
        lambda c: c.process(FLOW, PATH, idempotency_key="k", idempotency_namespace="n"),
        ValueError,
        "idempotency_namespace",
    ),
    # -- one run ----------------------------------------------------------------------------------
    ("empty run id", lambda c: c.run_status(""), ValueError, "run_id"),
    ("run id not a str", lambda c: c.runs.get(None), TypeError, "run_id"),
    ("run id with a path", lambda c: c.runs.get("../../v1/flows"), ValueError, "run_id"),
    ("run id with a query", lambda c: c.runs.cancel(f"{RUN_ID}?x=1"), ValueError, "run_id"),
    ("update with nothing", lambda c: c.runs.update(RUN_ID), ValueError, "label"),
    ("update label not a str", lambda c: c.runs.update(RUN_ID, label=1), TypeError, "label"),
    ("update tags a string", lambda c: c.runs.update(RUN_ID, tags="x"), TypeError, "tags"),
    # -- pages ------------------------------------------------------------------------------------
    ("page 0", lambda c: c.runs.results_page(RUN_ID, page=0), ValueError, "page"),
    ("page a float", lambda c: c.runs.results_page(RUN_ID, page=1.0), TypeError, "page"),
    (
        "page_size over 100",
        lambda c: c.runs.results_page(RUN_ID, page_size=101),
        ValueError,
        "page_size",
    ),
    (
        "page_size 0",
        lambda c: _collect(c.runs.rejects(RUN_ID, page_size=0)),
        ValueError,
        "page_size",
    ),
    ("page_size a bool", lambda c: c.runs.logs(RUN_ID, page_size=True), TypeError, "page_size"),
    ("list page_size 1000", lambda c: c.runs.list(page_size=1000), ValueError, "page_size"),
    ("list order_by unknown", lambda c: c.runs.list(order_by="name"), ValueError, "order_by"),
    ("list status unknown", lambda c: c.runs.list(status="DONE"), ValueError, "status"),
    (
        "list created_after naive",
        lambda c: c.runs.list(created_after=datetime(2026, 1, 1)),
        ValueError,
        "timezone",
    ),
    (
        "list created_before a string",
        lambda c: c.runs.list(created_before="2026-01-01"),
        TypeError,
        "created_before",
    ),
    ("flows page_size 0", lambda c: c.flows.list(page_size=0), ValueError, "page_size"),
    ("flow name with a slash", lambda c: c.flows.get("a/b"), ValueError, "flow name"),
    # -- many runs and waiting --------------------------------------------------------------------
    (
        "create_many concurrency 0",
        lambda c: c.runs.create_many([RunRequest(FLOW, source_path=PATH)], concurrency=0),
        ValueError,
        "concurrency",
    ),
    ("batch_get of nothing", lambda c: c.runs.batch_get([]), ValueError, "batch_get"),
    ("batch_get of 101", lambda c: c.runs.batch_get([RUN_ID] * 101), ValueError, "batch_get"),
    ("wait_all negative timeout", lambda c: c.runs.wait_all([], timeout=-1), ValueError, "timeout"),
    (
        "wait_all NaN timeout",
        lambda c: c.runs.wait_all([], timeout=float("nan")),
        ValueError,
        "timeout",
    ),
    (
        "wait_all poll_interval 0",
        lambda c: c.runs.wait_all([], poll_interval=0),
        ValueError,
        "poll_interval",
    ),
    (
        "as_completed timeout a string",
        lambda c: _first_completed(c, timeout="soon"),
        TypeError,
        "timeout",
    ),
    # -- settings ---------------------------------------------------------------------------------
    ("with_options negative timeout", lambda c: c.with_options(timeout=-5), ValueError, "timeout"),
    (
        "with_options retries twice",
        lambda c: c.with_options(max_retries=1, retry=RetryPolicy()),
        TypeError,
        "either",
    ),
    (
        "RetryPolicy negative retries",
        lambda c: RetryPolicy(max_retries=-1),
        ValueError,
        "max_retries",
    ),
    ("RetryPolicy float retries", lambda c: RetryPolicy(max_retries=2.5), TypeError, "max_retries"),
    ("Timeout of zero", lambda c: Timeout(total=0), ValueError, "total"),
    ("Timeout of infinity", lambda c: Timeout(total=float("inf")), ValueError, "total"),
    # -- webhooks ---------------------------------------------------------------------------------
    (
        "verify negative tolerance",
        lambda c: verify(b"{}", {}, "s", tolerance=-1),
        ValueError,
        "tolerance",
    ),
    ("verify empty secret", lambda c: verify(b"{}", {}, ""), ValueError, "secret"),
    ("receiver relative path", lambda c: WebhookReceiver("s", path="hooks"), ValueError, "path"),
    ("replay guard ttl 0", lambda c: ReplayGuard(ttl=0), ValueError, "ttl"),
]


def _params() -> list[Any]:
    return [pytest.param(call, error, word, id=name) for name, call, error, word in CASES]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


def _sent(emu: Emulator) -> int:
    return sum(sum(by_status.values()) for by_status in emu.stats()["requests"].values())


def test_the_table_covers_at_least_thirty_mistakes() -> None:
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("call", "error", "word"), _params())
async def test_an_invalid_call_fails_clearly_before_any_request(
    emu: Emulator, call: Call, error: type[Exception], word: str
) -> None:
    before = _sent(emu)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, max_retries=0) as lume:
        with pytest.raises(error) as caught:
            await _invoke(call, lume)
    assert word in str(caught.value)
    assert not isinstance(caught.value, LumeError) or isinstance(caught.value, error)
    assert _sent(emu) == before, "the call reached the server"


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"api_key": ""}, AuthenticationError, "API key"),
        ({"api_key": "key\nX-Injected: 1"}, ValueError, "single-line"),
        ({"base_url": "ftp://files.example.com"}, ValueError, "base_url"),
        ({"base_url": "api.lume.ai"}, ValueError, "base_url"),
        ({"base_url": "http://api.lume.ai"}, ValueError, "plain HTTP"),
        ({"timeout": "soon"}, TypeError, "seconds"),
        ({"max_connections": True}, TypeError, "max_connections"),
    ],
)
def test_an_invalid_client_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], error: type[Exception], word: str
) -> None:
    monkeypatch.delenv("LUME_API_KEY", raising=False)
    settings: dict[str, Any] = {"api_key": "k", "base_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(error, match=word):
        AsyncLume(**settings)


async def test_a_bad_item_in_create_many_fails_alone_and_sends_nothing(emu: Emulator) -> None:
    before = _sent(emu)
    items: list[Any] = [{"flow_version": ""}, {"flow_version": FLOW, "source_path": 5}]
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        outcomes = await lume.runs.create_many(items)
    assert [type(o.error) for o in outcomes] == [ValueError, TypeError]
    assert _sent(emu) == before


async def test_process_refuses_a_bad_timeout_before_creating_a_run(emu: Emulator) -> None:
    before = _sent(emu)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        with pytest.raises(ValueError, match="timeout"):
            await lume.process(FLOW, "s3://bucket/process-bad-timeout", timeout=-1)
        with pytest.raises(ValueError, match="poll_interval"):
            await lume.process(FLOW, "s3://bucket/process-bad-interval", poll_interval=0)
    assert _sent(emu) == before, "a run was created although the call could never wait for it"
