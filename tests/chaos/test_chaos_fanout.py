"""Chaos fan-out: 250 runs created, waited for and read back under three kinds of trouble.

(a) the emulator fails a fifth of all requests, before or after doing the work; (b) a fault
proxy adds latency, caps bandwidth, resets and stalls connections; (c) nginx sheds load with
429 + Retry-After. Each ends with exactly 250 runs on the server, one per source path, no
duplicate create accepted, every row read exactly once, and nothing unhandled. And (d) 500 runs
through a proxy whose listings lie on a fifth of their pages: every row and every run is still
read exactly once, in order.

What is checked holds run by run (made once, read once), so the count only has to be large
enough for every kind of trouble to strike many times over: 250 runs make about 750 requests,
over a hundred of them faulted. The lying listings keep 500 runs: every kind of lie must be
told, and the pages walked are where they are told. ``benchmarks/reliability.py`` runs the same
scenarios at scale.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from lume_async import AsyncLume, RetryPolicy, Timeout
from lume_async.testing import Emulator, FaultProfile

from ._fanout import (
    QUICK_BACKOFF,
    Figures,
    RetryCounter,
    all_succeeded,
    audit,
    chaos_policy,
    fan_out,
    requests_for,
)
from ._liar import LyingProxy, walk_runs
from ._nginx import nginx_available, rate_limited_proxy
from ._proxy import FaultProxy, Toxics

pytestmark = pytest.mark.anyio

needs_nginx = pytest.mark.skipif(
    not nginx_available(), reason="nginx is not installed (.ci/run installs it)"
)

N = 250
LIED_TO = 500


@pytest.fixture
async def oracle(emu: Emulator) -> AsyncIterator[AsyncLume]:
    """A client straight to the emulator, used with faults off to check what really happened."""
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


async def _check(
    figures: Figures, emu: Emulator, oracle: AsyncLume, prefix: str, loop_errors: list[object]
) -> None:
    emu.set_faults(None)
    per_path = await audit(oracle, prefix, figures, emu.stats())
    print(figures.row())
    assert figures.failures == []
    assert loop_errors == []
    assert figures.created == N  # the server made exactly N runs...
    assert figures.on_server == N and len(per_path) == N  # ...one per source path
    assert figures.duplicates == 0
    assert figures.duplicates_refused == 0  # no retried create was ever seen as a new one
    assert figures.rows_fetched == figures.rows_expected
    assert figures.rows_wrong == 0  # every run's rows, in order, each exactly once
    assert figures.retries > 0  # the trouble was real


@pytest.mark.timeout(120)
async def test_a_fifth_of_requests_failing_before_or_after_the_work(
    emu: Emulator, oracle: AsyncLume, loop_errors: list[object]
) -> None:
    emu.set_faults(
        FaultProfile(
            rate=0.2,
            kinds=("500", "502", "503", "429", "reset", "truncate", "delay"),
            phase="both",
            seed=20,
            delay=0.05,
            retry_after=0.01,
        )
    )
    counter = RetryCounter()
    figures = Figures("emulator faults 20%", N)
    async with AsyncLume(
        api_key=emu.api_key, base_url=emu.url, retry=chaos_policy(counter, **QUICK_BACKOFF)
    ) as lume:
        runs = await fan_out(lume, requests_for(N, "faults"), figures)
    figures.retries = counter.total
    assert all_succeeded(runs)
    faulted = sum(
        n
        for by_status in emu.stats()["requests"].values()
        for status, n in by_status.items()
        if not status.startswith("2")
    )
    assert faulted > 0.1 * N
    await _check(figures, emu, oracle, "faults", loop_errors)


@pytest.mark.timeout(120)
async def test_a_hostile_network_between_client_and_service(
    emu: Emulator, oracle: AsyncLume, loop_errors: list[object]
) -> None:
    toxics = Toxics(
        latency=0.001,
        jitter=0.004,
        bandwidth=2_000_000,
        reset_rate=0.03,
        hang_rate=0.02,  # per answer chunk: a dozen or more stalls over the fan-out
        swallow_rate=0.01,
        slow_close=0.02,
        seed=21,
    )
    counter = RetryCounter()
    figures = Figures("fault proxy", N)
    async with FaultProxy(emu.port, toxics) as proxy:
        # A stalled answer only ends by the client's timeout: keep it short.
        async with AsyncLume(
            api_key=emu.api_key,
            base_url=proxy.url,
            timeout=Timeout(total=0.5, connect=0.5),
            retry=chaos_policy(counter, **QUICK_BACKOFF),
        ) as lume:
            runs = await fan_out(lume, requests_for(N, "proxy"), figures)
        stats = proxy.stats
    figures.retries = counter.total
    assert all_succeeded(runs)
    assert stats.resets > 0 and stats.hangs > 0
    assert counter.by_cause["APITimeoutError"] > 0  # the stalls were timed out and retried
    await _check(figures, emu, oracle, "proxy", loop_errors)


@needs_nginx
@pytest.mark.timeout(150)
async def test_a_real_rate_limiter_in_front_of_the_service(
    emu: Emulator, oracle: AsyncLume, loop_errors: list[object]
) -> None:
    counter = RetryCounter()
    figures = Figures("nginx limit_req", N)
    # Real pacing: the client sleeps what nginx's 429s say, here 100 ms (retry-after-ms); the
    # test that follows waits out whole seconds of Retry-After. A burst well under the 32
    # concurrent creates of the first wave: the limit bites however slowly the machine runs.
    with rate_limited_proxy(emu.port, rate=400, burst=10, retry_after_ms=100) as nginx:
        async with AsyncLume(
            api_key=emu.api_key, base_url=nginx.url, retry=chaos_policy(counter)
        ) as lume:
            runs = await fan_out(lume, requests_for(N, "nginx"), figures, page_size=100)
    figures.retries = counter.total
    assert all_succeeded(runs)
    assert set(counter.by_cause) == {"RateLimitError"}
    assert "429" not in str(emu.stats()["requests"])  # every 429 came from nginx
    await _check(figures, emu, oracle, "nginx", loop_errors)


@needs_nginx
@pytest.mark.timeout(60)
async def test_nginx_429s_are_waited_out_as_retry_after_says(emu: Emulator) -> None:
    counter = RetryCounter()
    with rate_limited_proxy(emu.port, rate=50, burst=10, retry_after=1) as nginx:
        async with AsyncLume(
            api_key=emu.api_key, base_url=nginx.url, retry=chaos_policy(counter)
        ) as lume:
            started = time.monotonic()
            # As many requests in flight as runs: one create per request.
            outcomes = await lume.runs.create_many(requests_for(60, "paced"), concurrency=60)
            elapsed = time.monotonic() - started
    assert all(outcome.ok for outcome in outcomes)
    assert emu.stats()["runs_created"] == 60
    assert counter.by_cause["RateLimitError"] > 0
    # 60 creates at 50/s with a burst of 10 cannot take less than (60 - 10) / 50 s; each 429
    # was answered with a 1 s wait, so the client never hammered nginx in between.
    assert elapsed >= (60 - 10) / 50
    assert counter.total <= 60 * (elapsed + 1)  # at most one retry per worker per second


async def test_a_create_retried_while_its_first_attempt_is_still_handled_gets_the_run(
    emu: Emulator,
) -> None:
    # Real (short) backoff: the point is that the retries outlast the first attempt.
    # The service is slower than the client's timeout: the first attempt times out on the
    # client while the service is still working on it, and the retry arrives in the meantime.
    emu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=0.5))
    async with AsyncLume(
        api_key=emu.api_key,
        base_url=emu.url,
        timeout=Timeout(total=0.2, connect=0.2),
        retry=RetryPolicy(max_retries=10, base_delay=0.1),
    ) as lume:
        run = await lume.run("customer_cleaner:v1", "s3://bucket/slow-service")
    assert run.id.startswith("run_")
    assert emu.stats()["runs_created"] == 1


@pytest.mark.timeout(120)
async def test_a_service_whose_listings_lie(
    emu: Emulator, oracle: AsyncLume, loop_errors: list[object]
) -> None:
    counter = RetryCounter()
    figures = Figures("lying listings", LIED_TO)
    async with (
        LyingProxy(emu.port, rate=0.2, seed=22) as liar,
        AsyncLume(api_key=emu.api_key, base_url=liar.url, retry=chaos_policy(counter)) as lume,
    ):
        await fan_out(lume, requests_for(LIED_TO, "lying"), figures, read_attempts=100)
        listed, refused = await walk_runs(lume, page_size=20)
    truth = [run.id async for run in oracle.runs.list(page_size=100)]
    assert listed == truth  # every run once, in order, through the lies
    assert refused > 0 and figures.refused > 0  # the lies were seen through
    assert {"page", "pages", "size", "short", "cursor_back", "empty_points_on"} <= set(liar.told)
    per_path = await audit(oracle, "lying", figures, emu.stats())
    assert figures.failures == [] and loop_errors == []
    assert figures.created == figures.on_server == len(per_path) == LIED_TO
    assert figures.rows_fetched == figures.rows_expected and figures.rows_wrong == 0
