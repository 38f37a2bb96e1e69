"""What a long-lived client holds: bounded by what is alive, never by how much it was used.

A service keeps one client for days and makes millions of calls with it, or makes a client per
job, thread or request. Each test here repeats one operation many times (clients made and closed,
requests made from short-lived tasks and threads, event streams opened and dropped, views made
per call, waits cancelled) and then counts what is still held: the objects of a kind still alive,
descriptors, listeners, registry sizes. What is held must not grow with the number of operations
once their handles are gone.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import random
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from lume_async import AsyncLume, RetryPolicy
from lume_async._deadlines import Deadlines
from lume_async._waiting import Waiting
from lume_async.testing import Emulator, VirtualClock
from lume_async.webhooks import ReplayGuard, WebhookEventStream, WebhookReceiver
from lume_sync import Lume

FLOW = "customer_cleaner:v1"
URL = "http://127.0.0.1:9"  # never asked: nothing here sends a request


def _alive(kind: type) -> int:
    """How many objects of exactly ``kind`` the collector can reach."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


class _Marker:
    """Something a caller keeps in a context variable (a request, a user, a trace span)."""


_request: contextvars.ContextVar[_Marker] = contextvars.ContextVar("request")


# -- request deadlines ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_clients_made_and_closed_leave_no_deadline_timer_on_the_loop(emu: Emulator) -> None:
    before = _alive(Deadlines)
    for _ in range(20):
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
            await lume.flows.get("customer_cleaner")
        del lume
    assert _alive(Deadlines) <= before


@pytest.mark.anyio
async def test_a_finished_request_keeps_nothing_of_its_callers_context(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        # The connection the jobs reuse, opened by a call without a time limit (so no timer).
        unlimited = lume.with_options(timeout=None, retry=RetryPolicy(deadline=None))
        await unlimited.flows.get("customer_cleaner")
        markers: list[weakref.ref[_Marker]] = []

        async def job() -> None:
            marker = _Marker()
            markers.append(weakref.ref(marker))
            _request.set(marker)
            await lume.flows.get("customer_cleaner")

        for _ in range(5):
            await asyncio.get_running_loop().create_task(job())
        await unlimited.flows.get("customer_cleaner")  # and a call after them, from here
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        assert sum(ref() is not None for ref in markers) == 0


def _eventfds() -> int:
    """This process's eventfd descriptors (lume_sync's doorbells are eventfds on Linux)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        count += target == "anon_inode:[eventfd]"
    return count


@pytest.fixture(scope="module")
def threaded_emu() -> Iterator[Emulator]:
    with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.mark.skipif(
    not hasattr(os, "eventfd") or not Path("/proc/self/fd").exists(), reason="Linux"
)
def test_threads_that_used_a_client_and_ended_leave_no_descriptor(threaded_emu: Emulator) -> None:
    def job() -> None:
        with Lume(api_key=threaded_emu.api_key, base_url=threaded_emu.url) as lume:
            lume.flows.get("customer_cleaner")

    def threads(n: int) -> None:
        for _ in range(n):
            thread = threading.Thread(target=job)
            thread.start()
            thread.join(30)

    threads(3)  # the loop thread, its executor, the first bells
    gc.collect()
    before = _eventfds()
    threads(30)
    gc.collect()
    assert _eventfds() <= before + 2


# -- webhook event streams -----------------------------------------------------------------------

SECRET = "whsec_a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"


def test_event_streams_dropped_unclosed_are_let_go() -> None:
    receiver = WebhookReceiver(SECRET)
    before = _alive(WebhookEventStream)
    for _ in range(50):
        stream = receiver.events(max_queue=10)
        del stream
    assert _alive(WebhookEventStream) <= before


# -- the shared poller ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_waits_cancelled_again_and_again_on_one_run_leave_only_the_live_wait(
    vlume: AsyncLume, clock: VirtualClock
) -> None:
    run = await vlume.run(FLOW, "synthetic://growth-cancelled?rows=1&duration=100000")
    keeper = asyncio.ensure_future(run.wait(timeout=10**6, poll_interval=30))
    await clock.sleep(1)
    waiting = vlume._core.waiting
    tasks = len(asyncio.all_tasks())
    for i in range(1000):
        # Each with a deadline of its own (a timer each) and a poll interval of its own.
        wait = asyncio.ensure_future(run.wait(timeout=3600 + i, poll_interval=1 + i % 7))
        await asyncio.sleep(0)
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
    await clock.sleep(1)
    watches = waiting._watches
    assert (len(watches._live), len(watches._by_run)) == (1, 1)
    assert list(watches._intervals) == [30]
    # Cancelled timers are dropped in bulk once they outnumber the live ones (past 64).
    assert len(waiting._timers._heap) <= 2 * 64 + 2
    assert len(asyncio.all_tasks()) <= tasks
    keeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keeper


# -- the replay guard ----------------------------------------------------------------------------


def test_a_replay_guard_holds_at_most_its_window_of_new_ids_however_long_it_runs() -> None:
    """Ten new events a second for over half an hour: the guard holds the last window of them
    (each id is kept until the later of its ttl and its signed freshness, here up to 550 s),
    never all of them, far below ``max_entries``."""
    guard = ReplayGuard(ttl=60)
    rng = random.Random(7)
    start = 1_767_225_600.0
    most = 0
    for i in range(20_000):
        now = start + i / 10
        assert guard.check_and_add(f"evt_{i}", now=now, keep_until=now + rng.uniform(0, 550))
        most = max(most, len(guard))
    assert most <= 10 * 550 + 1


def test_clients_given_a_receiver_and_dropped_unclosed_are_let_go() -> None:
    receiver = WebhookReceiver(SECRET)
    before = _alive(Waiting)
    for _ in range(50):
        AsyncLume(api_key="lume_growth_key_0123456789abcdef", base_url=URL, webhooks=receiver)
    assert _alive(Waiting) <= before
