"""The provider's tests: the real Apache Airflow 3 against the emulator, no mocks of Airflow.

They need the ``airflow`` extra, in a venv of their own (the main venv stays light):

    python -m venv /tmp/lume-airflow && . /tmp/lume-airflow/bin/activate
    pip install -e '.[airflow]' pytest pytest-timeout pytest-xdist hypothesis
    python -m pytest tests/airflow

Without Airflow every module here is skipped (each starts with ``pytest.importorskip``).

Airflow reads its configuration when first imported, so this file points it at a private
``AIRFLOW_HOME`` before any test module imports it. ``dag.test()`` needs the DAG in the metadata
database, which it fills by parsing the DAGs folder: that folder holds one file that hands the
parser the DAGs the tests built in this process (``tests/airflow/_registry.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HAS_AIRFLOW = importlib.util.find_spec("airflow") is not None
HERE = Path(__file__).resolve().parent

# Airflow's own warnings, not the provider's: dag.test() drives its execution API through
# starlette's test client, which warns about the httpx it uses.
AIRFLOW_WARNINGS = ("ignore:Using `httpx` with `starlette.testclient` is deprecated",)

_DAGS_FILE = '''\
"""The DAGs the tests built in this process (dag.test() parses this folder)."""

from tests.airflow._registry import DAGS

globals().update(DAGS)
'''

if HAS_AIRFLOW:
    _home = Path(tempfile.mkdtemp(prefix="lume-airflow-home-"))
    (_home / "dags").mkdir()
    (_home / "dags" / "registered_dags.py").write_text(_DAGS_FILE, encoding="utf-8")
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_home / "dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            # Airflow arms SIGALRM itself (execution_timeout, DAG parsing): time tests by thread.
            item.add_marker(pytest.mark.timeout(90, method="thread"), append=False)
            for spec in AIRFLOW_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


def pytest_unconfigure(config: pytest.Config) -> None:
    home = os.environ.get("AIRFLOW_HOME", "")
    if HAS_AIRFLOW and Path(home).name.startswith("lume-airflow-home-"):
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """An empty metadata database, migrated once per session."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="session")
def session_emulator() -> Iterator[Any]:
    from lume_async.testing import Emulator

    with Emulator(time_scale=100) as emu:
        os.environ["AIRFLOW_CONN_LUME_DEFAULT"] = json.dumps(
            {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
        )
        try:
            yield emu
        finally:
            del os.environ["AIRFLOW_CONN_LUME_DEFAULT"]


@pytest.fixture
def emu(session_emulator: Any) -> Any:
    """The emulator behind the ``lume_default`` connection, emptied for each test."""
    session_emulator.reset()
    return session_emulator


@pytest.fixture
def lume(emu: Any) -> Iterator[Any]:
    """A blocking client of the emulator, to set up and inspect runs from the test."""
    from lume_sync import Lume

    with Lume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


@pytest.fixture
def triggerer_on_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients the hook makes (the triggerer's) wait out their retries in virtual time."""
    import functools

    import lume_airflow._hook
    from lume_async import AsyncLume
    from lume_async.testing import VirtualClock

    monkeypatch.setattr(
        lume_airflow._hook, "AsyncLume", functools.partial(AsyncLume, clock=VirtualClock())
    )


@pytest.fixture
def run_dag(airflow_db: None, emu: Any) -> Callable[..., Any]:
    """Run a DAG with ``dag.test()`` (tasks, deferrals and triggers in this process)."""
    from tests.airflow._registry import DAGS

    def run(dag: Any, **kwargs: Any) -> Any:
        DAGS.clear()
        DAGS[dag.dag_id] = dag
        return dag.test(**kwargs)

    return run


def run_dag_file(code: str, tmp_path: Path, name: str) -> tuple[int, str, dict[str, Any]]:
    """Run ``code`` as its reader would, ``python name`` (its ``dag.test()``), against an
    emulator fast enough that no poll interval is waited out; the exit status, its output, and
    the emulator's stats."""
    from lume_async.testing import Emulator

    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / name
    path.write_text(code, encoding="utf-8")
    with Emulator(time_scale=1_000_000) as emu:
        env: dict[str, Any] = {
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_LUME_DEFAULT": json.dumps(
                {"conn_type": "lume", "host": emu.url, "password": emu.api_key}
            ),
        }
        warnings = [arg for spec in AIRFLOW_WARNINGS for arg in ("-W", spec)]
        done = subprocess.run(
            [sys.executable, "-W", "error", *warnings, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=80,
            check=False,
        )
        stats = emu.stats()
    return done.returncode, done.stdout + done.stderr, stats
