"""Retry and time-limit edges of one request: which answers are retried and how long the client
waits before each retry, the retry budget's accounting over its window, the deadline on a server
that never answers, and a call cancelled while it waits to retry.

Clients run on a virtual clock wherever the wait is the client's own (backoff, budget window), so
waits take no real time; the one real time limit is a fraction of a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lume_async import (
    APITimeoutError,
    AsyncLume,
    InvalidRequestError,
    RetryEvent,
    RetryPolicy,
    ServerError,
)
from lume_async.testing import VirtualClock

from ._scripted import RUN_ID, Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

BUSY = Answer(503, {"detail": "busy", "code": "unavailable"})


# -- what is retried ------------------------------------------------------------------------------


async def test_a_408_request_timeout_is_retried(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    # The server gave up waiting for the request: a repeat does not get the same answer.
    scripted.then(Answer(408, {"detail": "request timeout", "code": "request_timeout"}))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        run = await lume.runs.get(RUN_ID)
    assert run.id == RUN_ID
    assert len(scripted.seen) == 2


async def test_max_retries_zero_sends_one_attempt_and_raises_its_error(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    events: list[RetryEvent] = []
    scripted.then(BUSY, BUSY)
    policy = RetryPolicy(max_retries=0, on_retry=events.append)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.status_code == 503
    assert caught.value.request_id == "req_test"
    assert len(scripted.seen) == 1
    assert events == []
    assert clock.monotonic() == 0


# -- how long each retry waits --------------------------------------------------------------------


async def test_max_retry_after_bounds_retry_after_hints_not_the_backoff(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    # No Retry-After is sent: each wait is a full-jitter draw in [0, 10], whatever the cap on the
    # server's hints. Ten draws all at most 1 s would happen once in 10**10 runs.
    events: list[RetryEvent] = []
    scripted.then(*[BUSY] * 10)
    policy = RetryPolicy(
        max_retries=10,
        base_delay=10,
        max_delay=10,
        max_retry_after=1,
        on_retry=events.append,
    )
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        await lume.runs.get(RUN_ID)
    assert len(events) == 10
    assert all(0 <= event.wait <= 10 for event in events)
    assert max(event.wait for event in events) > 1


async def test_retry_after_on_a_create_still_in_flight_is_waited_out(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    events: list[RetryEvent] = []
    in_flight = Answer(
        409,
        {"detail": "still being handled", "code": "idempotency_in_flight"},
        {"Retry-After": "3"},
    )
    scripted.then(in_flight, Answer(201, run_json()))
    policy = RetryPolicy(on_retry=events.append)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        run = await lume.run("customer_cleaner:v1", "s3://bucket/in-flight")
    assert run.id == RUN_ID
    assert len(scripted.seen) == 2
    assert [event.attempt for event in events] == [1]
    assert 3.0 <= events[0].wait <= 3.75  # the server's hint plus at most a quarter
    assert clock.monotonic() == pytest.approx(events[0].wait)


# -- the retry budget -----------------------------------------------------------------------------


async def test_a_refund_never_raises_the_budget_above_its_ceiling(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    # One retry token per ten-second window. The first call's retry takes it at 0 s and succeeds
    # 11 s or more later, when that withdrawal has left the window and the token is back anyway:
    # giving it back once more would make two tokens out of one.
    policy = RetryPolicy(max_retries=3, budget_ratio=0.0, budget_floor=0.1)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        scripted.then(Answer(503, {"detail": "busy"}, {"Retry-After": "11"}))
        assert (await lume.runs.get(RUN_ID)).id == RUN_ID
        assert clock.monotonic() >= 11
        scripted.then(*[BUSY] * 4)
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 2 + 2  # the second call: one attempt and its one retry
    assert any("budget" in note for note in caught.value.__notes__)


# -- the deadline and cancellation ----------------------------------------------------------------


class SilentServer:
    """Accepts connections and reads requests, and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await reader.read(4096):
                pass
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    async with SilentServer() as server:
        yield server


async def test_the_retry_deadline_bounds_an_attempt_with_no_time_limit_of_its_own(
    silent: SilentServer,
) -> None:
    # timeout=None sets no limit per attempt, so the 0.2 s deadline is the only bound: the first
    # attempt ends at it, and no retry follows.
    policy = RetryPolicy(max_retries=5, deadline=0.2, base_delay=0.0)
    async with AsyncLume(api_key="k", base_url=silent.url, timeout=None, retry=policy) as lume:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            await lume.runs.get(RUN_ID)
        took = time.monotonic() - started
    assert 0.2 <= took < 5
    assert silent.connections == 1
    assert any("deadline" in note for note in caught.value.__notes__)


async def test_a_call_cancelled_while_it_waits_to_retry_sends_nothing_more(
    scripted: ScriptedServer,
) -> None:
    clock = VirtualClock(autojump=False)
    retrying = asyncio.Event()
    scripted.then(Answer(503, {"detail": "busy"}, {"Retry-After": "30"}))
    policy = RetryPolicy(on_retry=lambda _: retrying.set())
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        call = asyncio.create_task(lume.runs.get(RUN_ID))
        await retrying.wait()
        assert clock.sleepers == 1  # the retry's wait has begun
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        clock.advance(120)
        await asyncio.sleep(0.05)
    assert len(scripted.seen) == 1


async def test_a_409_other_than_a_create_in_flight_raises_its_own_class_at_once(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    # Only a 409 that says the same create is still in flight is worth asking again.
    scripted.then(Answer(409, {"detail": "conflict", "code": "conflict"}, {"Retry-After": "1"}))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        with pytest.raises(InvalidRequestError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.status_code == 409
    assert caught.value.code == "conflict"
    assert len(scripted.seen) == 1
    assert clock.monotonic() == 0
