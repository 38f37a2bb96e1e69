"""One client shared by many threads, and callbacks that no blocked call waits for.

Callbacks handed to a worker thread (a shared poll's ``on_retry``, a callback from a task that
outlived its call) may block, raise or make lume_sync calls of their own: none of that may hold up
the private loop's own work (resolving host names on asyncio's loop), other threads' calls, or the
loop's shutdown. Many threads share a client, make and close clients, and die mid-iteration
without leaving threads, descriptors or cross-talk behind.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lume_async.testing import Emulator, FaultProfile
from lume_sync import (
    Lume,
    RetryEvent,
    RetryPolicy,
    Run,
    SyncFacadeError,
    _callbacks,
    _loop,
    _loop_thread,
)

pytestmark = pytest.mark.timeout(60)

FLOW = "customer_cleaner:v1"
THREADS = 16
#: More callbacks than the private loop's default executor has workers (``min(32, cpus + 4)``).
MANY = 40


def source(rows: int = 3, duration: float = 0.2) -> str:
    return f"synthetic://many-{uuid.uuid4().hex}?rows={rows}&duration={duration}"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=50) as emulator:
        yield emulator


@pytest.fixture
def asyncio_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh private loop of asyncio's own kind, which resolves host names on its executor;
    shut down after the test."""
    monkeypatch.setattr(_loop_thread, "new_event_loop", asyncio.new_event_loop)
    _loop.shutdown()
    yield
    _loop.shutdown()


def fire_unowned(callback: Callable[[], None], count: int) -> None:
    """Call ``callback`` (wrapped for lume_sync) ``count`` times from a task outside any call,
    as a shared poll calls ``on_retry``: each goes to a worker thread."""
    wrapped = _callbacks.on_caller(callback)
    assert wrapped is not None

    async def fire() -> None:
        async def later() -> None:
            await asyncio.sleep(0)
            for _ in range(count):
                wrapped()

        asyncio.get_running_loop().create_task(later())

    _loop.run(fire())


# -- callbacks on worker threads -------------------------------------------------------------


@pytest.mark.usefixtures("asyncio_loop")
def test_blocked_worker_callbacks_do_not_stop_other_threads_from_connecting(
    emu: Emulator,
) -> None:
    release = threading.Event()
    running: list[int] = []

    def block() -> None:
        running.append(1)
        release.wait(30)

    try:
        fire_unowned(block, MANY)
        deadline = time.monotonic() + 5
        while not running and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let every worker there is take one
        url = emu.url.replace("127.0.0.1", "localhost")  # a name to resolve, as the service's
        with Lume(api_key=emu.api_key, base_url=url, timeout=5, max_retries=0) as lume:
            assert lume.flows.get("customer_cleaner").name == "customer_cleaner"
    finally:
        release.set()


@pytest.mark.usefixtures("asyncio_loop")
def test_worker_callbacks_making_lume_sync_calls_that_connect_all_finish(emu: Emulator) -> None:
    url = emu.url.replace("127.0.0.1", "localhost")
    answers: list[str] = []
    done = threading.Semaphore(0)

    def nested() -> None:
        try:
            with Lume(api_key=emu.api_key, base_url=url, timeout=5, max_retries=0) as lume:
                answers.append(lume.flows.get("customer_cleaner").name)
        finally:
            done.release()

    fire_unowned(nested, 12)
    for _ in range(12):
        assert done.acquire(timeout=20), answers
    assert answers == ["customer_cleaner"] * 12


def test_shutdown_does_not_wait_for_a_blocked_worker_callback() -> None:
    release = threading.Event()
    started = threading.Event()

    def block() -> None:
        started.set()
        release.wait(30)

    try:
        fire_unowned(block, 1)
        assert started.wait(10)
        began = time.monotonic()
        _loop.shutdown(timeout=3)  # raised SyncFacadeError: the loop waited for the callback
        assert time.monotonic() - began < 3
        assert _loop.run(asyncio.sleep(0, "fresh")) == "fresh"
    finally:
        release.set()
        _loop.shutdown()


def test_worker_callbacks_that_raise_or_close_the_client_leave_other_threads_working(
    emu: Emulator,
) -> None:
    other = Lume(api_key=emu.api_key, base_url=emu.url)
    closed = threading.Event()

    def close_other() -> None:
        other.close()
        closed.set()

    def boom() -> None:
        raise RuntimeError("a callback's own failure")

    with Lume(api_key=emu.api_key, base_url=emu.url) as lume:
        fire_unowned(boom, MANY)
        fire_unowned(close_other, 3)
        assert closed.wait(10)
        with ThreadPoolExecutor(8) as pool:
            names = list(pool.map(lambda _: lume.flows.get("customer_cleaner").name, range(16)))
    assert names == ["customer_cleaner"] * 16
    with pytest.raises(SyncFacadeError, match="closed"):
        other.flows.get("customer_cleaner")


