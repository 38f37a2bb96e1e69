"""Bounded answers: whatever a server sends, the client holds at most ``max_response_bytes`` of it.

The limit counts decompressed bytes and is enforced while the body streams in, so compression
bombs, endless bodies and lying ``Content-Length`` headers all stop there; an error answer keeps
its status with its body cut, and no error message or kept body grows with what the server sent.
Memory is measured with ``tracemalloc`` around each call.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncLume,
    InvalidRequestError,
    LumeError,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    Timeout,
)
from lume_async.testing import Emulator

from .._profiles import examples
from ._servers import SHAPES, RawServer, json_answer, slowloris

pytestmark = pytest.mark.anyio

KEY = "lume_bounds_test_key_0123456789"
RUN_ID = "run_01HY0000000000000000000000"
MIB = 1 << 20
# What the client may hold besides the answer itself: socket buffers, one decompressed chunk,
# aiohttp's and the test server's own bookkeeping.
SLACK = 3 * MIB

TOO_LARGE = [
    "gzip bomb",
    "deflate bomb",
    "endless chunked body",
    "endless body until close",
    "Content-Length too large",
]
ERRORS = ["gzip bomb as an error", "endless error body"]


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def _peak_while(call: Any) -> tuple[BaseException | None, int]:
    """Run ``call()``; what it raised, and the most memory it held at once above the start."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    raised: BaseException | None = None
    try:
        await call()
    except LumeError as exc:
        raised = exc
    return raised, tracemalloc.get_traced_memory()[1] - base


def _client(url: str, limit: int, **kwargs: Any) -> AsyncLume:
    timeout = Timeout(total=60, read=10)
    return AsyncLume(
        api_key=KEY,
        base_url=url,
        max_retries=0,
        max_response_bytes=limit,
        timeout=timeout,
        **kwargs,
    )


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("limit", [64 * 1024, 2 * MIB])
@pytest.mark.parametrize("shape", TOO_LARGE)
async def test_a_success_answer_past_the_limit_raises_response_too_large(
    shape: str, limit: int
) -> None:
    async with RawServer(SHAPES[shape]) as server, _client(server.url, limit) as lume:
        raised, peak = await _peak_while(lambda: lume.runs.get(RUN_ID))
    assert isinstance(raised, ResponseTooLargeError)
    assert isinstance(raised, APIError)
    assert raised.limit == limit
    assert raised.status_code == 200
    assert "max_response_bytes" in str(raised)
    assert peak < limit + SLACK


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("shape", TOO_LARGE)
async def test_the_default_limit_stops_every_shape_at_32_mib(shape: str) -> None:
    async with (
        RawServer(SHAPES[shape]) as server,
        AsyncLume(api_key=KEY, base_url=server.url) as lume,
    ):
        raised, peak = await _peak_while(lambda: lume.with_options(max_retries=0).runs.get(RUN_ID))
    assert isinstance(raised, ResponseTooLargeError)
    assert raised.limit == 32 * MIB
    assert peak < 32 * MIB + SLACK


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("shape", ERRORS)
async def test_an_error_answer_past_the_limit_keeps_its_status_with_its_body_cut(
    shape: str,
) -> None:
    limit = MIB
    async with RawServer(SHAPES[shape]) as server, _client(server.url, limit) as lume:
        raised, peak = await _peak_while(lambda: lume.runs.get(RUN_ID))
    assert isinstance(raised, ServerError)
    assert len(str(raised)) < 2_500
    assert peak < limit + SLACK


@pytest.mark.usefixtures("traced")
async def test_bytes_past_the_content_length_are_never_held_as_the_answer() -> None:
    async with (
        RawServer(SHAPES["body longer than its Content-Length"]) as server,
        _client(server.url, MIB) as lume,
    ):
        raised, peak = await _peak_while(lambda: lume.runs.get(RUN_ID))
    # The two bytes announced are not JSON; the rest is garbage on a connection not reused.
    assert isinstance(raised, ResponseValidationError | APIConnectionError)
    assert len(str(raised)) < 2_500
    assert peak < MIB + SLACK


