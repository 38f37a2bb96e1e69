"""Signals held while the private loop starts, and free-form fields handed out by exports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from lume_async import _converter
from lume_async._export import as_row
from lume_async.models._outputs import LogEntry, RejectedRow
from lume_sync import _loop, _loop_thread


class Alarm(Exception):
    """What a signal handler of the program raises (a SIGALRM-style timeout)."""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
def test_two_signals_as_the_loop_starts_reach_both_handlers_though_the_first_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _loop.shutdown()
    seen: list[tuple[int, bool]] = []

    def alarm(signum: int, frame: FrameType | None) -> None:
        seen.append((signum, frame is not None))
        raise Alarm

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append((signum, frame is not None))

    class SignalledOnAdd(set[_loop_thread.LoopThread]):
        def add(self, runner: _loop_thread.LoopThread) -> None:
            super().add(runner)
            signal.raise_signal(signal.SIGUSR1)
            signal.raise_signal(signal.SIGUSR2)

    async def answer() -> int:
        return 42

    previous = signal.signal(signal.SIGUSR1, alarm), signal.signal(signal.SIGUSR2, note)
    try:
        monkeypatch.setattr(_loop_thread, "_unclosed", SignalledOnAdd(_loop_thread._unclosed))
        with pytest.raises(Alarm):
            _loop.run(answer)
        monkeypatch.undo()
        # Handlers left pending by one that raised run at Python's next check for signals.
        signal.pthread_sigmask(signal.SIG_BLOCK, [])
        # Both handlers ran, each with the frame the signal landed in, as a held signal does.
        assert sorted(seen) == [(signal.SIGUSR1, True), (signal.SIGUSR2, True)]
        assert signal.getsignal(signal.SIGUSR1) is alarm
        assert signal.getsignal(signal.SIGUSR2) is note
        assert _loop.run(answer) == 42
    finally:
        signal.signal(signal.SIGUSR1, previous[0])
        signal.signal(signal.SIGUSR2, previous[1])
        monkeypatch.undo()
        _loop.shutdown()


def test_an_exported_row_does_not_share_free_form_fields_with_the_model() -> None:
    record: dict[str, Any] = {"email": "a@example.com", "nested": {"tags": ["x"]}}
    rejected = RejectedRow(index=0, source_record=record)
    row = as_row(rejected)
    row["source_record"]["email"] = "changed"
    row["source_record"]["nested"]["tags"].append("y")
    assert rejected.source_record == {"email": "a@example.com", "nested": {"tags": ["x"]}}

    line = _converter.structure(
        {"time": "2024-01-01T00:00:00Z", "level": "INFO", "message": "m", "details": {"a": [1]}},
        LogEntry,
    )
    data = _converter.unstructure(line)
    data["details"]["a"].append(2)
    assert line.details == {"a": [1]}


def test_a_free_form_field_nested_deep_is_still_unstructured() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"k": [deep]}
    row = as_row(RejectedRow(index=0, source_record=deep))
    copied, original, depth = row["source_record"], deep, 0
    while isinstance(original, dict):  # compared level by level: == would nest on the stack
        assert copied is not original and copied.keys() == original.keys()
        assert type(copied["k"]) is list and copied["k"] is not original["k"]
        copied, original, depth = copied["k"][0], original["k"][0], depth + 1
    assert (copied, depth) == (1, 5000)


def python_c(code: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` (dedented) in a fresh interpreter that imports this checkout."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


_LOGGING_TO_THE_SERVICE = """
    import logging, threading, time
    from lume_sync import Lume

    lume = Lume(api_key="lume_test_key", base_url="http://127.0.0.1:9")

    class ToService(logging.Handler):
        def emit(self, record):  # the handler's lock is held here
            time.sleep(0.5)  # the program ends meanwhile
            lume.flows.get("f")

    log = logging.getLogger("shipped")
    log.addHandler(ToService())

    def worker():
        threading.main_thread().join()
        log.warning("the main thread has ended")

    threading.Thread(target=worker, daemon=True).start()
"""


def test_a_daemon_thread_calling_under_a_lock_as_the_program_ends_does_not_hang_the_exit() -> None:
    # logging's exit handler, run after lume_sync's, waits for the handler's lock.
    done = python_c(_LOGGING_TO_THE_SERVICE, timeout=30)
    assert done.returncode == 0, done.stderr


_IN_A_SUB_INTERPRETER = """
    import _testcapi

    code = (
        "from lume_sync import _loop\\n"
        "async def answer():\\n"
        "    return 42\\n"
        "print('answer', _loop.run(answer), flush=True)\\n"
        "_loop.shutdown()\\n"
    )
    _testcapi.run_in_subinterp(code)
"""


def test_the_loop_starts_in_a_sub_interpreter() -> None:
    # Signal handlers can be set in the main interpreter only; a sub-interpreter's never run.
    pytest.importorskip("_testcapi")
    done = python_c(_IN_A_SUB_INTERPRETER, timeout=60)
    assert "answer 42" in done.stdout, done.stderr
