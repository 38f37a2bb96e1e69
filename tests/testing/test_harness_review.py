"""The emulator as a harness: what a stop or a reset that cuts an answer short leaves behind,
the clock's hold on event loops, and a stop that cannot end a task.

An answer held after its work (a ``delay`` fault, ``phase="after"``) was done all the same: its
idempotency record must outlive the cut, or the client's retry makes a second run. A sleep that
was cancelled must not keep its loop in a clock shared by many loops. A task on the emulator's
thread that ignores its cancellation must not keep the stop waiting forever.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref

import aiohttp
import pytest
from aiohttp import web

from lume_async import AsyncLume
from lume_async.testing import Emulator, FaultProfile, VirtualClock, _emulator

from ._raw import raw_request, until

HELD_AFTER = FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=60)
HELD_BEFORE = FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=60)
INLINE = b'{"flow_version": "customer_cleaner:v1", "source_data": [{"name": "a"}]}'


# -- an answer cut short after its work was done ---------------------------------------------------


@pytest.mark.anyio
async def test_a_create_whose_late_answer_a_stop_cut_short_is_replayed_after_a_restart() -> None:
    clock = VirtualClock(autojump=False)
    emu = Emulator(clock=clock, faults=HELD_AFTER)
    async with emu:
        _, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(raw_request(emu, "POST", "/v1/runs", INLINE, {"Idempotency-Key": "held-key"}))
        await writer.drain()
        # The run is made; its answer waits a minute (with the run's own end on the clock).
        await until(lambda: emu.stats()["runs_created"] == 1 and clock.sleepers == 2)
        writer.close()  # the client gives up, and the emulator stops (an outage, say)
        await writer.wait_closed()
    assert clock.sleepers == 0
    emu.set_faults(None)
    async with (
        emu,  # back up, with the state it had
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        headers = {"Idempotency-Key": "held-key", "content-type": "application/json"}
        async with api.post("/v1/runs", data=INLINE, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            assert resp.headers.get("idempotent-replayed") == "true"
            replayed = (await resp.json())["id"]
        async with api.get("/v1/runs") as resp:
            assert [run["id"] for run in (await resp.json())["items"]] == [replayed]
    assert emu.stats()["runs_created"] == 1


@pytest.mark.anyio
async def test_a_key_whose_answer_is_held_is_still_in_flight_until_it_is_out() -> None:
    clock = VirtualClock(autojump=False)
    async with (
        Emulator(clock=clock, faults=HELD_AFTER) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        headers = {"Idempotency-Key": "k", "content-type": "application/json"}

        async def create() -> tuple[int, dict[str, object]]:
            async with api.post("/v1/runs", data=INLINE, headers=headers) as resp:
                return resp.status, await resp.json()

        first = asyncio.ensure_future(create())
        await until(lambda: clock.sleepers == 2)
        emu.set_faults(None)
        status, body = await create()
        assert (status, body["code"]) == (409, "idempotency_in_flight")
        clock.advance(60)
        status, run = await first
        assert status == 201
        assert await create() == (201, run)


@pytest.mark.anyio
async def test_a_create_a_reset_cut_short_is_sent_again_by_the_sdk_after_the_reset() -> None:
    clock = VirtualClock(autojump=False)
    async with (
        Emulator(clock=clock, faults=HELD_BEFORE) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        created = asyncio.ensure_future(
            lume.runs.create("customer_cleaner:v1", source_path="s3://bucket/cut")
        )
        await until(lambda: clock.sleepers == 1)  # held by the fault
        emu.reset()  # the answer is dropped: the connection closes without one
        await until(lambda: clock.next_deadline is not None and clock.next_deadline < 60)
        clock.advance(60)  # the client's backoff: it sends the create again
        run = await created
        stats = emu.stats()
        assert (stats["runs_created"], stats["requests"]) == (1, {"POST /v1/runs": {"201": 1}})
        assert [r.id async for r in lume.runs.list()] == [run.id]


# -- a clock shared by many event loops ------------------------------------------------------------


def test_a_clock_keeps_no_loop_whose_sleeps_were_cancelled() -> None:
    clock = VirtualClock(autojump=False)  # say, a module's, as a harness with advance() has it
    loops = []

    async def a_test() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        sleep = asyncio.ensure_future(clock.sleep(100))  # a timeout that never came
        await asyncio.sleep(0)
        sleep.cancel()
        await asyncio.gather(sleep, return_exceptions=True)

    for _ in range(3):
        asyncio.run(a_test())
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]
    assert (clock.sleepers, clock.next_deadline) == (0, None)


def test_a_sleep_begun_as_the_jumper_ends_is_still_woken() -> None:
    clock = VirtualClock()

    async def main() -> None:
        woken = asyncio.Event()

        async def first() -> None:
            await clock.sleep(1)  # the jumper wakes it, and finds nothing more to jump to
            woken.set()

        async def second() -> None:
            await woken.wait()
            await clock.sleep(1)  # begun before the ended jumper's done callback has run

        await asyncio.gather(first(), second())

    asyncio.run(main())
    assert clock.monotonic() == 2


# -- stopping the emulator's thread ----------------------------------------------------------------


async def _stubborn() -> None:
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            continue


async def _start_stubborn(app: web.Application) -> None:
    asyncio.get_running_loop().create_task(_stubborn())  # the loop holds it


def test_a_task_that_ignores_its_cancellation_does_not_hold_the_stop_forever(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_emulator, "_CANCEL_WAIT", 0.01, raising=False)
    emu = Emulator()
    emu.app.on_startup.append(_start_stubborn)  # a task of the user's on the emulator's loop
    emu.__enter__()
    stopper = threading.Thread(target=emu.__exit__, args=(None, None, None), daemon=True)
    stopper.start()
    stopper.join(timeout=30)
    assert not stopper.is_alive(), "the stop waits for a task that never ends"
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        del emu
        gc.collect()  # the task left on the closed loop is reported as it goes, here
    assert any("destroyed but it is pending" in r.getMessage() for r in caplog.records)
