"""The fault proxy itself, and what each of its toxics does to a real client.

Each toxic is checked for its effect (time added, connections cut or stalled) and for the
client's answer to it: a typed error when retries are off, a clean recovery when they are on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from lume_async import APIConnectionError, APITimeoutError, AsyncLume, Timeout
from lume_async.testing import Emulator, VirtualClock

from ._proxy import Dice, FaultProxy, Toxics

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"


@pytest.fixture
async def proxy(emu: Emulator) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(emu.port) as p:
        yield p


def _client(emu: Emulator, proxy: FaultProxy, **kwargs: object) -> AsyncLume:
    return AsyncLume(api_key=emu.api_key, base_url=proxy.url, **kwargs)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_decisions() -> None:
    toxics = Toxics(latency=0.01, jitter=0.02, reset_rate=0.2, hang_rate=0.1, seed=5)

    def decisions(dice: Dice) -> list[object]:
        return [(dice.delay(), dice.answer_fault(), dice.cut(100)) for _ in range(200)]

    assert decisions(Dice(toxics)) == decisions(Dice(toxics))
    other = decisions(Dice(Toxics(latency=0.01, jitter=0.02, reset_rate=0.2, seed=6)))
    assert decisions(Dice(toxics)) != other
    delays = [Dice(toxics).delay() for _ in range(50)]
    assert all(0.01 <= d <= 0.03 for d in delays)


async def test_no_toxics_is_a_transparent_pipe(emu: Emulator, proxy: FaultProxy) -> None:
    async with _client(emu, proxy) as lume:
        run = await lume.run(FLOW, "synthetic://clean?rows=30&duration=1")
        await run.wait(poll_interval=0.05)
        rows = await run.results(page_size=7).collect()
    assert len(rows) == 30
    assert proxy.stats.resets == proxy.stats.hangs == 0
    assert proxy.stats.bytes_down > 0 and proxy.stats.bytes_up > 0


async def test_latency_is_added_on_the_way_in_and_out(emu: Emulator, proxy: FaultProxy) -> None:
    run_id = ""
    async with _client(emu, proxy) as lume:
        run_id = (await lume.run(FLOW, "s3://bucket/latency")).id
        proxy.set_toxics(Toxics(latency=0.1, jitter=0.05, seed=1))
        started = time.monotonic()
        await lume.run_status(run_id)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.2  # one chunk each way, at least 0.1 s each


async def test_bandwidth_caps_the_answer_rate(emu: Emulator, proxy: FaultProxy) -> None:
    async with _client(emu, proxy) as lume:
        run = await lume.run(FLOW, "synthetic://wide?rows=100&duration=1")
        await run.wait(poll_interval=0.05)
        proxy.set_toxics(Toxics(bandwidth=40_000))
        before = proxy.stats.bytes_down
        started = time.monotonic()
        page = await run.results_page(page_size=100)
        elapsed = time.monotonic() - started
    sent = proxy.stats.bytes_down - before
    assert len(page.items) == 100
    assert sent > 10_000
    assert elapsed >= 0.9 * sent / 40_000


async def test_a_reset_mid_answer_is_a_connection_error_when_not_retried(
    emu: Emulator, proxy: FaultProxy
) -> None:
    async with _client(emu, proxy, max_retries=0) as lume:
        run = await lume.run(FLOW, "s3://bucket/reset")
        proxy.set_toxics(Toxics(reset_rate=1.0, seed=2))
        with pytest.raises(APIConnectionError) as caught:
            await lume.run_status(run.id)
    assert not isinstance(caught.value, APITimeoutError)
    # No retry by the client; aiohttp itself re-sends an idempotent request once when the
    # connection drops before the answer's status line (where the seeded cut lands depends on
    # the answer's size).
    assert proxy.stats.resets in (1, 2)


@pytest.mark.parametrize("concurrency", [100, 8], ids=["alone", "batched"])
async def test_creates_through_resets_make_one_run_each(
    emu: Emulator, proxy: FaultProxy, clock: VirtualClock, concurrency: int
) -> None:
    proxy.set_toxics(Toxics(reset_rate=0.3, seed=3))
    async with _client(emu, proxy, max_retries=15, clock=clock) as lume:
        outcomes = await lume.runs.create_many(
            [{"flow_version": FLOW, "source_path": f"s3://bucket/reset-{i}"} for i in range(100)],
            concurrency=concurrency,
        )
    assert all(outcome.ok for outcome in outcomes)
    assert proxy.stats.resets > (10 if concurrency == 100 else 0)
    stats = emu.stats()
    assert stats["runs_created"] == 100
    assert stats["idempotent_replays"] > 0  # answers lost after the work were replayed


async def test_a_stalled_answer_times_out_and_the_retry_replays_the_create(
    emu: Emulator, proxy: FaultProxy
) -> None:
    proxy.set_toxics(Toxics(hang_rate=1.0, seed=4))
    async with _client(emu, proxy, timeout=Timeout(total=0.3), max_retries=0) as lume:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await lume.run(FLOW, "s3://bucket/stall", idempotency_key="stall-1")
        assert time.monotonic() - started < 10  # the stall is endless: the 0.3 s timeout ended it
        proxy.set_toxics(Toxics())
        run = await lume.run(FLOW, "s3://bucket/stall", idempotency_key="stall-1")
    stats = emu.stats()
    assert proxy.stats.hangs == 1
    assert stats["runs_created"] == 1  # the stalled create was done once, then replayed
    assert stats["idempotent_replays"] == 1
    assert run.source_path == "s3://bucket/stall"


async def test_a_swallowed_request_never_reaches_the_service(
    emu: Emulator, proxy: FaultProxy
) -> None:
    proxy.set_toxics(Toxics(swallow_rate=1.0))
    async with _client(emu, proxy, timeout=Timeout(total=0.3), max_retries=1) as lume:
        with pytest.raises(APITimeoutError):
            await lume.run(FLOW, "s3://bucket/swallowed")
    assert proxy.stats.swallowed == 2
    assert emu.stats()["requests"] == {}


async def test_a_slow_close_does_not_slow_the_client_down(emu: Emulator, proxy: FaultProxy) -> None:
    proxy.set_toxics(Toxics(slow_close=0.5))
    started = time.monotonic()
    async with _client(emu, proxy) as lume:
        run = await lume.run(FLOW, "s3://bucket/slow-close")
        for _ in range(20):
            await run.refresh()
    # Keep-alive: one connection, closed once, late. Waiting out a slow close for each of the 21
    # requests would take 10.5 s: the bound is half of that, not a measure of the machine.
    assert time.monotonic() - started < 21 * 0.5 / 2
    assert proxy.stats.connections == 1