@pytest.mark.parametrize(
    ("pause", "timeout"),
    [(1.0, Timeout(total=None, read=0.2)), (0.02, Timeout(total=0.5, read=0.2))],
    ids=["slower than the read timeout", "within it, for longer than the total"],
)
async def test_a_body_dribbled_out_byte_by_byte_ends_at_a_timeout(
    pause: float, timeout: Timeout
) -> None:
    async with (
        RawServer(slowloris(pause)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0, timeout=timeout) as lume,
    ):
        with pytest.raises(APITimeoutError):
            await lume.runs.get(RUN_ID)


async def test_an_answer_within_the_limit_is_read_whole(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run("customer_cleaner:v1", "synthetic://fits?rows=5&duration=1")
        await run.wait(poll_interval=0.02)
        size = len(orjson.dumps(await _raw_run(emu, run.id)))
        snug = AsyncLume(api_key=emu.api_key, base_url=emu.url, max_response_bytes=size)
        async with snug:
            assert (await snug.runs.get(run.id)).id == run.id
        tight = AsyncLume(api_key=emu.api_key, base_url=emu.url, max_response_bytes=size - 1)
        async with tight:
            with pytest.raises(ResponseTooLargeError):
                await tight.runs.get(run.id)


async def _raw_run(emu: Emulator, run_id: str) -> Any:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emu.url}/v1/runs/{run_id}", headers={"lume-api-key": emu.api_key}) as resp,
    ):
        return await resp.json()


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("32MiB", TypeError), (True, TypeError)],
)
def test_max_response_bytes_must_be_a_positive_int(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_response_bytes"):
        AsyncLume(api_key=KEY, base_url="http://127.0.0.1:9", max_response_bytes=value)  # type: ignore[arg-type]


# -- error messages and kept bodies -------------------------------------------------------------

huge_text = st.integers(min_value=3_000, max_value=3_000_000).map(lambda n: "d" * n)
issues = st.fixed_dictionaries(
    {"loc": st.lists(st.text(max_size=30), max_size=5), "msg": st.text(max_size=3_000)}
)
details = st.one_of(
    huge_text,
    st.lists(issues, min_size=30, max_size=3_000),
    st.recursive(
        st.text(max_size=5_000),
        lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=40), inner),
        max_leaves=200,
    ),
)
error_bodies = st.fixed_dictionaries(
    {"detail": details},
    optional={
        "code": st.one_of(st.just("validation_error"), huge_text),
        "error_id": st.one_of(st.just("err_1"), huge_text),
        "padding": st.lists(huge_text, max_size=3),
    },
)


@settings(
    max_examples=examples(30),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=error_bodies, status=st.sampled_from([400, 409, 422, 500, 503]))
async def test_an_error_keeps_a_short_message_and_a_bounded_body_whatever_the_server_sent(
    body: dict[str, Any], status: int
) -> None:
    async with (
        RawServer(json_answer(body, status)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0) as lume,
    ):
        with pytest.raises(APIError) as caught:
            await lume.runs.get(RUN_ID)
    error = caught.value
    assert isinstance(error, InvalidRequestError | ServerError)
    assert len(error.message) <= 2_100
    assert len(str(error)) <= 2_700
    assert len(repr(error)) <= 2_900
    assert error.code is None or len(error.code) <= 300
    assert len(orjson.dumps(error.body)) <= 64 * 1024
    if len(orjson.dumps(body)) <= 64 * 1024:
        assert error.body == body  # a body of ordinary size is kept as it came


# -- per-call settings ---------------------------------------------------------------------------


async def test_views_made_per_call_do_not_grow_the_clients_caches(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        for i in range(300):
            # A timeout and a retry budget computed afresh for each call, as deadlines are.
            view = lume.with_options(
                timeout=1 + i / 1000, retry=RetryPolicy(budget_ratio=0.4 + i / 1000)
            )
            await view.flows.get("customer_cleaner")
        transport = lume._core.transport
        assert len(transport._timeouts) <= 32
        assert len(transport._budgets) <= 32
        assert transport.budget() is transport.budget(lume.retry)  # the client's own is kept
