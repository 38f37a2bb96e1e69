"""The blocking facade under misuse and bad timing: forks mid-call, signal handlers that call
lume_sync, and many short-lived threads."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from pathlib import Path

import pytest

from lume_async.testing import Emulator
from lume_sync import Lume, RetryEvent, RetryPolicy, RunRequest, _loop

from ._support import in_forked_child, run_script

FORK_OK = pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
FLOW = "customer_cleaner:v1"


def eventfds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own descriptor)
            count += os.readlink(f"/proc/self/fd/{fd}").endswith("[eventfd]")
    return count


@FORK_OK
@pytest.mark.timeout(60)
def test_a_forked_child_can_close_a_client_whose_close_was_in_flight_at_fork(
    emu: Emulator,
) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    lume.flows.list()
    held, release = threading.Event(), threading.Event()

    async def hold_the_loop() -> None:
        held.set()
        release.wait(30)  # blocks the loop: the close below stays in flight, holding its lock

    holder = threading.Thread(target=_loop.run, args=(hold_the_loop,))
    holder.start()
    closer = threading.Thread(target=lume.close)
    try:
        assert held.wait(10)
        closer.start()
        while not lume._bridge._handle.closed:  # taken for closing, under the close's lock
            release.wait(0.001)

        def child() -> str:
            lume.close()
            with Lume(api_key=emu.api_key, base_url=emu.url) as fresh:
                fresh.flows.list()
            return "closed"

        out = in_forked_child(child)
    finally:
        release.set()
        holder.join(10)
        if closer.ident is not None:  # started
            closer.join(10)
    assert out == "ok closed"


@FORK_OK
@pytest.mark.timeout(60)
def test_a_forked_childs_threads_are_never_taken_for_the_parents_loop_thread(
    emu: Emulator,
) -> None:
    # glibc hands a forked child's new threads the stacks, and so the idents, of the parent's
    # threads that did not survive the fork: the loop thread's among them.
    clients = [Lume(api_key=emu.api_key, base_url=emu.url) for _ in range(4)]
    for client in clients:
        client.flows.list()

    def child() -> str:
        outcomes: list[str] = []

        def close(client: Lume) -> None:
            try:
                client.close()
                outcomes.append("closed")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")

        for client in clients:
            thread = threading.Thread(target=close, args=(client,))
            thread.start()
            thread.join()
        return ", ".join(outcomes)

    try:
        assert in_forked_child(child) == "ok " + ", ".join(["closed"] * len(clients))
    finally:
        for client in clients:
            client.close()


@pytest.mark.timeout(60)
def test_a_signal_handler_calling_lume_sync_while_the_first_loop_starts_does_not_deadlock(
    emu: Emulator,
) -> None:
    done = run_script(
        """
        import signal
        from lume_sync import _loop

        signal.alarm(20)  # a deadlock ends the process instead

        async def one():
            return 1

        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(_loop.run(one)))
        real = _loop._python_handlers

        def a_signal_lands_now():
            _loop._python_handlers = real
            signal.raise_signal(signal.SIGUSR1)
            return real()

        _loop._python_handlers = a_signal_lands_now
        print(_loop.run(one), got)
        """,
        emu,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "1 [1]\n", "")


@pytest.mark.skipif(
    not hasattr(os, "eventfd") or not Path("/proc/self/fd").is_dir(), reason="Linux eventfd"
)
@pytest.mark.timeout(60)
def test_threads_that_made_calls_and_ended_leave_no_doorbell_open(lume: Lume) -> None:
    run = lume.run(FLOW, "synthetic://doorbells?rows=3&duration=0.1")
    gc.collect()
    before = eventfds()
    barrier = threading.Barrier(30)

    def call() -> None:
        barrier.wait(10)
        lume.runs.get(run.id)  # many at once: each on a pooled connection of its own

    threads = [threading.Thread(target=call) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    gc.collect()
    assert eventfds() <= before


# -- callbacks given as coroutine functions -------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_async_on_progress_of_an_export_is_awaited_as_lume_async_awaits_it(
    lume: Lume, tmp_path: Path
) -> None:
    run = lume.process(FLOW, "synthetic://async-export?rows=12&duration=0.1").run
    seen: list[int] = []

    async def on_progress(rows_written: int) -> None:
        seen.append(rows_written)

    path = tmp_path / "rows.jsonl"
    assert run.results(page_size=5).to_jsonl(path, on_progress=on_progress) == 12
    assert seen == [5, 10, 12]


@pytest.mark.timeout(60)
def test_an_async_on_progress_that_would_never_be_awaited_is_refused(lume: Lume) -> None:
    async def on_progress(done: int, total: int, failed: int) -> None:
        raise AssertionError("never called")

    request = RunRequest(FLOW, source_path="synthetic://async-progress?rows=3&duration=0.1")
    with pytest.raises(TypeError, match="on_progress must be a plain function"):
        lume.runs.create_many([request], on_progress=on_progress)
    with pytest.raises(TypeError, match="on_progress must be a plain function"):
        lume.runs.wait_all([], on_progress=on_progress)


def test_an_async_on_retry_is_refused_when_the_policy_is_made() -> None:
    async def on_retry(event: RetryEvent) -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="on_retry must be a plain function"):
        RetryPolicy(on_retry=on_retry)
