"""Specification of lume_sync's private event loop thread (``lume_sync._loop``)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lume_async._exceptions import SyncFacadeError
from lume_sync import _loop, _loop_thread
from tests.sync._forks import Forked, ForkServer
from tests.sync._support import Client, Server, without_slow_callbacks

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "_scripts"
# Warnings that would betray a sloppy hand-off or shutdown.
TELLTALES = ("Warning", "never awaited", "Task was destroyed", "Unclosed", "Exception ignored")
#: Seconds within which a call that must not wait ends: a third of the 30 s the calls under test
#: would otherwise sleep (or forever, for a deadlock). A pass means nothing was waited out; a
#: tighter bound would measure the machine's load, not the code.
QUICKLY = 10


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


LOOPS = [
    "asyncio",
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(not _uvloop_installed(), reason="lume-sdk[speed] not installed"),
    ),
]


@pytest.fixture(autouse=True, params=LOOPS)
def fresh_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test starts without a loop and leaves none behind; it runs on each kind of loop
    (its name: what a script's process is told to use, by ``LUME_LOOP``)."""
    if request.param == "asyncio":
        monkeypatch.setattr(_loop_thread, "new_event_loop", asyncio.new_event_loop)
    _loop.shutdown()
    yield request.param
    _loop.shutdown()


@pytest.fixture(scope="module")
def forks() -> Iterator[ForkServer]:
    """Starts scripts as ``python -X dev -W error`` would, importing lume_sync once."""
    server = ForkServer()
    yield server
    server.close()


