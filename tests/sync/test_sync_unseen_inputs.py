"""The blocking facade with inputs its other tests do not use.

Daemon threads still calling as the program ends; signals landing as the private loop starts,
caught by another thread or as the signals are being held back, and the signal mask of the
loop's own threads; callbacks of the pages a listing reads ahead; a child forked by a callback
that goes on from it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from types import FrameType
from typing import Any

import pytest

from lume_async.testing import Emulator, FaultProfile
from lume_sync import Lume, RetryEvent, RetryPolicy, _callbacks, _loop, _loop_thread

from ._support import run_script

pytestmark = pytest.mark.timeout(60)

FLOW = "customer_cleaner:v1"


# -- the program's end ----------------------------------------------------------------------------


def test_daemon_threads_calling_as_the_program_ends_leave_stderr_empty(emu: Emulator) -> None:
    # One thread is blocked in a wait, one iterates without pause, one calls without pause, one
    # makes clients: as the program ends, each is in a call or about to make one. Daemon threads
    # end with the process wherever they are, as they do blocked in any other call.
    done = run_script(
        """
        import os, threading, uuid
        from lume_sync import Lume

        FLOW = "customer_cleaner:v1"
        KEY, URL = os.environ["EMU_KEY"], os.environ["EMU_URL"]
        lume = Lume(api_key=KEY, base_url=URL)  # never closed
        tag = uuid.uuid4().hex
        finished = lume.run(FLOW, f"synthetic://{tag}?rows=30").wait(poll_interval=0.01)
        endless = lume.run(FLOW, f"synthetic://{tag}-endless?rows=2&duration=100000")
        started = threading.Barrier(5)

        def waiting():
            started.wait()
            endless.wait(timeout=None, poll_interval=0.01)

        def iterating():
            started.wait()
            while True:
                for _ in finished.results(page_size=5):
                    pass

        def calling():
            started.wait()
            while True:
                lume.runs.get(finished.id)

        def making():
            started.wait()
            while True:
                with Lume(api_key=KEY, base_url=URL) as own:
                    own.flows.get("customer_cleaner")

        for target in (waiting, iterating, calling, making):
            threading.Thread(target=target, daemon=True).start()
        started.wait()
        print("main ends", flush=True)
        """,
        emu,
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, "main ends\n", "")


def test_tasks_started_while_the_loop_shuts_down_are_cancelled_too(emu: Emulator) -> None:
    # A task's cleanup starts other tasks (as a wait leaving restarts its poller): one that runs
    # and one that never gets a step. The shutdown cancels them in turn; left pending as the loop
    # closes, they would be reported destroyed, or their coroutine never awaited.
    done = run_script(
        """
        import asyncio
        from lume_sync import _loop

        async def forever(name):
            await asyncio.sleep(3600)

        async def cleanup_starts_tasks():
            loop = asyncio.get_running_loop()
            try:
                await asyncio.sleep(3600)
            finally:
                loop.create_task(forever("runs"))
                await asyncio.sleep(0)
                loop.create_task(forever("never ran"))

        async def start():
            asyncio.get_running_loop().create_task(cleanup_starts_tasks())

        _loop.run(start())
        print("main ends", flush=True)
        """,
        emu,
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, "main ends\n", "")


# -- signals as the private loop starts ----------------------------------------------------------


class Alarm(Exception):
    """What a signal handler of the program raises (a ``signal.alarm`` timeout)."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Alarm


async def answer() -> int:
    return 42


def _signal_state() -> tuple[set[int], dict[int, object]]:
    """The calling thread's signal mask, and the program's signal handlers."""
    masks = hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, []) if masks else ()
    return set(mask), {signum: signal.getsignal(signum) for signum in signal.valid_signals()}


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _loop.THREAD_NAME]


@pytest.fixture
def alarm_handler() -> Iterator[None]:
    """SIGUSR1 raises ``Alarm``; each test starts and ends without a private loop."""
    _loop.shutdown()
    previous = signal.signal(signal.SIGUSR1, _alarm)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)
        _loop.shutdown()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
