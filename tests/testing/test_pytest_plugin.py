"""The pytest plugin every user's pytest loads: nothing heavy until its fixture is used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .._zygote import Finished, Zygote


def python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_importing_the_plugin_imports_nothing_but_itself() -> None:
    added = python(
        """
        import sys
        import pytest
        before = set(sys.modules)
        import lume_pytest
        print(sorted(set(sys.modules) - before))
        """
    )
    assert added == "['lume_pytest']"


def run_pytest(tmp_path: Path, test_code: str, zygote: Zygote | None) -> Finished:
    """pytest on ``test_code``; ``loaded.txt`` lists the SDK modules it loaded.

    Without a ``zygote``: a fresh ``python -m pytest`` process, autoloading every installed
    plugin, as a user's pytest does. Autoloading (hypothesis, schemathesis...) costs about a
    second of CPU per process, so only the test about autoloading does; the others name the
    plugins they need by their entry points (``-p lume_emulator``), which loads the same plugin
    the same way, in a pytest forked from the ``zygote`` (a process that has imported pytest,
    but neither the SDK nor any plugin: see ``tests/_zygote.py``).
    """
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import sys

            def pytest_sessionfinish(session):
                loaded = sorted(m for m in sys.modules if m.split(".")[0] == "lume_async")
                with open("loaded.txt", "w") as f:
                    f.write(" ".join(loaded))
                with open("registered.txt", "w") as f:
                    f.write(str(session.config.pluginmanager.has_plugin("lume_emulator")))
            """
        )
    )
    (tmp_path / "test_user.py").write_text(textwrap.dedent(test_code))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    args = ["-q", "-p", "no:cacheprovider", "-W", "error"]
    if zygote is None:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Finished(done.returncode, done.stdout, done.stderr)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    args += ["-p", "lume_emulator", "-p", "anyio"]
    return zygote.pytest(args, cwd=tmp_path, env=env, timeout=120)


def test_a_test_run_that_never_asks_for_the_fixture_never_loads_the_sdk(tmp_path: Path) -> None:
    # As a user's pytest finds it: autoloaded, with every other installed plugin.
    done = run_pytest(
        tmp_path, "def test_nothing_to_do_with_lume():\n    assert True\n", zygote=None
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "registered.txt").read_text() == "True"
    assert (tmp_path / "loaded.txt").read_text() == ""


def test_the_marker_is_registered_without_loading_the_sdk(tmp_path: Path, zygote: Zygote) -> None:
    done = run_pytest(
        tmp_path,
        """
        import pytest

        @pytest.mark.lume_emulator(time_scale=10)
        def test_marked_but_not_using_the_fixture():
            pass
        """,
        zygote,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # -W error: no unknown-marker warning
    assert (tmp_path / "loaded.txt").read_text() == ""


@pytest.mark.parametrize("style", ["sync", "anyio"])
def test_the_fixture_serves_sync_and_async_tests(
    tmp_path: Path, style: str, zygote: Zygote
) -> None:
    code = {
        "sync": """
            import pytest
            from lume_sync import Lume

            @pytest.mark.lume_emulator(time_scale=100)
            def test_a_run(lume_emulator):
                with Lume(api_key=lume_emulator.api_key, base_url=lume_emulator.url) as lume:
                    run = lume.run("customer_cleaner:v1", "s3://bucket/a")
                    assert run.wait(poll_interval=0.05).status.value == "SUCCEEDED"
        """,
        "anyio": """
            import pytest
            from lume_async import AsyncLume

            @pytest.fixture
            def anyio_backend():
                return "asyncio"  # the SDK runs on asyncio (aiohttp), not on trio

            @pytest.mark.anyio
            @pytest.mark.lume_emulator(time_scale=100)
            async def test_a_run(lume_emulator):
                async with AsyncLume(
                    api_key=lume_emulator.api_key, base_url=lume_emulator.url
                ) as lume:
                    run = await lume.run("customer_cleaner:v1", "s3://bucket/a")
                    await run.wait(poll_interval=0.05)
                    assert run.status.value == "SUCCEEDED"
        """,
    }[style]
    done = run_pytest(tmp_path, code, zygote)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "lume_async.testing" in (tmp_path / "loaded.txt").read_text()