def test_shared_poll_retry_hooks_that_block_and_call_back_do_not_stall_waits() -> None:
    gate = threading.Event()
    heard: list[str] = []

    with Emulator(time_scale=100) as emu:

        def hook(event: RetryEvent) -> None:
            heard.append(threading.current_thread().name)
            if event.route == "/v1/runs/batch-get":
                lume.flows.get("customer_cleaner")  # a lume_sync call from the worker thread
                gate.wait(0.5)  # and a slow one

        policy = RetryPolicy(max_retries=20, base_delay=0.0, on_retry=hook)
        with Lume(api_key=emu.api_key, base_url=emu.url, retry=policy) as lume:
            runs = [lume.run(FLOW, source(duration=2)) for _ in range(THREADS)]
            emu.set_faults(FaultProfile(rate=0.5, kinds=("503",), seed=5, retry_after=0))
            try:
                with ThreadPoolExecutor(THREADS) as pool:
                    ended = list(
                        pool.map(lambda r: r.wait(timeout=40, poll_interval=0.05).id, runs)
                    )
            finally:
                emu.set_faults(None)
                gate.set()
    assert ended == [r.id for r in runs]
    assert _loop.THREAD_NAME not in heard


# -- one client, many threads -------------------------------------------------------------------


def test_many_threads_mixing_calls_each_get_their_own_results_and_callbacks(
    emu: Emulator,
) -> None:
    with Lume(api_key=emu.api_key, base_url=emu.url) as lume:
        barrier = threading.Barrier(THREADS)
        foreign: list[tuple[int, int]] = []

        def work(i: int) -> tuple[list[str], list[str], int, int]:
            me = threading.get_ident()

            def progress(done: int, total: int, failed: int) -> None:
                if threading.get_ident() != me:
                    foreign.append((i, threading.get_ident()))

            barrier.wait()
            labels = [f"t{i}-{k}-{uuid.uuid4().hex[:6]}" for k in range(3)]
            runs: list[Run] = [lume.run(FLOW, source(rows=i + 1), label=lab) for lab in labels]
            waited = lume.runs.wait_all(runs, poll_interval=0.05, on_progress=progress)
            got = lume.runs.get_many([r.id for r in runs], on_progress=progress)
            order = [r.label or "" for r in lume.runs.as_completed(runs, poll_interval=0.05)]
            rows = sum(1 for _ in waited[0].results(page_size=1))
            return [o.unwrap().label or "" for o in got], sorted(order), rows, i + 1

        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(work, i) for i in range(THREADS)]
            results = [f.result(timeout=50) for f in futures]
    assert foreign == []
    for labels, completed, rows, wanted_rows in results:
        assert sorted(labels) == completed
        assert rows == wanted_rows


def test_many_threads_making_and_closing_clients_leave_no_threads_or_descriptors(
    emu: Emulator,
) -> None:
    def one(_: int) -> str:
        with Lume(api_key=emu.api_key, base_url=emu.url) as lume:
            return lume.flows.get("customer_cleaner").name

    one(0)  # the private loop and its executor are up
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(3):
        with ThreadPoolExecutor(THREADS) as pool:
            assert set(pool.map(one, range(THREADS * 2))) == {"customer_cleaner"}
    gc.collect()
    time.sleep(0.2)
    assert threading.active_count() <= threads
    assert open_fds() <= fds + 2  # a caller's doorbell per thread is kept with the thread


def test_threads_dying_mid_iteration_leave_the_clients_connections_free(emu: Emulator) -> None:
    with Lume(api_key=emu.api_key, base_url=emu.url, max_connections=4) as lume:
        run = lume.run(FLOW, source(rows=50)).wait(timeout=30, poll_interval=0.05)
        died: list[BaseException] = []

        def die(_: int) -> None:
            rows: Any = iter(run.results(page_size=2))
            next(rows)
            raise LookupError("the thread's own bug")

        def record(args: threading.ExceptHookArgs) -> None:
            died.append(args.exc_value or RuntimeError())

        hook, threading.excepthook = threading.excepthook, record
        try:
            threads = [threading.Thread(target=die, args=(i,)) for i in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)
        finally:
            threading.excepthook = hook
        gc.collect()
        assert len(died) == THREADS
        # Four connections in all: one left checked out would stall these.
        with ThreadPoolExecutor(8) as pool:
            counts = list(pool.map(lambda _: len(list(run.results(page_size=25))), range(8)))
        assert counts == [50] * 8


# -- callbacks no call waits for: one at a time, in order ------------------------------------------


def test_callbacks_no_call_waits_for_run_one_at_a_time_in_the_order_given() -> None:
    ran: list[int] = []
    inside = 0
    most = 0
    guard = threading.Lock()
    finished = threading.Event()

    def record(n: int) -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.005)  # long enough for a second worker, were there one, to start
        with guard:
            inside -= 1
            ran.append(n)
        if n == 19:
            finished.set()

    callback = _callbacks.on_caller(record)
    assert callback is not None

    async def outlived() -> None:  # a task whose call has returned: nobody waits for it
        async def later() -> None:
            await asyncio.sleep(0)
            for n in range(20):
                callback(n)

        asyncio.get_running_loop().create_task(later())

    _loop.run(outlived())
    assert finished.wait(10)
    assert ran == list(range(20))
    assert most == 1


def test_an_awaited_callback_no_call_waits_for_hands_its_error_to_the_code_awaiting_it() -> None:
    def refuse(*_: object) -> None:
        raise RuntimeError("stop the export")

    callback = _callbacks.on_caller(refuse, awaited=True)
    assert callback is not None

    async def outlived() -> asyncio.Task[str]:
        async def later() -> str:
            await asyncio.sleep(0)
            try:
                await callback(1, 1, 0)
            except RuntimeError as exc:
                return str(exc)
            return "returned"

        return asyncio.get_running_loop().create_task(later())

    task = _loop.run(outlived())

    async def outcome() -> str:
        return await task

    assert _loop.run(outcome(), timeout=10) == "stop the export"
