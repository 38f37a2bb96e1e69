"""The suite's plugins and hypothesis profiles (tests/README.md: how to keep the suite fast)."""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from ._bytecode import warm
from ._profiles import load
from ._zygote import Zygote

load()


def pytest_configure(config: pytest.Config) -> None:
    """Load schemathesis's plugin where it is installed (pyproject's addopts name the others).

    It comes with the dev extra; the Airflow venv runs tests/airflow without it. Registered under
    its entry-point name, so that a run with plugin autoloading on (``-o addopts=``) loads it once;
    registered, not imported by that name: ``import_plugin("schemathesis")`` would mark the whole
    package for assertion rewriting (its ~240 modules, rewritten afresh in every worker where
    bytecode is not cached), while only the suite's own asserts need it.
    """
    manager = config.pluginmanager
    if manager.get_plugin("schemathesis") is None and importlib.util.find_spec("schemathesis"):
        from schemathesis.pytest import plugin

        manager.register(plugin, "schemathesis")
    hear_ctrl_c()
    if not hasattr(config, "workerinput"):  # the run's first process: its workers start after
        warm(config)


def hear_ctrl_c() -> None:
    """Handle SIGINT again where the suite was started with it ignored.

    A shell without job control (a script's ``cmd &``, ``nohup``) starts background commands with
    SIGINT ignored, and processes inherit that: the processes the Ctrl-C tests start would never
    hear theirs. A handler is not inherited (exec resets it to the default), so with one here,
    they start as from a terminal.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """Runs example scripts as ``python -W error script.py`` would, importing the SDK once."""
    runner = Zygote()
    yield runner
    runner.close()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per CPU.

    Half of the suite's time is waiting (on subprocesses, sockets, nginx's real rate limit), not
    computing: a second worker per CPU fills it (on 2 CPUs, 4 workers take ~30% less wall time).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 * (cpus or 1)
