"""Work a client shares between its callers runs in no caller's context.

An async service binds per-request values in ``contextvars`` (a request id for its logs, a
tracing span). The client's poller and timers serve every caller: a value of the call that
happened to start them must not label the status requests made for the other callers, long
after that call is over.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator

import anyio
import pytest

from lume_async import AsyncLume, RetryPolicy
from lume_async.testing import Emulator, FaultProfile, VirtualClock

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

FLOW = "customer_cleaner:v1"
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("service_request_id")


class _Seen(logging.Handler):
    """The service's request id bound when each status poll was logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.polls: list[str | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "batch-get" in record.getMessage():
            self.polls.append(REQUEST_ID.get(None))


@pytest.fixture
def seen() -> Iterator[_Seen]:
    handler, logger = _Seen(), logging.getLogger("lume_async.http")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_the_poller_carries_no_callers_context(
    vemu: Emulator, vlume: AsyncLume, seen: _Seen
) -> None:
    first = await vlume.run(FLOW, "synthetic://first?rows=5&duration=5")
    second = await vlume.run(FLOW, "synthetic://second?rows=5&duration=600")

    async def as_request(request_id: str, wait: object) -> None:
        REQUEST_ID.set(request_id)
        await wait  # type: ignore[misc]

    async with anyio.create_task_group() as tg:
        # The first call starts the poller, then ends; the second goes on waiting.
        tg.start_soon(as_request, "req-A", first.wait(poll_interval=1))
        tg.start_soon(as_request, "req-B", second.wait(poll_interval=1))
    assert seen.polls, "no status poll was logged"
    assert set(seen.polls) == {None}, seen.polls


async def test_a_shared_polls_retry_hook_runs_in_no_callers_context(
    vemu: Emulator, clock: VirtualClock
) -> None:
    heard: list[str | None] = []
    policy = RetryPolicy(max_retries=5, on_retry=lambda _event: heard.append(REQUEST_ID.get(None)))
    async with AsyncLume(
        api_key=vemu.api_key, base_url=vemu.url, retry=policy, clock=clock
    ) as lume:
        run = await lume.run(FLOW, "synthetic://retried?rows=5&duration=30")
        REQUEST_ID.set("req-A")
        vemu.set_faults(FaultProfile(rate=0.5, kinds=("503",), seed=7, retry_after=0))
        await run.wait(poll_interval=1)
        vemu.set_faults(None)
    assert heard, "no retry happened"
    assert set(heard) == {None}, heard
