"""Request logging (``lume_async.http``, ``LUME_LOG``) and request ids on success."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, RunNotFoundError
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from .._profiles import examples
from .._zygote import Finished, Zygote
from ._scripted import RUN_ID, Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

LOGGER = "lume_async.http"
FLOW = "customer_cleaner:v1"
FIELDS = ("http_method", "http_route", "http_status", "duration_ms", "attempt", "request_id")


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == LOGGER]


def everything_logged(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in records)


async def test_each_request_is_one_info_line_with_its_fields(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run(FLOW, "s3://bucket/logged")
        await lume.run_status(run.id)
    create, get = lines(caplog)
    assert create.levelno == logging.INFO
    assert create.getMessage().startswith("POST /v1/runs 201 ")
    assert get.getMessage().startswith("GET /v1/runs/{run_id} 200 ")
    for record in (create, get):
        assert " ms attempt=1 request_id=" in record.getMessage()
        assert {name: getattr(record, name) for name in FIELDS}.keys() == set(FIELDS)
        assert record.request_id and record.request_id in record.getMessage()  # type: ignore[attr-defined]
        assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert emu.api_key not in everything_logged(lines(caplog))


async def test_each_attempt_of_a_retried_request_is_a_line(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before"))
    async with AsyncLume(
        api_key=emu.api_key, base_url=emu.url, max_retries=2, clock=VirtualClock()
    ) as lume:
        with pytest.raises(Exception, match="503"):
            await lume.run_status(RUN_ID)
    records = lines(caplog)
    assert [(r.http_status, r.attempt) for r in records] == [(503, 1), (503, 2), (503, 3)]  # type: ignore[attr-defined]


async def test_a_connection_failure_is_a_line_saying_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with AsyncLume(api_key="k", base_url="http://127.0.0.1:9", max_retries=0) as lume:
        with pytest.raises(Exception, match="cannot connect"):
            await lume.run_status(RUN_ID)
    (record,) = lines(caplog)
    assert record.getMessage().startswith("GET /v1/runs/{run_id} failed ")
    assert "APIConnectionError: " in record.getMessage()
    assert record.http_status is None  # type: ignore[attr-defined]


async def test_debug_adds_the_query_and_the_size(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        await lume.runs.list(label="nightly", page_size=5).collect()
    (record,) = lines(caplog)
    assert "query=" in record.getMessage()
    assert "label=nightly" in record.getMessage()
    assert " bytes=" in record.getMessage()


async def test_nothing_is_logged_above_info(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        await lume.run(FLOW, "s3://bucket/quiet")
    assert lines(caplog) == []


@given(
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40),
    status=st.sampled_from([200, 400, 401, 403, 404, 409, 422, 429, 500, 503]),
)
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
async def test_no_line_ever_holds_the_key_whatever_the_server_says(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture, key: str, status: int
) -> None:
    """Even a server that echoes the key in its answers never gets it into a log line."""
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    echo = {"detail": f"bad key {key}", "code": key, "error_id": key}
    body = run_json() if status == 200 else echo
    scripted.then(Answer(status, body, {"x-request-id": "req_echo"}))
    async with AsyncLume(api_key=key, base_url=scripted.url, max_retries=0) as lume:
        with contextlib.suppress(Exception):
            await lume.runs.list(label="nightly", page_size=1).collect()
    records = lines(caplog)
    assert len(records) == 1
    assert key not in everything_logged(records)


# -- LUME_LOG ---------------------------------------------------------------------------------


def run_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, with warnings as they are by default."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LUME_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


Script = Callable[[str, dict[str, str]], Finished]


@pytest.fixture
def script(tmp_path: Path, zygote: Zygote, monkeypatch: pytest.MonkeyPatch) -> Script:
    """Runs ``code`` as ``python -W error script.py`` would, in a process of its own forked from
    one that has imported the SDK but made no client (LUME_LOG is read at the first client)."""

    def run(code: str, env: dict[str, str]) -> Finished:
        for name in [name for name in os.environ if name.startswith("LUME_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "script.py"
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return zygote.run(path, timeout=60)

    return run


SCRIPT = """
    import asyncio
    from lume_async import AsyncLume
    from lume_async.testing import Emulator

    async def main():
        async with Emulator(api_key="lume_secret_key_for_logs") as emu:
            async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
                await lume.run("customer_cleaner:v1", "s3://bucket/env-logged")

    asyncio.run(main())
