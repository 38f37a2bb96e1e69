"""The blocking facade (lume_sync) at its edges, over real sockets.

Coroutines made lazily from many threads; iterators crossing threads, outliving their client
or a fork; a client closed from another thread during a call; errors as the caller sees them.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import os
import re
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import lume_async
from lume_async import AsyncLume
from lume_async._connections import Connections
from lume_async.testing import Emulator, FaultProfile
from lume_sync import Lume, RetryPolicy, Run, RunRequest, SyncFacadeError, _loop

from ._support import in_forked_child

FLOW = "customer_cleaner:v1"
UNKNOWN_RUN = "run_01HY0000000000000000000000"
FORK_OK = pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")


def synthetic(name: str, rows: int = 5, duration: float = 0.2) -> str:
    return f"synthetic://{name}?rows={rows}&duration={duration}"


def in_use(lume: Lume) -> int:
    session = lume._async._core.transport.session
    assert isinstance(session, Connections)
    return session.in_use


def finished_run(lume: Lume, name: str, rows: int = 25) -> Run:
    return lume.run(FLOW, synthetic(name, rows=rows)).wait(timeout=30, poll_interval=0.05)


# -- arguments: made once, on the calling thread, each call with its own ------------------------


@pytest.mark.timeout(60)
def test_sixteen_threads_creating_and_getting_runs_each_get_their_own(lume: Lume) -> None:
    barrier = threading.Barrier(16)

    def work(i: int) -> list[tuple[object, ...]]:
        barrier.wait()
        seen = []
        for k in range(4):
            label, meta = f"t{i}-{k}", {"i": i, "k": k}
            made = lume.runs.create(
                FLOW, synthetic(f"mt{i}-{k}"), label=label, tags=[label], run_metadata=meta
            )
            got = lume.runs.get(made.id)
            seen.append((label, made.label, got.label, made.tags, got.run_metadata, meta))
        return seen

    with ThreadPoolExecutor(16) as pool:
        results = [row for rows in pool.map(work, range(16)) for row in rows]

    assert len(results) == 64
    for label, made_label, got_label, tags, got_meta, meta in results:
        assert made_label == got_label == label
        assert tags == (label,)
        assert got_meta == meta


@pytest.mark.timeout(30)
def test_one_shot_iterable_arguments_are_consumed_exactly_once(lume: Lume) -> None:
    # The coroutine factory must be called once: a second call would find the generators empty.
    run = lume.runs.create(FLOW, synthetic("oneshot"), tags=(t for t in ["a", "b"]))
    assert run.tags == ("a", "b")
    assert lume.runs.update(run.id, tags=iter(["c"])).tags == ("c",)


@pytest.mark.timeout(30)
def test_mutating_the_requests_from_on_progress_does_not_change_what_is_sent(lume: Lume) -> None:
    requests = [RunRequest(FLOW, source_path=synthetic(f"mut{i}")) for i in range(4)]
    wanted = [r.source_path for r in requests]

    def meddle(*_: object) -> None:  # runs on this thread while the call is in flight
        requests.clear()
        requests.append(RunRequest(FLOW, source_path=synthetic("WRONG")))

    outcomes = lume.runs.create_many(requests, concurrency=1, on_progress=meddle)

    assert [o.unwrap().source_path for o in outcomes] == wanted


# -- iterators -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_an_iterator_crosses_threads_and_dropped_half_way_releases_its_connection(
    lume: Lume,
) -> None:
    run = finished_run(lume, "xthreads", rows=300)
    it = iter(run.results(page_size=10))  # 30 pages, fetched ahead
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.extend(next(it) for _ in range(15)))
    consumer.start()
    consumer.join(10)
    assert len(got) == 15

    def drop() -> None:
        nonlocal it
        del it
        gc.collect()

    dropper = threading.Thread(target=drop)
    dropper.start()
    dropper.join(10)

    assert in_use(lume) == 0
    assert not [t for t in asyncio.all_tasks(_loop.get_loop()) if not t.done()]
    assert len(run.results(page_size=100).collect()) == 300


@pytest.mark.timeout(30)
def test_an_iterator_closed_after_its_client_closed_ends_quietly(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    it = iter(finished_run(lume, "closedit").results(page_size=10))
    next(it)
    lume.close()
    it.close()  # no error, no warning (warnings are errors here)
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.timeout(30)
def test_iterating_on_after_close_raises_sync_facade_error(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    it = iter(finished_run(lume, "aftercl").results(page_size=10))
    next(it)
    lume.close()

    with pytest.raises(SyncFacadeError):
        list(it)


@pytest.mark.timeout(30)
def test_an_iterator_not_started_before_close_raises_sync_facade_error(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    pages = finished_run(lume, "notstarted").results(page_size=10).pages()
    lume.close()
    with pytest.raises(SyncFacadeError, match="closed"):
        next(pages)


# -- close -----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_close_twice_and_from_two_threads_at_once_is_fine(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    lume.flows.get("customer_cleaner")
    errors: list[BaseException] = []

    def close() -> None:
        try:
            lume.close()
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    lume.close()
    assert errors == [] and lume.is_closed


@pytest.mark.timeout(30)
def test_a_client_used_inside_with_refuses_every_kind_of_call_outside(emu: Emulator) -> None:
    with Lume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = lume.run(FLOW, synthetic("withuse"))
        listing = lume.runs.list(page_size=5)
        view = lume.with_options(timeout=5)
    calls: list[Callable[[], object]] = [
        lambda: lume.run_status(run.id),
        run.refresh,
        listing.collect,
        lambda: next(iter(listing)),
        lambda: view.flows.get("customer_cleaner"),
        lambda: lume.runs.create_many([RunRequest(FLOW, source_path=synthetic("x"))]),
    ]
    for call in calls:
        with pytest.raises(SyncFacadeError, match="closed"):
            call()


@pytest.mark.timeout(30)
def test_close_from_another_thread_ends_a_blocked_wait_promptly(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    run = lume.run(FLOW, synthetic("blockedwait", duration=1000))
    closer = threading.Timer(0.2, lume.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(lume_async.LumeError, match="closed"):
        run.wait(timeout=20, poll_interval=0.05)
    assert time.monotonic() - started < 3
    closer.join()


@pytest.fixture
def slow_emu() -> Iterator[Emulator]:
    with Emulator(time_scale=50) as emulator:
        emulator.set_faults(FaultProfile(rate=1.0, kinds=("delay",), delay=2.0, phase="before"))
        yield emulator


@pytest.mark.timeout(30)
def test_close_from_another_thread_fails_a_request_in_flight_as_closed(
    slow_emu: Emulator,
) -> None:
    retries: list[object] = []
    lume = Lume(
        api_key=slow_emu.api_key,
        base_url=slow_emu.url,
        retry=RetryPolicy(max_retries=3, on_retry=retries.append),
    )
    closer = threading.Timer(0.3, lume.close)
    closer.start()
    with pytest.raises(lume_async.LumeError) as caught:
        lume.flows.get("customer_cleaner")
    closer.join()

    assert retries == []  # nothing is retried on a client that is closed
    assert not isinstance(caught.value, lume_async.APIConnectionError), caught.value
    assert "closed" in str(caught.value)


# -- fork --------------------------------------------------------------------------------------


def _child_work(conn: object, url: str, key: str, lume: Lume) -> None:  # pragma: no cover
    try:
        run = lume.run(FLOW, synthetic(f"mpchild{os.getpid()}", rows=12))
        rows = run.wait(timeout=20, poll_interval=0.05).results(page_size=5).collect()
        flows = lume.flows.get("customer_cleaner").name
        conn.send(f"{len(rows)} {flows}")  # type: ignore[attr-defined]
    except BaseException as exc:
        conn.send(f"err {type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
    finally:
        lume.close()


@FORK_OK
@pytest.mark.timeout(60)
def test_a_multiprocessing_fork_child_makes_its_own_calls(emu: Emulator, lume: Lume) -> None:
    finished_run(lume, "beforefork")  # the parent's loop, pool and poller are all in use
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_child_work, args=(child_end, emu.url, emu.api_key, lume))
    child.start()
    assert parent_end.poll(30), "the child hung"
    answer = parent_end.recv()
    child.join(10)

    assert answer == "12 customer_cleaner"
    assert child.exitcode == 0
    assert lume.flows.get("customer_cleaner").name == "customer_cleaner"


@FORK_OK
@pytest.mark.timeout(60)
def test_a_forked_child_waits_while_a_parent_thread_is_blocked_in_wait(lume: Lume) -> None:
    slow = lume.run(FLOW, synthetic("parentwaits", duration=1000))

    def wait_in_parent() -> None:
        with pytest.raises(lume_async.RunTimeoutError):
            slow.wait(timeout=3, poll_interval=0.05)

    waiter = threading.Thread(target=wait_in_parent)
    waiter.start()
    time.sleep(0.2)  # the parent's shared poller is running when the child is forked

    def child() -> str:
        run = lume.run(FLOW, synthetic(f"forkwait{os.getpid()}"))
        return run.wait(timeout=5, poll_interval=0.05).status.value

    assert in_forked_child(child) == "ok SUCCEEDED"
    waiter.join(10)


@FORK_OK
@pytest.mark.timeout(30)
def test_a_forked_child_continuing_an_inherited_iterator_gets_the_fork_error(
    lume: Lume,
) -> None:
    it = iter(finished_run(lume, "inherit").results(page_size=10))
    next(it)

    answer = in_forked_child(lambda: str(len(list(it))))

    assert answer.startswith("err SyncFacadeError") and "fork" in answer, answer
    assert len(list(it)) == 24  # the parent's iteration is unharmed


@FORK_OK
@pytest.mark.timeout(30)
def test_a_forked_child_dropping_an_inherited_iterator_stays_quiet(lume: Lume) -> None:
    it = iter(finished_run(lume, "inheritdrop").results(page_size=10))
    next(it)

    def child() -> str:
        nonlocal it
        unraisable: list[str] = []
        sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del it
            gc.collect()
        name = lume.flows.get("customer_cleaner").name
        return f"{unraisable} {[str(w.message) for w in caught]} {name}"

    assert in_forked_child(child) == "ok [] [] customer_cleaner"
    assert len(list(it)) == 24


# -- errors ----------------------------------------------------------------------------------


def _shape(exc: BaseException) -> tuple[type[BaseException], str]:
    text = re.sub(r"(request_id|error_id)=[0-9a-f-]+", r"\1=X", str(exc))
    return type(exc), text


@pytest.mark.timeout(30)
def test_errors_arrive_with_the_async_cores_type_and_message(emu: Emulator, lume: Lume) -> None:
    calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = [
        ("run_status", (UNKNOWN_RUN,), {}),
        ("run_status", ("not-a-run-id",), {}),
        ("run", ("nope:v1", synthetic("nope")), {}),
        ("run", (FLOW,), {}),  # neither source given
        ("process", ("", synthetic("empty")), {}),
    ]

    async def async_errors() -> list[tuple[type[BaseException], str]]:
        shapes = []
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as alume:
            for name, args, kwargs in calls:
                with pytest.raises((lume_async.LumeError, ValueError, TypeError)) as caught:
                    await getattr(alume, name)(*args, **kwargs)
                shapes.append(_shape(caught.value))
        return shapes

    expected = asyncio.run(async_errors())
    got = []
    for name, args, kwargs in calls:
        with pytest.raises((lume_async.LumeError, ValueError, TypeError)) as caught:
            getattr(lume, name)(*args, **kwargs)
        got.append(_shape(caught.value))

    assert got == expected
    assert expected[0][0] is lume_async.RunNotFoundError


@pytest.mark.timeout(30)
def test_a_dropped_loop_side_error_frees_the_arguments_at_once() -> None:
    class Big(dict[str, str]):
        pass

    async def boom(arg: Big) -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    big = Big()
    ref = weakref.ref(big)
    gc.disable()
    try:
        with pytest.raises(ValueError, match="boom") as caught:
            _loop.run(functools.partial(boom, big))
        assert any(f.f_code is boom.__code__ for f, _ in _walk(caught.value.__traceback__))
        del caught, big
        assert ref() is None  # by reference counting: the facade adds no cycle
    finally:
        gc.enable()


def _walk(tb: object) -> Iterator[tuple[object, int]]:
    import traceback

    return traceback.walk_tb(tb)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_an_api_error_keeps_no_argument_alive_once_dropped(lume: Lume) -> None:
    class Big(dict[str, str]):
        pass

    big = Big(note="x" * 1000)
    ref = weakref.ref(big)
    with pytest.raises(lume_async.NotFoundError) as caught:
        lume.run("nope:v1", synthetic("bigarg"), run_metadata=big)
    del caught, big
    gc.collect()
    assert ref() is None  # nothing on the private loop holds the call's arguments
    assert lume.flows.get("customer_cleaner").name == "customer_cleaner"
