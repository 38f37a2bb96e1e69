"""The suite's plugins and hypothesis profiles (tests/README.md: how to keep the suite fast)."""

from __future__ import annotations

import importlib.util

import pytest

from ._profiles import load

# pyproject turns plugin autoloading off (see its addopts): these are the plugins the suite uses.
# schemathesis comes with the dev extra; the Airflow venv runs tests/airflow without it.
pytest_plugins = [
    "anyio.pytest_plugin",
    "_hypothesis_pytestplugin",
    "lume_async.testing._pytest_plugin",
]
if importlib.util.find_spec("schemathesis") is not None:
    pytest_plugins.append("schemathesis.pytest.plugin")

load()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