@pytest.mark.usefixtures("alarm_handler")
def test_a_signal_sent_to_the_process_as_the_loop_starts_lands_on_one_whole_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sent to the process (as Ctrl-C and signal.alarm() are), a signal is caught by whichever
    # thread does not block it, and Python runs its handler on the main thread all the same.
    made: list[_loop_thread.LoopThread] = []
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    other_thread = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
    other_thread.start()

    class SignalledOnAdd(set[_loop_thread.LoopThread]):
        def add(self, runner: _loop_thread.LoopThread) -> None:
            made.append(runner)
            os.kill(os.getpid(), signal.SIGUSR1)  # lands as the loop thread has just started
            reader.recv(1)  # the signal has been caught, by one thread or another
            super().add(runner)

    wakeup = signal.set_wakeup_fd(writer.fileno())
    try:
        monkeypatch.setattr(_loop_thread, "_unclosed", SignalledOnAdd(_loop_thread._unclosed))
        with pytest.raises(Alarm):
            _loop.run(answer)
        monkeypatch.undo()

        assert _loop.run(answer) == 42
        assert len(loop_threads()) == 1
    finally:
        signal.set_wakeup_fd(wakeup)
        monkeypatch.undo()
        reader.close()
        writer.close()
        _loop.shutdown()
        for runner in made:  # a loop nothing refers to any more: stop it, for later tests
            runner.stop(5)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
@pytest.mark.usefixtures("alarm_handler")
def test_a_signal_landing_as_the_loop_starts_to_hold_signals_leaves_them_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CPython runs the handlers of the signals that arrived meanwhile right after a call that
    # changes a mask or a handler: one that raises does so from that call, the change made.
    real_mask, real_signal = getattr(signal, "pthread_sigmask", None), signal.signal
    landed: list[str] = []

    def land(what: str) -> None:
        if not landed:
            landed.append(what)
            _alarm(signal.SIGUSR1, None)

    def sigmask(how: int, mask: Iterable[int]) -> set[int]:
        assert real_mask is not None
        signals = set(mask)
        previous: set[int] = real_mask(how, signals)
        if signals and how != signal.SIG_UNBLOCK:
            land("a mask")
        return previous

    def set_handler(signum: int, handler: Any) -> Any:
        previous = real_signal(signum, handler)
        land("a handler")
        return previous

    before = _signal_state()
    try:
        if real_mask is not None:
            monkeypatch.setattr(signal, "pthread_sigmask", sigmask)
        monkeypatch.setattr(signal, "signal", set_handler)
        with pytest.raises(Alarm):
            _loop.run(answer)
        monkeypatch.undo()

        assert landed
        assert _signal_state() == before  # Ctrl-C and the program's own signals still work
        assert _loop.run(answer) == 42
        assert len(loop_threads()) == 1
    finally:
        monkeypatch.undo()
        if real_mask is not None:
            real_mask(signal.SIG_SETMASK, before[0])
        for signum, handler in before[1].items():
            if callable(handler) and signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_callbacks_on_lume_syncs_worker_and_the_processes_they_start_get_ctrl_c(
    emu: Emulator,
) -> None:
    # A retry hook of the polls that waits share runs on a worker thread of the private loop:
    # a program's code there, and a command it runs, must not have Ctrl-C held back.
    _loop.shutdown()  # the next call starts the loop, from this (the main) thread
    expected = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    heard: list[tuple[str, set[int], str]] = []
    child = "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"

    def hook(event: RetryEvent) -> None:
        if event.route == "/v1/runs/batch-get" and not heard:
            command = subprocess.run(
                [sys.executable, "-c", child], capture_output=True, text=True, check=True
            )
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            heard.append((threading.current_thread().name, set(mask), command.stdout.strip()))

    policy = RetryPolicy(max_retries=8, on_retry=hook)
    try:
        with Lume(api_key=emu.api_key, base_url=emu.url, retry=policy) as lume:
            run = lume.run(FLOW, f"synthetic://mask-{uuid.uuid4().hex}?rows=2&duration=20")
            emu.set_faults(FaultProfile(rate=0.5, kinds=("503",), seed=3, retry_after=0))
            try:
                run.wait(timeout=60, poll_interval=0.05)
            finally:
                emu.set_faults(None)
    finally:
        _loop.shutdown()

    assert heard, "no poll was retried"
    ((thread, mask, in_child),) = heard
    assert thread not in (_loop.THREAD_NAME, threading.current_thread().name)
    assert mask == set(expected)
    assert in_child == str(sorted(expected))


# -- callbacks of an iteration ------------------------------------------------------------------