def start_script(forks: ForkServer, loop: str, script: str, mode: str) -> Forked:
    """``python -X dev -W error _scripts/SCRIPT MODE`` in a process of its own, on ``loop``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LUME_LOOP": loop}
    return forks.start(SCRIPTS / script, mode, env=env)


def run_script(
    forks: ForkServer, loop: str, script: str, mode: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    process = start_script(forks, loop, script, mode)
    stdout, stderr = process.finish(timeout)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        [script, mode], process.returncode, stdout, without_slow_callbacks(stderr)
    )


async def answer() -> int:
    return 42


async def loop_thread_name() -> str:
    return threading.current_thread().name


async def other_tasks() -> int:
    return len(asyncio.all_tasks() - {asyncio.current_task()})


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _loop.THREAD_NAME]


# -- running coroutines ---------------------------------------------------------------------


def test_run_returns_the_result_computed_on_the_loop_thread() -> None:
    assert _loop.run(answer()) == 42
    assert _loop.run(loop_thread_name()) == _loop.THREAD_NAME


def test_the_loop_runs_on_uvloop_when_it_is_installed(request: pytest.FixtureRequest) -> None:
    kind = type(_loop.get_loop()).__module__.split(".")[0]

    assert kind == request.node.callspec.params["fresh_loop"]


def test_a_call_leaves_nothing_pending_on_the_loop_when_it_returns() -> None:
    async def nap() -> None:
        await asyncio.sleep(0)

    for call in [answer, nap] * 100:
        _loop.run(call())

        assert [t for t in asyncio.all_tasks(_loop.get_loop()) if not t.done()] == []


def test_a_call_handed_to_a_loop_that_has_stopped_is_refused() -> None:
    runner = _loop_thread.LoopThread()
    runner.stop(5)

    with pytest.raises(SyncFacadeError, match="shut down"):
        runner.call(answer(), None)


def test_the_loop_thread_is_a_daemon_started_once() -> None:
    assert loop_threads() == []
    _loop.run(answer())
    _loop.run(answer())
    (thread,) = loop_threads()
    assert thread.daemon


def test_first_calls_from_64_threads_start_exactly_one_loop() -> None:
    barrier = threading.Barrier(64)
    idents: list[int] = []

    async def loop_ident() -> int:
        return threading.get_ident()

    def first_call() -> None:
        barrier.wait()
        idents.append(_loop.run(loop_ident()))

    threads = [threading.Thread(target=first_call) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(idents) == 64
    assert len(set(idents)) == 1
    assert len(loop_threads()) == 1


def test_exceptions_propagate_unchanged_with_their_traceback() -> None:
    raised = ValueError("bad")

    async def fail() -> None:
        raise raised

    with pytest.raises(ValueError, match="bad") as info:
        _loop.run(fail())
    assert info.value is raised
    assert "fail" in {entry.name for entry in info.traceback}


def test_base_exceptions_reach_the_caller_and_the_loop_survives() -> None:
    async def exit_3() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit) as info:
        _loop.run(exit_3())
    assert info.value.code == 3
    assert _loop.run(answer()) == 42


def test_caller_context_variables_are_copied_in_not_out() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")

    async def read_then_write() -> str:
        seen = var.get()
        var.set("loop")
        return seen

    assert _loop.run(read_then_write()) == "caller"
    assert var.get() == "caller"


def test_works_inside_a_running_event_loop_of_the_caller() -> None:
    async def main() -> int:
        # e.g. Jupyter or a sync helper called by a coroutine: the caller's loop is running
        return _loop.run(answer())

    assert asyncio.run(main()) == 42


# -- timeouts and misuse --------------------------------------------------------------------


def test_timeout_cancels_the_coroutine_on_the_loop_and_raises_timeout_error() -> None:
    cleaned_up_on: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned_up_on.append(threading.current_thread().name)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _loop.run(slow(), timeout=0.05)
    assert time.monotonic() - started < QUICKLY
    assert cleaned_up_on == [_loop.THREAD_NAME]
    assert _loop.run(other_tasks()) == 0


def test_negative_timeout_is_refused_without_leaving_the_coroutine_unawaited() -> None:
    with pytest.raises(ValueError, match="timeout"):
        _loop.run(answer(), timeout=-1)
    gc.collect()  # an unawaited coroutine would warn here, which fails the test


def test_call_from_a_coroutine_on_the_loop_raises_instead_of_deadlocking() -> None:
    async def nested() -> int:
        return _loop.run(answer())

    started = time.monotonic()
    with pytest.raises(SyncFacadeError, match="own event loop thread"):
        _loop.run(nested())
    assert time.monotonic() - started < QUICKLY
    gc.collect()


def test_call_from_a_callback_on_the_loop_raises_instead_of_deadlocking() -> None:
    outcome: list[BaseException] = []
    called = threading.Event()

    def callback() -> None:
        try:
            _loop.run(answer())
        except SyncFacadeError as exc:
            outcome.append(exc)
        called.set()

    started = time.monotonic()
    _loop.get_loop().call_soon_threadsafe(callback)
    assert called.wait(QUICKLY)
    assert time.monotonic() - started < QUICKLY
    assert len(outcome) == 1


# -- dead loop, shutdown ----------------------------------------------------------------------


def test_a_loop_stopped_under_a_call_raises_sync_facade_error_and_the_next_call_restarts() -> None:
    async def stop_the_loop() -> None:
        asyncio.get_running_loop().stop()
        await asyncio.sleep(30)

    started = time.monotonic()
    with pytest.raises(SyncFacadeError):
        _loop.run(stop_the_loop())
    assert time.monotonic() - started < QUICKLY
    assert _loop.run(answer()) == 42


def test_a_loop_thread_killed_by_an_exception_raises_sync_facade_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    died: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", died.append)

    def die() -> None:
        raise SystemExit  # escapes run_forever() and ends the thread

    async def doomed() -> None:
        asyncio.get_running_loop().call_soon(die)
        await asyncio.sleep(30)

    before = _loop.get_loop()
    (thread,) = loop_threads()
    with pytest.raises(SyncFacadeError):
        _loop.run(doomed())
    thread.join(5)
    assert before.is_closed()
    assert [args.exc_type for args in died] == [SystemExit]
    assert _loop.run(answer()) == 42
    assert _loop.get_loop() is not before


def test_shutdown_closes_the_loop_and_the_next_call_starts_a_new_one() -> None:
    first = _loop.get_loop()
    _loop.shutdown()
    assert first.is_closed()
    assert loop_threads() == []
    assert _loop.run(answer()) == 42
    assert _loop.get_loop() is not first


def test_shutdown_fails_a_running_call_with_sync_facade_error() -> None:
    started = threading.Event()
    errors: list[BaseException] = []

    async def wait_long() -> None:
        started.set()
        await asyncio.sleep(30)

    def caller() -> None:
        try:
            _loop.run(wait_long())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(5)
    _loop.shutdown()
    thread.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], SyncFacadeError)


# -- iteration ------------------------------------------------------------------------------


def test_break_closes_the_async_generator_on_the_loop_before_the_next_statement() -> None:
    closed_on: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for n in range(100):
                yield n
        finally:
            closed_on.append(threading.current_thread().name)

    for n in _loop.iterate(numbers()):
        if n == 2:
            break
    assert closed_on == [_loop.THREAD_NAME]


def test_an_exception_in_the_loop_body_closes_the_async_generator() -> None:
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    def fail_in_body() -> None:
        for _ in _loop.iterate(numbers()):
            raise KeyError

    with pytest.raises(KeyError):
        fail_in_body()
    assert closed == [True]


def test_iterate_yields_every_item_in_order() -> None:
    async def numbers() -> AsyncIterator[int]:
        for n in range(5):
            yield n

    assert list(_loop.iterate(numbers())) == [0, 1, 2, 3, 4]


def test_an_iterator_left_open_is_closed_by_shutdown() -> None:
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
        finally:
            closed.append(True)

    iterator = _loop.iterate(numbers())
    next(iterator)
    _loop.shutdown()
    assert closed == [True]
    iterator.close()


# -- resources --------------------------------------------------------------------------------


class Owner:
    """Stands in for a client: owns something that must be closed on the loop."""

    def __init__(self, closed_on: list[str]) -> None:
        async def aclose() -> None:
            closed_on.append(threading.current_thread().name)

        self.handle = _loop.register_resource(self, aclose)


async def settle() -> None:
    """Wait, on the loop, until every other task (closes of dropped resources) has finished."""
    while others := asyncio.all_tasks() - {asyncio.current_task()}:
        await asyncio.wait(others)


def test_explicit_close_runs_aclose_on_the_loop_once() -> None:
    closed_on: list[str] = []
    owner = Owner(closed_on)
    owner.handle.close()
    owner.handle.close()
    assert closed_on == [_loop.THREAD_NAME]
    assert owner.handle.closed


def test_a_dropped_owner_has_its_resource_closed_on_the_loop() -> None:
    closed_on: list[str] = []
    Owner(closed_on)
    gc.collect()
    _loop.run(settle())
    assert closed_on == [_loop.THREAD_NAME]


def test_shutdown_closes_live_resources() -> None:
    closed_on: list[str] = []
    owner = Owner(closed_on)
    _loop.shutdown()
    assert closed_on == [_loop.THREAD_NAME]
    assert owner.handle.closed


def test_a_handle_from_a_shut_down_loop_raises_sync_facade_error() -> None:
    owner = Owner([])
    _loop.shutdown()
    with pytest.raises(SyncFacadeError, match="shut down"):
        owner.handle.run(answer())
    gc.collect()


def test_closing_on_the_loop_thread_is_refused_and_the_resource_stays_registered() -> None:
    closed_on: list[str] = []
    owner = Owner(closed_on)

    async def close_here() -> None:
        owner.handle.close()

    with pytest.raises(SyncFacadeError):
        _loop.run(close_here())
    assert not owner.handle.closed
    owner.handle.close()
    assert closed_on == [_loop.THREAD_NAME]


def test_a_closed_handle_raises_sync_facade_error() -> None:
    owner = Owner([])
    owner.handle.close()
    with pytest.raises(SyncFacadeError, match="closed"):
        owner.handle.run(answer())


def test_two_hundred_dropped_clients_leak_no_threads_or_sockets() -> None:
    server = Server()
    Client(server.url).get()  # warm up whatever is started once
    gc.collect()
    _loop.run(settle())
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))

    # A thread or socket kept per dropped client adds one per client: 200 clients show it as
    # plainly as a thousand (any growth fails).
    for _ in range(200):
        Client(server.url).get()  # dropped at once, never closed
    gc.collect()
    _loop.run(settle())

    # No growth: a thread of an earlier test may end meanwhile, never one more be left.
    assert threading.active_count() <= threads
    assert len(os.listdir("/proc/self/fd")) <= fds
    server.close()


# -- processes: exit, fork, Ctrl-C ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "returncode"),
    [("normal", 0), ("sys_exit", 3), ("open_iterator", 0), ("daemon_call", 0)],
)
def test_every_exit_path_leaves_stderr_empty(
    forks: ForkServer, fresh_loop: str, mode: str, returncode: int
) -> None:
    done = run_script(forks, fresh_loop, "exit_paths.py", mode)
    assert done.stderr == ""
    assert done.returncode == returncode


def test_an_uncaught_exception_prints_only_its_traceback(
    forks: ForkServer, fresh_loop: str
) -> None:
    done = run_script(forks, fresh_loop, "exit_paths.py", "uncaught")
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.endswith("RuntimeError: boom\n")
    assert done.stderr.count("Traceback") == 1
    assert not any(telltale in done.stderr for telltale in TELLTALES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("mode", ["plain", "lock_held"])
def test_a_forked_child_gets_its_own_loop_and_leaves_the_parents_alone(
    forks: ForkServer, fresh_loop: str, mode: str
) -> None:
    done = run_script(forks, fresh_loop, "fork.py", mode)
    assert done.stderr == ""
    assert done.stdout.splitlines() == ["child ok", "parent ok"]
    assert done.returncode == 0


def _interrupt(
    forks: ForkServer, loop: str, mode: str, delay: float
) -> tuple[list[str], float, str]:
    process = start_script(forks, loop, "sigint.py", mode)
    try:
        assert process.readline(timeout=30) == "started\n"
        time.sleep(delay)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        lines, interrupted_after = [], float("inf")
        while line := process.readline(timeout=30):
            lines.append(line.strip())
            if line == "interrupted\n":
                interrupted_after = time.monotonic() - sent
        _, stderr = process.finish(timeout=10)
    finally:
        process.kill()
    return lines, interrupted_after, without_slow_callbacks(stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_long_call_cancels_it_and_raises_keyboard_interrupt_quickly(
    forks: ForkServer, fresh_loop: str
) -> None:
    lines, interrupted_after, stderr = _interrupt(forks, fresh_loop, "long", 0.1)
    assert lines == ["finally", "interrupted", "tasks 0"]  # cleanup ran before the re-raise
    assert interrupted_after < QUICKLY
    assert stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("delay", [0.01, 0.05, 0.13, 0.2, 0.31])
def test_ctrl_c_anywhere_in_a_stream_of_calls_leaves_nothing_behind(
    forks: ForkServer, fresh_loop: str, delay: float
) -> None:
    lines, interrupted_after, stderr = _interrupt(forks, fresh_loop, "busy", delay)
    assert lines == ["interrupted", "tasks 0"]
    assert interrupted_after < QUICKLY
    assert stderr == ""
