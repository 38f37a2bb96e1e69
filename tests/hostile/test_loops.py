"""One client across event loops: reuse keeps fds and memory flat, misuse fails at once.

A service that calls ``asyncio.run()`` per job with one long-lived client must not keep a pool
of sockets per loop it ever ran on. A client touched from a second loop while its first is still
open refuses at once, and leaves what the first loop was doing alone. A waiter that leaves takes
the poller's request in flight with it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from lume_async import AsyncLume, LumeError, RunStatus, RunTimeoutError
from lume_async.testing import Emulator, VirtualClock

from ..chaos._processes import EmulatorProcess
from ._servers import RawServer, json_answer, silence

FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")

Runner = Callable[[Coroutine[Any, Any, None]], None]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


def _with_runner(coro: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner() as runner:
        runner.run(coro)


def _with_anyio(coro: Coroutine[Any, Any, None]) -> None:
    async def main() -> None:
        await coro

    anyio.run(main)


def _by_hand(coro: Coroutine[Any, Any, None]) -> None:
    # The pattern older code uses, shutting async generators down before closing the loop.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


RUNNERS: dict[str, Runner] = {
    "asyncio.run": asyncio.run,
    "asyncio.Runner": _with_runner,
    "anyio.run": _with_anyio,
    "new_event_loop by hand": _by_hand,
}


@pytest.fixture(scope="module")
def service() -> Iterator[Emulator]:
    with Emulator(time_scale=100) as emulator:  # its own thread: every test loop here is ours
        yield emulator


@pytest.fixture(scope="module")
def remote() -> Iterator[EmulatorProcess]:
    """The service in a process of its own: this process's descriptors and memory are the
    client's alone (an emulator thread here closes its side of a connection when it gets to it).
    """
    with EmulatorProcess(time_scale=100) as emulator:
        yield emulator


#: Loops after the warm-up, per runner. A descriptor kept per loop shows after any number of
#: loops. Memory is measured twice. The process's RSS over LOOPS loops may grow by at most 10 KiB
#: a loop (what a session and its connector would leave behind if one were kept per loop), and
#: never by more than 5% of where it started. Free heap space hides a smaller leak from RSS until
#: it is used up, so Python's own allocations are traced over TRACED_LOOPS more loops: they count
#: every byte kept, and may grow by at most TRACED_BOUND a loop (a few KB kept per loop fails,
#: where RSS needed a thousand loops to show it; caches still filling add ~200 bytes a loop).
LOOPS = 100
TRACED_LOOPS = 50
LEAK_BOUND = 10 << 10
TRACED_BOUND = 1 << 10


def _reuse(lume: AsyncLume, run: Runner, times: int) -> None:
    async def use() -> None:
        await lume.flows.get("customer_cleaner")

    for _ in range(times):
        run(use())


def _traced_growth(lume: AsyncLume, run: Runner, times: int) -> int:
    """What ``times`` more loops leave allocated by Python, in bytes, once collected."""
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        _reuse(lume, run, times)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_one_client_across_hundreds_of_loops_keeps_fds_and_memory_flat(
    remote: EmulatorProcess, runner: str
) -> None:
    lume = AsyncLume(api_key=remote.api_key, base_url=remote.url)
    _reuse(lume, RUNNERS[runner], 50)  # warm up: imports, caches, allocator arenas
    gc.collect()
    fds, rss = _fds(), _rss()
    _reuse(lume, RUNNERS[runner], LOOPS)
    gc.collect()
    assert _fds() <= max(fds * 1.05, fds + 1)
    assert _rss() <= min(rss + LOOPS * LEAK_BOUND, rss * 1.05)
    assert _traced_growth(lume, RUNNERS[runner], TRACED_LOOPS) <= TRACED_LOOPS * TRACED_BOUND
    assert _fds() <= max(fds * 1.05, fds + 1)
    asyncio.run(lume.aclose())
    assert _fds() <= fds


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # sockets left to the collector
def test_a_loop_closed_without_shutting_down_is_survived_with_a_warning(
    service: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    def careless(coro: Coroutine[Any, Any, None]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(coro)
        finally:
            loop.close()

    lume = AsyncLume(api_key=service.api_key, base_url=service.url)
    _reuse(lume, careless, 20)
    fds = _settled_fds()
    # A socket kept per loop adds one per loop, and a warning per loop would show as many: 50
    # loops show either as plainly as more would.
    _reuse(lume, careless, 50)
    assert _settled_fds() <= max(fds * 1.05, fds + 1)
    assert caplog.text.count("shutdown_asyncgens") == 1  # once per client, not once per loop
    assert "aclose()" in caplog.text  # and it names the fix
    asyncio.run(lume.aclose())
    gc.collect()  # the last pool's sockets, while their warnings are still ignored


def _settled_fds() -> int:
    """The fd count once collected sockets are closed, and the emulator (on its own thread,
    in this process) has closed its ends of them."""
    gc.collect()
    count = _fds()
    for _ in range(100):
        time.sleep(0.05)
        now = _fds()
        if now == count:
            break
        count = now
    return count


def test_a_second_open_loop_is_refused_and_the_first_loops_wait_still_ends(
    service: Emulator,
) -> None:
    lume = AsyncLume(api_key=service.api_key, base_url=service.url)
    waiting = threading.Event()
    seen: dict[str, Any] = {}

    async def first() -> None:
        run = await lume.run(FLOW, "synthetic://two-loops?rows=3&duration=3600")
        seen["run"] = run
        waiting.set()
        await run.wait(timeout=60, poll_interval=0.02)
        seen["status"] = run.status
        await lume.aclose()

    thread = threading.Thread(target=asyncio.run, args=(first(),))
    thread.start()
    assert waiting.wait(30)
    run = seen["run"]

    async def second() -> None:
        calls = {
            "get": lambda: lume.runs.get(run.id),
            "wait": lambda: run.wait(timeout=5, poll_interval=0.02),
            "wait_all": lambda: lume.runs.wait_all([run], timeout=5, poll_interval=0.02),
            "flows": lambda: lume.flows.list().collect(),
        }
        for name, call in calls.items():
            with pytest.raises(LumeError, match="another event loop") as caught:
                await call()
            assert caught.type is LumeError, name

    asyncio.run(second())
    service.advance(7200)  # now the run ends: the first loop's wait must hear it
    thread.join(30)
    assert not thread.is_alive()
    assert seen["status"] is RunStatus.SUCCEEDED


# -- the poller's request in flight -----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancelled", "timed out"])
async def test_the_last_waiter_leaving_takes_the_pollers_request_with_it(how: str) -> None:
    running = {
        "id": RUN_ID,
        "status": "TRANSFORMING",
        "flow_version": FLOW,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    clock = VirtualClock(autojump=how == "timed out")  # else it stands still: no timeout
    async with (
        RawServer(json_answer(running)) as server,
        AsyncLume(api_key="k" * 16, base_url=server.url, clock=clock) as lume,
    ):
        run = await lume.runs.get(RUN_ID)
        server.shape = silence  # the poller's batch-get never gets an answer
        waiter = anyio.CancelScope()
        async with anyio.create_task_group() as tg:

            async def wait() -> None:
                with waiter:
                    if how == "cancelled":
                        await run.wait(timeout=3600, poll_interval=1)
                    else:
                        with pytest.raises(RunTimeoutError):
                            await run.wait(timeout=5, poll_interval=1)

            tg.start_soon(wait)
            with anyio.fail_after(30):  # in real time: only a guard against hanging
                await server.until(lambda: server.requests == 2)
                if how == "cancelled":
                    waiter.cancel()
                # The request's own timeout is 60 s; the poller must not wait for it.
                await server.until(lambda: server.open_connections == 0)
            assert not lume.is_closed  # the client is still open: the poller let go by itself
        assert server.requests == 2


def test_loops_that_shut_down_properly_log_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with Emulator(time_scale=100) as service:
        lume = AsyncLume(api_key=service.api_key, base_url=service.url)
        _reuse(lume, asyncio.run, 5)
        asyncio.run(lume.aclose())
    assert caplog.text == ""