def test_callbacks_of_tasks_an_iterations_step_leaves_running_reach_the_iterating_thread() -> None:
    # Step 1 starts two tasks and returns; task 1 calls back while step 2 waits for it, task 2
    # while the iterating thread is between steps 2 and 3.
    seen: list[str] = []
    called = [threading.Event(), threading.Event()]
    go: list[asyncio.Event] = []

    def report(n: int) -> None:
        seen.append(f"callback {n} on {threading.current_thread().name}")

    callback = _callbacks.on_caller(report)
    assert callback is not None

    async def ahead(n: int) -> int:
        await go[n].wait()
        callback(n)
        called[n].set()
        return n

    async def numbers() -> AsyncIterator[int]:
        go.extend((asyncio.Event(), asyncio.Event()))
        tasks = [asyncio.ensure_future(ahead(n)) for n in (0, 1)]
        yield -1
        go[0].set()
        yield await tasks[0]
        yield await tasks[1]

    def iterate() -> None:
        for item in _loop.iterate(numbers()):
            seen.append(f"item {item}")
            if item == 0:
                _loop.get_loop().call_soon_threadsafe(go[1].set)
                assert called[1].wait(10)

    worker = threading.Thread(target=iterate, name="iterating")
    worker.start()
    worker.join(30)

    assert seen == [
        "item -1",
        "callback 0 on iterating",
        "item 0",
        "callback 1 on iterating",  # held while no step waited, run by the next one first
        "item 1",
    ]


def test_retry_hooks_of_pages_read_ahead_run_on_the_thread_iterating(emu: Emulator) -> None:
    heard: list[tuple[str, str]] = []

    def hook(event: RetryEvent) -> None:
        heard.append((threading.current_thread().name, event.route))

    policy = RetryPolicy(
        max_retries=20,
        base_delay=0.0,
        rate_limit_base_delay=0.0,
        budget_ratio=100.0,
        budget_floor=100.0,
        on_retry=hook,
    )
    counts: list[int] = []
    with Lume(api_key=emu.api_key, base_url=emu.url, retry=policy) as lume:
        source = f"synthetic://ahead-{uuid.uuid4().hex}?rows=100&duration=0.01"
        run = lume.run(FLOW, source).wait(timeout=30, poll_interval=0.01)

        def iterate() -> None:
            counts.append(sum(1 for _ in run.results(page_size=5)))
            counts.append(sum(len(page.items) for page in run.results(page_size=7).pages()))

        emu.set_faults(FaultProfile(rate=0.5, kinds=("503",), seed=3, retry_after=0))
        try:
            worker = threading.Thread(target=iterate, name="iterating")
            worker.start()
            worker.join(30)
        finally:
            emu.set_faults(None)

    assert counts == [100, 100]
    assert heard, "no page request was retried"
    assert {name for name, _ in heard} == {"iterating"}, heard


# -- fork from a callback -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_by_a_callback_leaves_the_parents_call_to_finish(emu: Emulator) -> None:
    # The child goes on from the callback, back into the call it interrupted: a call on its
    # parent's loop. It must neither take the parent's wake-ups nor wait on that loop.
    tag = uuid.uuid4().hex
    read, write = os.pipe()
    parent = os.getpid()
    children: list[int] = []
    returned: list[int] = []

    def fork_once(done: int, total: int, failed: int) -> None:
        if done == 1 and os.getpid() == parent:
            pid = os.fork()
            if pid:
                children.append(pid)

    def wait_all(lume: Lume) -> None:
        try:
            runs = [
                lume.run(FLOW, f"synthetic://{tag}-{n}?rows=2&duration={0.5 + n}") for n in range(4)
            ]
            returned.append(
                len(lume.runs.wait_all(runs, poll_interval=0.01, on_progress=fork_once))
            )
        except BaseException as exc:
            if os.getpid() == parent:
                raise
            os.write(write, f"{type(exc).__name__}: {exc}".encode())
        finally:
            if os.getpid() != parent:
                os._exit(0)

    with Lume(api_key=emu.api_key, base_url=emu.url) as lume:
        worker = threading.Thread(target=wait_all, args=(lume,), daemon=True)
        worker.start()
        worker.join(20)
        finished = not worker.is_alive()
        if not finished:
            lume.close()  # ends the parent's call
            worker.join(10)
    os.close(write)
    for pid in children:
        os.waitpid(pid, 0)
    in_child = os.read(read, 4000).decode()
    os.close(read)

    assert finished and returned == [4], "the parent's call hung"
    assert in_child.startswith("SyncFacadeError") and "fork" in in_child, in_child
