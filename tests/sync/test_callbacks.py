"""Callbacks passed through lume_sync run on the thread blocked in the call they report on."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from lume_async.testing import Emulator, FaultProfile
from lume_sync import APIError, Lume, RetryEvent, RetryPolicy, Run, _callbacks, _loop
from lume_sync._call import hand_to_caller

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
FLOW = "customer_cleaner:v1"
#: Retries that wait no time: every attempt of every request fails with a 500 (no Retry-After).
NO_WAIT = {"base_delay": 0.0, "rate_limit_base_delay": 0.0, "max_retries": 2}
ALWAYS_500 = FaultProfile(rate=1.0, kinds=("500",), phase="before")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=50) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def failing() -> Iterator[Emulator]:
    """An emulator that answers every request with a 500."""
    with Emulator(time_scale=50) as emulator:
        emulator.set_faults(ALWAYS_500)
        yield emulator


@pytest.fixture
def lume(emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


def source() -> str:
    """A source path no run has used yet."""
    return f"synthetic://cb-{uuid.uuid4().hex}?rows=5&duration=0.5"


def new_runs(lume: Lume, count: int) -> list[Run]:
    return [lume.runs.create(FLOW, source()) for _ in range(count)]


def in_thread(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` called on a new thread: its result, and that thread's id."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append((fn(), threading.get_ident())))
    worker.start()
    worker.join(30)
    assert len(out) == 1, "the call failed or hung"
    return out[0]  # type: ignore[no-any-return]


BATCHES: dict[str, Callable[[Lume, list[Run], Callable[[int, int, int], None]], object]] = {
    "create_many": lambda lume, runs, cb: lume.runs.create_many(
        [{"flow_version": FLOW, "source_path": source()} for _ in range(4)],
        concurrency=2,
        on_progress=cb,
    ),
    "get_many": lambda lume, runs, cb: lume.runs.get_many([r.id for r in runs], on_progress=cb),
    "cancel_many": lambda lume, runs, cb: lume.runs.cancel_many(
        [r.id for r in runs], concurrency=2, on_progress=cb
    ),
    "wait_all": lambda lume, runs, cb: lume.runs.wait_all(runs, poll_interval=0.05, on_progress=cb),
}


# -- on_progress -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_on_progress_runs_on_the_calling_thread_in_order_before_the_call_returns(
    lume: Lume, batch: str
) -> None:
    runs = new_runs(lume, 4)
    calls: list[tuple[int, int, int, int]] = []

    def on_progress(done: int, total: int, failed: int) -> None:
        calls.append((threading.get_ident(), done, total, failed))

    def call() -> int:
        BATCHES[batch](lume, runs, on_progress)
        return len(calls)

    seen_at_return, caller = in_thread(call)

    assert calls
    assert seen_at_return == len(calls)
    assert {ident for ident, *_ in calls} == {caller}
    assert [done for _, done, _, _ in calls] == sorted(done for _, done, _, _ in calls)
    assert calls[-1][1:3] == (4, 4)


def test_on_progress_sees_the_callers_thread_local_state(lume: Lume) -> None:
    local = threading.local()
    local.bar = "the caller's bar"
    seen: list[str] = []

    lume.runs.get_many(
        [r.id for r in new_runs(lume, 2)], on_progress=lambda *_: seen.append(local.bar)
    )

    assert seen == ["the caller's bar"]


def test_on_progress_can_call_the_sync_api(lume: Lume) -> None:
    runs = new_runs(lume, 3)
    fetched: list[str] = []

    def on_progress(done: int, total: int, failed: int) -> None:
        fetched.append(lume.runs.get(runs[done - 1].id).id)

    lume.runs.cancel_many([r.id for r in runs], concurrency=1, on_progress=on_progress)

    assert fetched == [r.id for r in runs]


def test_an_exception_in_on_progress_ends_the_call_and_is_raised_by_it(lume: Lume) -> None:
    runs = new_runs(lume, 6)
    seen: list[int] = []

    def on_progress(done: int, total: int, failed: int) -> None:
        seen.append(done)
        if done == 2:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        lume.runs.cancel_many([r.id for r in runs], concurrency=1, on_progress=on_progress)

    assert seen == [1, 2]
    assert lume.runs.get(runs[0].id).id == runs[0].id  # the client goes on working


# -- RetryPolicy.on_retry --------------------------------------------------------------------


def retrying_client(emu: Emulator, on_retry: Callable[[RetryEvent], None]) -> Lume:
    return Lume(
        api_key=emu.api_key, base_url=emu.url, retry=RetryPolicy(**NO_WAIT, on_retry=on_retry)
    )


def test_on_retry_runs_on_the_calling_thread(failing: Emulator) -> None:
    events: list[tuple[int, int]] = []

    def call() -> None:
        on_retry = lambda e: events.append((threading.get_ident(), e.attempt))  # noqa: E731
        with retrying_client(failing, on_retry) as lume, pytest.raises(APIError):
            lume.flows.get("customer_cleaner")

    _, caller = in_thread(call)

    assert events == [(caller, 1), (caller, 2)]


def test_on_retry_can_call_the_sync_api(failing: Emulator, lume: Lume) -> None:
    flows: list[str] = []

    def on_retry(event: RetryEvent) -> None:
        flows.append(lume.flows.get("customer_cleaner").name)

    with retrying_client(failing, on_retry) as client, pytest.raises(APIError):
        client.flows.get("customer_cleaner")

    assert flows == ["customer_cleaner", "customer_cleaner"]


def test_an_exception_in_on_retry_is_logged_and_the_retries_go_on(
    failing: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def on_retry(event: RetryEvent) -> None:
        attempts.append(event.attempt)
        raise RuntimeError(f"hook failed after attempt {event.attempt}")

    with (
        caplog.at_level(logging.ERROR, "lume_async.retry"),
        retrying_client(failing, on_retry) as client,
        pytest.raises(APIError),
    ):
        client.flows.get("customer_cleaner")

    assert attempts == [1, 2]
    failures = [
        r for r in caplog.records if r.message == "the on_retry hook raised; the retry goes on"
    ]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == [
        "hook failed after attempt 1",
        "hook failed after attempt 2",
    ]


def test_the_client_hands_back_the_retry_policy_as_given(emu: Emulator) -> None:
    def hook(event: RetryEvent) -> None:
        pass

    def other(event: RetryEvent) -> None:
        pass

    policy = RetryPolicy(max_retries=5, on_retry=hook)
    with Lume(api_key=emu.api_key, base_url=emu.url, retry=policy) as lume:
        view = lume.with_options(retry=RetryPolicy(max_retries=1, on_retry=other))

        assert lume.retry == policy
        assert lume.retry.on_retry is hook
        assert view.retry.on_retry is other
        assert lume.with_options(max_retries=2).retry.on_retry is hook


# -- the hand-off underneath -----------------------------------------------------------------


def test_handed_over_callbacks_run_on_the_caller_in_order_before_run_returns() -> None:
    ran: list[tuple[int, int]] = []

    async def report() -> int:
        for i in range(50):
            assert hand_to_caller(lambda i=i: ran.append((threading.get_ident(), i)))
            if i % 7 == 0:
                await asyncio.sleep(0)
        return len(ran)  # the caller has not necessarily run any yet

    _, caller = in_thread(lambda: _loop.run(report()))

    assert ran == [(caller, i) for i in range(50)]


def test_a_callback_that_raises_cancels_the_coroutine_and_run_raises_it() -> None:
    cleaned_up = threading.Event()

    def fail() -> None:
        raise LookupError("from the callback")

    async def report_then_wait() -> None:
        hand_to_caller(fail)
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.set()

    with pytest.raises(LookupError, match="from the callback"):
        _loop.run(report_then_wait())

    assert cleaned_up.is_set()
    assert _loop.run(asyncio.sleep(0, "still serving")) == "still serving"


def test_a_callback_may_make_blocking_calls_with_callbacks_of_their_own() -> None:
    ran: list[str] = []

    def inner() -> None:
        ran.append("inner")

    def outer() -> None:
        ran.append(_loop.run(report(inner, "nested call returned")))

    async def report(callback: Callable[[], None], result: str) -> str:
        hand_to_caller(callback)
        await asyncio.sleep(0)
        return result

    assert _loop.run(report(outer, "outer call returned")) == "outer call returned"
    assert ran == ["inner", "nested call returned"]


def test_with_no_call_waiting_a_callback_runs_on_a_worker_thread_not_the_loops() -> None:
    ran: list[str] = []
    done = threading.Event()

    async def nested() -> str:
        return "nested call returned"

    def record() -> None:
        ran.append(threading.current_thread().name)
        ran.append(_loop.run(nested()))  # a lume_sync call works there: it is not the loop's
        done.set()

    callback = _callbacks.on_caller(record)
    assert callback is not None

    async def start_task() -> tuple[asyncio.Task[None], asyncio.Event]:
        go = asyncio.Event()

        async def later() -> None:
            await go.wait()
            callback()  # in the context of the call that started it, which has returned

        return asyncio.get_running_loop().create_task(later()), go

    async def release(task: asyncio.Task[None], go: asyncio.Event) -> None:
        go.set()
        await task

    _loop.run(release(*_loop.run(start_task())))
    assert done.wait(10)
    assert ran[0] not in (_loop.THREAD_NAME, threading.current_thread().name)
    assert ran[1] == "nested call returned"
    done.clear()
    callback()  # outside any loop: on this thread
    assert ran[2] == threading.current_thread().name


def test_a_shared_polls_retry_hook_runs_on_a_worker_thread_not_the_loops() -> None:
    heard: list[tuple[str, str]] = []

    def hook(event: RetryEvent) -> None:
        heard.append((threading.current_thread().name, event.route))

    with Emulator(time_scale=100) as emu:
        policy = RetryPolicy(max_retries=8, on_retry=hook)
        with Lume(api_key=emu.api_key, base_url=emu.url, retry=policy) as lume:
            run = lume.run("customer_cleaner:v1", "synthetic://hooked?rows=5&duration=20")
            emu.set_faults(FaultProfile(rate=0.5, kinds=("503",), seed=3, retry_after=0))
            try:
                run.wait(timeout=60, poll_interval=0.05)
            finally:
                emu.set_faults(None)
    polls = [name for name, route in heard if route == "/v1/runs/batch-get"]
    assert polls, heard
    assert _loop.THREAD_NAME not in polls, heard
