"""The loop thread kept on its caller's CPU: while one thread calls, given back for good once a
second one does, left free for a while when the kept CPU is busy, never passed on to the threads
the loop starts."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from lume_sync import _colocate
from lume_sync._loop_thread import LoopThread

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(
        not _colocate.available() or len(os.sched_getaffinity(0)) < 2,
        reason="needs Linux's sched_getcpu and at least two CPUs",
    ),
]


async def _noop() -> None:
    return None


async def _executor_cpus() -> set[int]:
    return await asyncio.get_running_loop().run_in_executor(None, os.sched_getaffinity, 0)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopThread]:
    # A busy test machine wakes threads late: only the test of that case sees one.
    monkeypatch.setattr(_colocate, "CONTENDED_NS", 10**15)
    loop_thread = LoopThread()
    try:
        yield loop_thread
    finally:
        loop_thread.stop(10)


def _loop_cpus(runner: LoopThread) -> set[int]:
    native_id = runner._thread.native_id
    assert native_id is not None
    return os.sched_getaffinity(native_id)


def test_one_callers_loop_thread_is_kept_on_one_of_its_cpus(runner: LoopThread) -> None:
    everywhere = os.sched_getaffinity(0)
    for _ in range(50):
        runner.call(_noop(), None)
    kept = _loop_cpus(runner)
    assert len(kept) == 1 and kept <= everywhere
    assert runner._follower.following


def test_the_threads_the_loop_starts_get_every_cpu(runner: LoopThread) -> None:
    runner.call(_noop(), None)
    assert len(_loop_cpus(runner)) == 1
    assert runner.call(_executor_cpus(), None) == os.sched_getaffinity(0)


def test_a_second_calling_thread_gives_the_loop_thread_its_cpus_back_for_good(
    runner: LoopThread,
) -> None:
    runner.call(_noop(), None)
    assert len(_loop_cpus(runner)) == 1
    other = threading.Thread(target=runner.call, args=(_noop(), None))
    other.start()
    other.join()
    assert _loop_cpus(runner) == os.sched_getaffinity(0)
    for _ in range(20):
        runner.call(_noop(), None)
    assert _loop_cpus(runner) == os.sched_getaffinity(0)
    assert not runner._follower.following


def test_a_late_wake_up_leaves_the_loop_thread_free_for_a_while(
    runner: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    follower = runner._follower
    runner.call(_noop(), None)
    assert len(_loop_cpus(runner)) == 1
    # As if the kept CPU had been busy: the loop thread woke long after its caller rang, once
    # (not enough), then on time, then late again and again.
    for late in (True, False, True, True, True, True):
        assert len(_loop_cpus(runner)) == 1
        follower._rung_at = time.perf_counter_ns() - (10**16 if late else 0)
        follower.woken()
    assert _loop_cpus(runner) == os.sched_getaffinity(0)
    for _ in range(5):
        runner.call(_noop(), None)
    assert _loop_cpus(runner) == os.sched_getaffinity(0)  # still free during the pause
    follower._paused_until = time.monotonic() - 1  # the pause is over
    runner.call(_noop(), None)
    assert len(_loop_cpus(runner)) == 1
    assert follower.following


def test_a_refusal_to_move_the_thread_stops_trying(
    runner: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    def refuse(*args: object) -> None:
        calls.append(args)
        raise PermissionError("not here")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    for _ in range(5):
        runner.call(_noop(), None)
    assert not runner._follower.following
    assert len(calls) == 1


def test_elsewhere_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_colocate, "_GETCPU", None)
    follower = _colocate.CpuFollower()
    follower.attach(threading.get_native_id())
    follower.follow()
    assert not follower.following
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _colocate._load_getcpu() is None
