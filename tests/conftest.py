"""The suite's plugins and hypothesis profiles (tests/README.md: how to keep the suite fast)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from ._profiles import load

load()


def pytest_configure(config: pytest.Config) -> None:
    """Load schemathesis's plugin where it is installed (pyproject's addopts name the others).

    It comes with the dev extra; the Airflow venv runs tests/airflow without it. By its entry-point
    name, so that a run with plugin autoloading on (``-o addopts=``) loads it once.
    """
    if importlib.util.find_spec("schemathesis") is not None:
        config.pluginmanager.import_plugin("schemathesis", consider_entry_points=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per CPU.

    Half of the suite's time is waiting (on subprocesses, sockets, nginx's real rate limit), not
    computing: a second worker per CPU fills it (on 2 CPUs, 4 workers take ~30% less wall time).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 * (cpus or 1)
