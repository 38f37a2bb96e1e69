"""The transport against servers that misbehave in ways a real service rarely does: answers whose
numbers are out of every sane range, and retries that go on for as long as a policy allows."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from lume_async import APIConnectionError, AsyncLume, RetryPolicy, ServerError
from lume_async.testing import VirtualClock

from ..core._scripted import RUN_ID, run_json
from ..hostile._servers import RawServer, raw

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

KEY = "lume_test_key_0123456789"
BODY = orjson.dumps(run_json())


def _loop_errors() -> list[dict[str, Any]]:
    """What reaches the running loop's exception handler from now on (a protocol callback that
    raised, among others)."""
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: seen.append(context))
    return seen


async def test_a_content_length_of_thousands_of_digits_is_a_bad_answer() -> None:
    # int() refuses a string of over 4,300 digits: that must not escape the protocol's callback
    # (the loop logs it as a fatal error and the answer reads as cut short).
    errors = _loop_errors()
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    async with (
        RawServer(raw(answer)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0) as lume,
    ):
        with pytest.raises(APIConnectionError, match=r"not valid HTTP .*Content-Length is out"):
            await lume.run_status(RUN_ID)
    assert errors == []


async def test_a_content_length_padded_with_thousands_of_zeros_is_read() -> None:
    errors = _loop_errors()
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %s%d\r\n\r\n%s" % (b"0" * 5000, len(BODY), BODY)
    async with (
        RawServer(raw(answer, keep=True)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0) as lume,
    ):
        run = await lume.run_status(RUN_ID)
    assert run.id == RUN_ID
    assert errors == []


async def test_retrying_past_a_thousand_backoff_steps_raises_the_services_error() -> None:
    # 2 ** 1024 is too large for a float: the backoff's doubling must stop before it gets there.
    # The count is what it takes to get past that step; the virtual clock takes the waits.
    policy = RetryPolicy(max_retries=1100, base_delay=0.001, budget_floor=1000, deadline=None)
    answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    async with (
        RawServer(raw(answer, keep=True)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, retry=policy, clock=VirtualClock()) as lume,
    ):
        with pytest.raises(ServerError):
            await lume.run_status(RUN_ID)
    assert server.requests == 1101
