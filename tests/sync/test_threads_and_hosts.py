"""lume_sync shared by many threads, interrupted, and run in unusual hosts.

One client used by 32 threads at once and closed under them; calls from the private loop's own
executor threads; a close interrupted or refused; signals with Python handlers landing while the
private loop starts; threads still calling when the program ends.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, cast

import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator
from lume_sync import Lume, SyncFacadeError, _loop, _loop_thread
from lume_sync._call import hand_to_caller

from ._support import run_script

pytestmark = pytest.mark.timeout(60)

FLOW = "customer_cleaner:v1"
THREADS = 32


class Interrupted(BaseException):
    """Stands for the KeyboardInterrupt a Ctrl-C raises in a blocked caller."""


def synthetic(name: str, rows: int = 5, duration: float = 0.2) -> str:
    return f"synthetic://{name}?rows={rows}&duration={duration}"


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _loop.THREAD_NAME]


# -- one client, many threads ----------------------------------------------------------------


def test_thirty_two_threads_sharing_a_client_each_get_their_own_answers(lume: Lume) -> None:
    barrier = threading.Barrier(THREADS)

    def work(i: int) -> list[tuple[object, object]]:
        barrier.wait()
        seen: list[tuple[object, object]] = []
        for k in range(2):
            label = f"share{i}-{k}"
            run = lume.runs.create(FLOW, synthetic(label, rows=i + 1), label=label)
            run.wait(timeout=60, poll_interval=0.05)
            rows = list(run.results(page_size=3))  # several pages, read ahead
            seen.append(
                ((run.label, lume.runs.get(run.id).label, len(rows)), (label, label, i + 1))
            )
            listed = [r.label for r in lume.runs.list(label=label, page_size=2)]
            seen.append((listed, [label]))
        return seen

    with ThreadPoolExecutor(THREADS) as pool:
        results = [pair for pairs in pool.map(work, range(THREADS)) for pair in pairs]

    assert len(results) == THREADS * 4
    assert [(got, wanted) for got, wanted in results if got != wanted] == []


def test_closing_a_client_under_thirty_two_blocked_threads_ends_each_call_promptly(
    emu: Emulator,
) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    never = [lume.run(FLOW, synthetic(f"never{i}", duration=100_000)) for i in range(4)]
    big = lume.run(FLOW, synthetic("bigshared", rows=500)).wait(timeout=30, poll_interval=0.05)
    kinds: list[Callable[[], object]] = [
        lambda: never[0].wait(timeout=None, poll_interval=0.05),
        lambda: lume.runs.wait_all(never, poll_interval=0.05),
        lambda: [None for _ in iter(lambda: list(big.results(page_size=1)), None)],
        lambda: [lume.runs.get(never[1].id) for _ in iter(int, 1)],
    ]
    started = threading.Barrier(THREADS + 1)
    outcomes: dict[int, str] = {}

    def blocked(i: int) -> None:
        started.wait()
        try:
            kinds[i % len(kinds)]()
            outcomes[i] = "returned"
        except BaseException as exc:
            outcomes[i] = type(exc).__name__

    threads = [threading.Thread(target=blocked, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    started.wait()
    lume.run_status(never[2].id)  # every thread is on its way by now
    closed_at = time.monotonic()
    lume.close()
    for thread in threads:
        thread.join(30)

    assert [t for t in threads if t.is_alive()] == []
    assert time.monotonic() - closed_at < 20
    assert set(Counter(outcomes.values())) <= {"LumeError", "SyncFacadeError"}, outcomes
    assert len(outcomes) == THREADS


def test_a_call_from_an_executor_thread_of_the_private_loop_works(lume: Lume) -> None:
    async def from_executor() -> str:
        loop = asyncio.get_running_loop()
        flow = await loop.run_in_executor(None, lume.flows.get, "customer_cleaner")
        return f"{flow.name} {threading.current_thread().name}"

    assert _loop.run(from_executor) == f"customer_cleaner {_loop.THREAD_NAME}"


# -- closing ------------------------------------------------------------------------------------


@pytest.fixture
def make_lume(emu: Emulator) -> Iterator[Callable[[], Lume]]:
    """Makes clients (with connections open) that are closed by the end of the test, whatever
    the test did to them."""
    made: list[Lume] = []

    def make() -> Lume:
        made.append(Lume(api_key=emu.api_key, base_url=emu.url))
        made[-1].flows.get("customer_cleaner")
        return made[-1]

    yield make
    for lume in made:
        if not lume._async.is_closed:
            _loop.run(lume._async.aclose)


def _interrupt() -> None:
    raise Interrupted


def test_a_close_interrupted_while_it_waits_can_be_done_again(
    make_lume: Callable[[], Lume], monkeypatch: pytest.MonkeyPatch
) -> None:
    aclose = AsyncLume.aclose
    calls: list[int] = []

    async def interrupted_once(self: AsyncLume) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            hand_to_caller(_interrupt)  # the Ctrl-C reaches the caller while aclose runs
            await asyncio.Event().wait()  # until the interrupted caller cancels it
        await aclose(self)

    monkeypatch.setattr(AsyncLume, "aclose", interrupted_once)
    lume = make_lume()
    with pytest.raises(Interrupted):
        lume.close()

    lume.close()

    assert lume.is_closed


def test_a_close_interrupted_as_it_is_entered_leaves_nothing_unawaited(
    make_lume: Callable[[], Lume], monkeypatch: pytest.MonkeyPatch
) -> None:
    lume = make_lume()
    call = _loop_thread.LoopThread.call

    def interrupted_call(self: _loop_thread.LoopThread, *args: Any) -> Any:
        monkeypatch.setattr(_loop_thread.LoopThread, "call", call)  # once
        raise Interrupted  # what a signal does on the call's first instruction

    monkeypatch.setattr(_loop_thread.LoopThread, "call", interrupted_call)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Interrupted):
            lume.close()
        gc.collect()

    lume.close()

    assert [str(w.message) for w in caught] == []
    assert lume.is_closed


def test_an_iterator_closed_as_an_interrupt_lands_leaves_nothing_unawaited(
    lume: Lume, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = lume.run(FLOW, synthetic("itclose", rows=30)).wait(timeout=30, poll_interval=0.05)
    rows = cast("Generator[Any, None, None]", iter(run.results(page_size=10)))
    next(rows)
    call = _loop_thread.LoopThread.call

    def interrupted_call(self: _loop_thread.LoopThread, *args: Any) -> Any:
        monkeypatch.setattr(_loop_thread.LoopThread, "call", call)  # once
        raise Interrupted  # what a signal does on the call's first instruction

    monkeypatch.setattr(_loop_thread.LoopThread, "call", interrupted_call)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Interrupted):
            rows.close()
        del rows
        gc.collect()

    assert [str(w.message) for w in caught] == []
    assert len(run.results(page_size=100).collect()) == 30


def test_a_close_refused_on_the_loop_thread_leaves_the_client_usable(
    make_lume: Callable[[], Lume],
) -> None:
    lume = make_lume()

    async def close_on_the_loop() -> None:
        lume.close()

    with pytest.raises(SyncFacadeError, match="own loop thread"):
        _loop.run(close_on_the_loop)

    assert not lume.is_closed
    assert lume.flows.get("customer_cleaner").name == "customer_cleaner"


def test_a_close_from_a_second_thread_returns_once_the_client_is_closed(
    make_lume: Callable[[], Lume], monkeypatch: pytest.MonkeyPatch
) -> None:
    aclose = AsyncLume.aclose
    entered = threading.Event()
    go: list[asyncio.Event] = []

    async def held(self: AsyncLume) -> None:
        go.append(asyncio.Event())
        entered.set()
        await go[0].wait()
        await aclose(self)

    monkeypatch.setattr(AsyncLume, "aclose", held)
    lume = make_lume()
    first = threading.Thread(target=lume.close)
    first.start()
    assert entered.wait(10)
    closed_when_returned: list[bool] = []

    def close_again() -> None:
        lume.close()
        closed_when_returned.append(lume.is_closed)

    second = threading.Thread(target=close_again)
    second.start()
    # Deterministic either way: the second close returns at once (the first is held until
    # after this join), or it waits for the first one and outlasts the join.
    second.join(0.5)
    _loop.get_loop().call_soon_threadsafe(go[0].set)
    first.join(10)
    second.join(10)

    assert closed_when_returned == [True]


# -- signals while the private loop starts -------------------------------------------------------


class Alarm(Exception):
    """What a signal handler of the program raises (a SIGALRM-style timeout)."""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
def test_a_signal_handler_raising_as_the_loop_starts_leaves_one_whole_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _loop.shutdown()
    made: list[_loop_thread.LoopThread] = []

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Alarm

    class SignalledOnAdd(set[_loop_thread.LoopThread]):
        def add(self, runner: _loop_thread.LoopThread) -> None:
            made.append(runner)
            signal.raise_signal(signal.SIGUSR1)  # lands as the loop thread has just started
            super().add(runner)

    async def answer() -> int:
        return 42

    previous = signal.signal(signal.SIGUSR1, alarm)
    try:
        monkeypatch.setattr(_loop_thread, "_unclosed", SignalledOnAdd(_loop_thread._unclosed))
        with pytest.raises(Alarm):
            _loop.run(answer)
        monkeypatch.undo()

        assert _loop.run(answer) == 42
        assert len(loop_threads()) == 1
    finally:
        signal.signal(signal.SIGUSR1, previous)
        monkeypatch.undo()
        _loop.shutdown()
        for runner in made:  # a loop nothing refers to any more: stop it, for later tests
            runner.stop(5)


# -- the program's end ----------------------------------------------------------------------------


def test_a_thread_outliving_the_main_thread_can_still_connect(emu: Emulator) -> None:
    # The client's host is a name to resolve, as the service's is; asyncio's loop resolves it
    # on the loop's executor. The thread goes on once the main thread has ended.
    done = run_script(
        """
        import os, threading
        from lume_sync import Lume

        url = os.environ["EMU_URL"].replace("127.0.0.1", "localhost")

        def worker():
            threading.main_thread().join()
            with Lume(api_key=os.environ["EMU_KEY"], base_url=url) as lume:
                print(lume.flows.get("customer_cleaner").name, flush=True)

        threading.Thread(target=worker).start()
        """,
        emu,
        env={"LUME_LOOP": "asyncio"},
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, "customer_cleaner\n", "")