"""


@pytest.mark.parametrize("level", ["info", "INFO", "debug"])
def test_lume_log_prints_request_lines_on_stderr(script: Script, level: str) -> None:
    done = script(SCRIPT, {"LUME_LOG": level})
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "lume_async.http" in line]
    assert " INFO lume_async.http: POST /v1/runs 201 " in line
    assert "lume_secret_key_for_logs" not in done.stderr
    assert ("bytes=" in line) is (level == "debug")


def test_without_lume_log_nothing_is_printed(script: Script) -> None:
    done = script(SCRIPT, {})
    assert done.returncode == 0
    assert done.stderr == ""


def test_an_unknown_lume_log_level_is_a_warning_not_a_failure() -> None:
    # A fresh interpreter: with warnings as errors (as the forked scripts run), the warning
    # would stop the script instead of showing what a user sees.
    done = run_script(SCRIPT, {"LUME_LOG": "chatty"})
    assert done.returncode == 0
    assert "LUME_LOG='chatty' is not one of debug, info, warning; ignored" in done.stderr
    assert "lume_async.http" not in done.stderr


def test_the_cli_logs_its_requests_with_lume_log(script: Script) -> None:
    with Emulator() as emu:  # on a thread of its own
        env = {"LUME_LOG": "info", "LUME_BASE_URL": emu.url, "LUME_API_KEY": emu.api_key}
        done = script("from lume_async._cli import main; main(['runs', 'list'])", env)
    assert done.returncode == 0, done.stderr
    assert "lume_async.http: GET /v1/runs 200 " in done.stderr
    assert emu.api_key not in done.stderr


# -- request ids on success -------------------------------------------------------------------


async def test_a_run_handle_knows_the_request_id_of_its_last_answer(
    scripted: ScriptedServer,
) -> None:
    scripted.then(
        Answer(201, run_json(), {"x-request-id": "req_create"}),
        Answer(200, run_json(status="RUNNING"), {"x-request-id": "req_refresh"}),
    )
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        run = await lume.run(FLOW, "s3://bucket/ids")
        assert run.request_id == "req_create"
        await run.refresh()
        assert run.request_id == "req_refresh"
        assert run.data.request_id == "req_refresh"


async def test_waiting_updates_the_request_id_from_the_status_polls(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run(FLOW, "synthetic://ids?duration=5")
        created = run.request_id
        await run.wait(poll_interval=0.05)
        assert run.request_id is not None
        assert run.request_id != created


async def test_listed_and_fetched_runs_carry_request_ids(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run(FLOW, "s3://bucket/listed")
        (listed,) = await lume.runs.list().collect()
        (fetched,) = [o.unwrap() for o in await lume.runs.get_many([run.id])]
    assert listed.request_id and fetched.request_id
    assert len({run.request_id, listed.request_id, fetched.request_id}) == 3


async def test_the_request_id_is_not_part_of_a_runs_equality_or_json(emu: Emulator) -> None:
    from lume_async import _converter

    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        created = await lume.run(FLOW, "s3://bucket/eq")
        await created.wait(poll_interval=0.05)  # finished: two reads describe the same run
        run, again = await lume.run_status(created.id), await lume.run_status(created.id)
    assert run.request_id != again.request_id
    assert run.data == again.data
    assert "request_id" not in _converter.unstructure(run.data)


async def test_an_error_carries_its_request_id(scripted: ScriptedServer) -> None:
    scripted.then(Answer(404, {"detail": "no such run", "code": "not_found"}))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(RunNotFoundError) as caught:
            await lume.run_status(RUN_ID)
    assert caught.value.request_id == "req_test"
