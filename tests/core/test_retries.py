"""Retries: only what is safe to repeat, paced by backoff and Retry-After, bounded by a deadline
and by the client-wide budget, and never a second run for one create.

Clients run on a virtual clock: backoff waits take no real time, and the time they take on the
clock is exact, so the tests check how long the client waited as well as whether it did.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from lume_async import (
    AsyncLume,
    NotFoundError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    RunNotFoundError,
    RunStatus,
    ServerError,
)
from lume_async._retry import RetryBudget, backoff
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from ._scripted import RUN_ID, Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

BUSY = Answer(503, {"detail": "busy", "code": "unavailable"})


def recording(events: list[RetryEvent], **kwargs: float) -> RetryPolicy:
    return RetryPolicy(on_retry=events.append, **kwargs)  # type: ignore[arg-type]


async def test_retry_after_is_waited_out(scripted: ScriptedServer, clock: VirtualClock) -> None:
    events: list[RetryEvent] = []
    scripted.then(Answer(429, {"detail": "slow down"}, {"Retry-After": "2"}))
    policy = recording(events)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        run = await lume.runs.get(RUN_ID)
    assert run.id == RUN_ID
    assert [e.attempt for e in events] == [1]
    assert 2.0 <= events[0].wait <= 2.5  # the server's hint plus a little jitter
    assert clock.monotonic() == pytest.approx(events[0].wait)  # and the client waited just that
    assert isinstance(events[0].cause, RateLimitError)
    assert events[0].route == "/v1/runs/{run_id}"


async def test_a_retry_after_over_the_cap_is_not_waited(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(Answer(429, {"detail": "come back tomorrow"}, {"Retry-After": "86400"}))
    policy = RetryPolicy(max_retry_after=60)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        with pytest.raises(RateLimitError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.retry_after == 86400
    assert len(scripted.seen) == 1
    assert any("max_retry_after" in note for note in caught.value.__notes__)


async def test_the_deadline_bounds_all_attempts(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(Answer(503, {"detail": "busy"}, {"Retry-After": "5"}))
    policy = RetryPolicy(deadline=1.0)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 1  # waiting 5 s would pass the 1 s deadline: no retry
    assert any("deadline" in note for note in caught.value.__notes__)


async def test_5xx_is_retried_until_max_retries(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(BUSY, BUSY, BUSY, BUSY, BUSY)
    async with AsyncLume(api_key="k", base_url=scripted.url, max_retries=2, clock=clock) as lume:
        with pytest.raises(ServerError):
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 3


async def test_a_4xx_is_never_retried(scripted: ScriptedServer, clock: VirtualClock) -> None:
    scripted.then(Answer(404, {"detail": "no such run", "code": "not_found"}))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        with pytest.raises(RunNotFoundError):
            await lume.runs.get(RUN_ID)
    assert len(scripted.seen) == 1


async def test_a_request_not_safe_to_repeat_is_not_retried(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(BUSY)
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        with pytest.raises(ServerError):
            await lume._core.transport.request(
                "POST", "/v1/webhooks", route="/v1/webhooks", body=b"{}", retryable=False
            )
    assert len(scripted.seen) == 1


async def test_every_retry_of_a_create_carries_the_same_idempotency_key(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(BUSY, Answer(502, b"bad gateway"), Answer(201, run_json()))
    scripted.then(Answer(201, run_json("run_01HY0000000000000000000001")))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        await lume.run("customer_cleaner:v1", "s3://bucket/a")
        await lume.run("customer_cleaner:v1", "s3://bucket/b")
    keys = [seen.headers.get("Idempotency-Key") for seen in scripted.seen]
    assert len(keys) == 4
    assert keys[0] is not None and keys[0] == keys[1] == keys[2]
    assert keys[3] is not None and keys[3] != keys[0]


async def test_a_given_idempotency_key_is_sent_as_is(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    scripted.then(Answer(201, run_json()))
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        await lume.run("customer_cleaner:v1", "s3://bucket/a", idempotency_key="batch-7-item-3")
    assert scripted.seen[0].headers["Idempotency-Key"] == "batch-7-item-3"


def test_backoff_uses_full_jitter_with_a_longer_base_for_429() -> None:
    policy = RetryPolicy(base_delay=0.5, rate_limit_base_delay=2.0, max_delay=30)
    rng = random.Random(7)
    server = ServerError("x", status_code=503)
    limited = RateLimitError("x", status_code=429)
    server_waits = [backoff(policy, 3, server, rng) for _ in range(2000)]
    limited_waits = [backoff(policy, 3, limited, rng) for _ in range(2000)]
    assert min(server_waits) >= 0 and max(server_waits) <= 4.0
    assert max(server_waits) > 3.5  # full jitter spreads over the whole range
    assert max(limited_waits) <= 16.0 and max(limited_waits) > 14.0
    assert backoff(policy, 20, server, rng) <= 30  # capped


def test_the_budget_lets_a_share_of_requests_retry_and_refunds_successes(
    clock: VirtualClock,
) -> None:
    budget = RetryBudget(ratio=0.4, floor=0.0, clock=clock)
    for _ in range(10):
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(5)] == [True] * 4 + [False]
    budget.refund()
    assert budget.try_withdraw()


async def test_an_outage_costs_at_most_one_and_a_half_times_the_requests(
    emu: Emulator, clock: VirtualClock
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before"))
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume:
        outcomes = await asyncio.gather(
            *(lume.run("customer_cleaner:v1", f"s3://bucket/outage-{i}") for i in range(1000)),
            return_exceptions=True,
        )
    assert all(isinstance(o, ServerError) and o.status_code == 503 for o in outcomes)
    sent = sum(emu.stats()["requests"]["POST /v1/runs"].values())
    assert 1000 <= sent <= 1500


async def test_thirty_percent_faults_lose_and_duplicate_nothing(
    emu: Emulator, clock: VirtualClock
) -> None:
    emu.set_faults(FaultProfile(rate=0.3, kinds=("500", "503", "429", "reset"), seed=11))
    async with AsyncLume(
        api_key=emu.api_key, base_url=emu.url, retry=RetryPolicy(max_retries=10), clock=clock
    ) as lume:
        # Each run is checked on its own (made once, every row read once, in order): 100 runs
        # make about 570 requests, some 170 of them faulted (each kind on each route, many times).
        runs = [
            await lume.run("customer_cleaner:v1", f"synthetic://chaos-{i}?rows=150&duration=1")
            for i in range(100)
        ]
        emu.advance(5)
        for run in runs:
            await run.refresh()
            assert run.status is RunStatus.SUCCEEDED
            rows = await run.results(page_size=100).collect()
            assert [r["full_name"] for r in rows] == [f"Customer {i}" for i in range(150)]
    stats = emu.stats()
    assert stats["runs_created"] == 100
    assert stats["duplicate_creates_refused"] == 0
    assert len({run.id for run in runs}) == 100
    faults = sum(
        n
        for route in stats["requests"].values()
        for status, n in route.items()
        if status != "200" and status != "201"
    )
    assert faults > 100  # the faults really happened


async def test_a_not_found_is_a_not_found_error_for_other_resources(lume: AsyncLume) -> None:
    with pytest.raises(NotFoundError) as caught:
        await lume.flows.get("missing_flow")
    assert not isinstance(caught.value, RunNotFoundError)


async def test_a_view_with_its_own_budget_settings_draws_on_its_own_budget(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    async with AsyncLume(api_key="k", base_url=scripted.url, clock=clock) as lume:
        stingy = lume.with_options(retry=RetryPolicy(budget_ratio=0.0, budget_floor=0.0))
        scripted.then(BUSY)
        with pytest.raises(ServerError) as caught:
            await stingy.runs.get(RUN_ID)
        assert any("budget" in note for note in caught.value.__notes__)
        scripted.then(BUSY)
        assert (await lume.runs.get(RUN_ID)).id == RUN_ID  # the client's budget is untouched
    assert len(scripted.seen) == 3


async def test_a_view_with_the_clients_budget_settings_shares_its_budget(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    policy = RetryPolicy(budget_ratio=0.0, budget_floor=0.1)  # one retry per ten seconds
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        view = lume.with_options(max_retries=1)
        scripted.then(BUSY, BUSY)
        with pytest.raises(ServerError):
            await view.runs.get(RUN_ID)  # its one retry spends the token, and fails
        scripted.then(BUSY)
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert any("budget" in note for note in caught.value.__notes__)
    assert len(scripted.seen) == 3


async def test_backoff_waits_are_slept_on_the_clients_clock(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    events: list[RetryEvent] = []
    scripted.then(BUSY, BUSY, BUSY)
    async with AsyncLume(
        api_key="k", base_url=scripted.url, retry=recording(events), clock=clock
    ) as lume:
        await lume.runs.get(RUN_ID)
    assert [e.attempt for e in events] == [1, 2, 3]
    assert clock.monotonic() == pytest.approx(sum(e.wait for e in events))


async def test_the_deadline_is_measured_on_the_clients_clock(
    scripted: ScriptedServer, clock: VirtualClock
) -> None:
    busy_for_4_s = Answer(503, {"detail": "busy"}, {"Retry-After": "4"})
    scripted.then(*[busy_for_4_s] * 10)
    policy = RetryPolicy(max_retries=10, deadline=10)
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    # Waits of 4 to 5 s: two fit in the 10 s deadline, a third would not.
    assert len(scripted.seen) == 3
    assert 8 <= clock.monotonic() <= 10
    assert any("deadline" in note for note in caught.value.__notes__)


def test_the_budget_forgets_requests_older_than_its_window(clock: VirtualClock) -> None:
    budget = RetryBudget(ratio=0.5, floor=0.0, clock=clock)
    for _ in range(10):
        budget.deposit()
    assert budget.balance() == pytest.approx(5)
    clock.advance(9.5)
    assert budget.balance() == pytest.approx(5)  # still within the ten-second window
    clock.advance(1)
    assert budget.balance() == pytest.approx(0)
    assert not budget.try_withdraw()


def test_the_budget_floor_is_a_few_retries_per_second_of_window(clock: VirtualClock) -> None:
    budget = RetryBudget(ratio=0.0, floor=0.3, clock=clock)
    assert [budget.try_withdraw() for _ in range(4)] == [True, True, True, False]
    clock.advance(10)  # the withdrawals age out with their slots
    assert budget.try_withdraw()
