"""The testing toolkit as a user's harness: what one test leaves behind, seen by the next.

An emulator stopped (or reset) while it still answers a request, rate limits changed within a
test, answers whose wait overflows, a clock shared by many event loops, many emulators in one
process, and the fixture's options given at several levels of a test module.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import textwrap
import threading
import weakref
from pathlib import Path

import aiohttp
import pytest

from lume_async.testing import Emulator, FaultProfile, VirtualClock, _http

from .._zygote import Finished, Zygote
from ._raw import raw_request, until

CUSTOMERS = "customer_cleaner:v1"
LATE = FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=60)


def _handler_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "RequestHandler" in repr(t.get_coro())]


# -- requests still being answered when the emulator stops or resets -------------------------------


@pytest.mark.anyio
async def test_a_request_whose_client_left_does_not_outlive_an_emulator_on_the_loop() -> None:
    clock = VirtualClock(autojump=False)
    async with Emulator(clock=clock, faults=LATE) as emu:
        _, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(raw_request(emu, "GET", "/v1/flows"))
        await writer.drain()
        await until(lambda: clock.sleepers == 1)  # the answer waits a minute of virtual time
        writer.close()
        await writer.wait_closed()
    assert clock.sleepers == 0
    assert _handler_tasks() == []


def test_a_request_whose_client_left_does_not_outlive_an_emulator_on_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(autojump=False)
    reached = threading.Event()

    async def leave_a_request(emu: Emulator) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(raw_request(emu, "GET", "/v1/flows"))
        await writer.drain()
        await until(lambda: clock.sleepers == 1)
        reached.set()
        writer.close()
        await writer.wait_closed()

    with (
        caplog.at_level(logging.ERROR, logger="asyncio"),
        Emulator(clock=clock, faults=LATE) as emu,
    ):
        asyncio.run(leave_a_request(emu))
    assert reached.is_set()
    assert clock.sleepers == 0
    gc.collect()  # a task left pending on the emulator's closed loop is reported as it goes
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.anyio
async def test_reset_drops_a_request_still_being_answered() -> None:
    clock = VirtualClock(autojump=False)
    async with Emulator(clock=clock, faults=LATE) as emu:
        body = b'{"flow_version": "customer_cleaner:v1", "source_path": "s3://left/over"}'
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(raw_request(emu, "POST", "/v1/runs", body))
        await writer.drain()
        await until(lambda: clock.sleepers == 1)
        emu.reset()  # the next test starts here, with no faults
        clock.advance(60)
        await until(lambda: clock.sleepers == 0)
        for _ in range(10):
            await asyncio.sleep(0)
        assert emu.stats()["runs_created"] == 0
        assert await reader.read() == b""  # the dropped request gets no answer
        writer.close()
        await writer.wait_closed()
        async with (
            aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
            api.get("/v1/runs") as resp,
        ):
            assert (await resp.json())["items"] == []


# -- rate limits and Retry-After -------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_answer_to_retry_much_later_is_still_the_answer_configured() -> None:
    far = FaultProfile(rate=1.0, kinds=("503",), phase="before", retry_after=1e306)
    async with (
        Emulator(clock=VirtualClock(autojump=False), rate_limit=1e-320, rate_burst=1) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        async with api.get("/v1/flows") as resp:
            assert resp.status == 200
        async with api.get("/v1/flows") as resp:  # no token for ~1e320 s
            assert resp.status == 429, await resp.text()
            assert resp.headers["Retry-After"] == str(2**31)
        emu.set_rate_limit(None)
        emu.set_faults(far)
        async with api.get("/v1/flows") as resp:
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"] == str(2**31)
            assert resp.headers["retry-after-ms"] == str(2**31 * 1000)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["method", "control plane"])
async def test_a_new_rate_limit_starts_with_full_buckets(how: str) -> None:
    async with (
        Emulator(clock=VirtualClock(autojump=False), rate_limit=1, rate_burst=1) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        statuses = []
        for _ in range(2):
            async with api.get("/v1/flows") as resp:
                statuses.append(resp.status)
        assert statuses == [200, 429]
        if how == "method":
            emu.set_rate_limit(100, burst=5)
        else:
            config = {"rate_limit": 100, "rate_burst": 5}
            async with api.post("/_emulator/config", json=config) as resp:
                assert resp.status == 200
        statuses = []
        for _ in range(6):  # no time passes: the new burst, then the limit
            async with api.get("/v1/flows") as resp:
                statuses.append(resp.status)
        assert statuses == [200] * 5 + [429]


# -- what many emulators and event loops leave in one process --------------------------------------


def test_a_clock_shared_by_many_event_loops_keeps_none_of_them() -> None:
    clock = VirtualClock()  # say, a module's, while each test runs on a loop of its own
    loops = []

    async def a_test() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await clock.sleep(5)

    for _ in range(3):
        asyncio.run(a_test())
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]
    assert clock.monotonic() == 15


@pytest.mark.anyio
async def test_emulators_started_one_after_another_leave_no_per_emulator_state() -> None:
    async def one() -> None:
        async with (
            Emulator() as emu,
            aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
        ):
            for path in ("/v1/flows", "/v1/runs", "/_emulator/stats"):
                async with api.get(path) as resp:
                    assert resp.status == 200

    await one()
    known = len(_http._ROUTES)
    for _ in range(3):
        await one()
    assert len(_http._ROUTES) == known


# -- the fixture's options -------------------------------------------------------------------------


def _pytest(tmp_path: Path, zygote: Zygote, code: str) -> Finished:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = ["-q", "-p", "no:cacheprovider", "-W", "error", "-p", "lume_emulator"]
    return zygote.pytest(args, cwd=tmp_path, env=env, timeout=120)


def test_marker_options_from_every_level_reach_the_emulator(tmp_path: Path, zygote: Zygote) -> None:
    done = _pytest(
        tmp_path,
        zygote,
        """
        import pytest

        pytestmark = pytest.mark.lume_emulator(time_scale=100, api_key="module")

        def options(emu):
            return emu._service.clock.scale, emu._service.seed, emu.api_key

        def test_the_module_level(lume_emulator):
            assert options(lume_emulator) == (100, 0, "module")

        @pytest.mark.lume_emulator(seed=3)
        def test_a_function_level_adds_to_it(lume_emulator):
            assert options(lume_emulator) == (100, 3, "module")

        @pytest.mark.lume_emulator(api_key="class", seed=1)
        class TestAClass:
            @pytest.mark.lume_emulator(seed=2)
            def test_the_closest_wins(self, lume_emulator):
                assert options(lume_emulator) == (100, 2, "class")

        @pytest.mark.parametrize("lume_emulator", [{"time_scale": 7}, {"seed": 5}], indirect=True)
        def test_indirect_parameters_win_over_markers(lume_emulator):
            assert options(lume_emulator) in [(7, 0, "module"), (100, 5, "module")]
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout, done.stdout


def test_an_indirect_parameter_that_is_not_a_dict_is_refused(
    tmp_path: Path, zygote: Zygote
) -> None:
    done = _pytest(
        tmp_path,
        zygote,
        """
        import pytest

        @pytest.mark.parametrize("lume_emulator", [100], indirect=True)
        def test_it(lume_emulator):
            pass
        """,
    )
    assert done.returncode != 0, done.stdout
    assert "dict of Emulator keyword arguments" in done.stdout, done.stdout
