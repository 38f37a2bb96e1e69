"""Run handles as a principal: the shared poller sees what its key may read, and nothing more;
a rerun is shared as its run was."""

from __future__ import annotations

import anyio
import pytest

from lume_async import AsyncLume, RunNotFoundError, RunStatus
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
LONG = 1_000_000  # emulator seconds: a run that only ends when the test moves the emulator


async def test_a_monitor_waits_on_the_shared_poller_until_the_run_ends(
    emu: Emulator, clock: VirtualClock
) -> None:
    owner = AsyncLume(api_key=emu.add_principal("ana@example.com"), base_url=emu.url)
    watcher_key = emu.add_principal("cy@example.com", groups=["analysts"])
    watcher = AsyncLume(api_key=watcher_key, base_url=emu.url, clock=clock)
    async with owner, watcher:
        runs = [
            await owner.run(
                FLOW, f"synthetic://w{i}?duration={LONG}", monitoring_groups=["analysts"]
            )
            for i in range(3)
        ]
        handles = [await watcher.runs.get(run.id) for run in runs]
        async with anyio.create_task_group() as tg:

            async def finish() -> None:
                await clock.sleep(0.05)
                emu.advance(2 * LONG)

            tg.start_soon(finish)
            done = await watcher.runs.wait_all(handles, poll_interval=0.01, timeout=5)
    assert all(run.status is RunStatus.SUCCEEDED for run in done)
    assert emu.stats()["requests"]["POST /v1/runs/batch-get"]["200"] >= 1


async def test_a_waiter_whose_key_loses_access_fails_with_run_not_found(
    emu: Emulator, clock: VirtualClock
) -> None:
    owner = AsyncLume(api_key=emu.add_principal("ana@example.com"), base_url=emu.url)
    watcher = AsyncLume(api_key=emu.add_principal("cy@example.com"), base_url=emu.url, clock=clock)
    async with owner, watcher:
        shared = await owner.run(
            FLOW, f"synthetic://s?duration={LONG}", monitoring_by=["cy@example.com"]
        )
        kept = await owner.run(
            FLOW, f"synthetic://k?duration={LONG}", monitoring_by=["cy@example.com"]
        )
        lost = await watcher.runs.get(shared.id)
        still = await watcher.runs.get(kept.id)
        async with anyio.create_task_group() as tg:

            async def revoke_then_finish() -> None:
                await clock.sleep(0.05)
                await shared.update(monitoring_by=[])
                await clock.sleep(0.05)
                emu.advance(2 * LONG)

            tg.start_soon(revoke_then_finish)
            with pytest.raises(RunNotFoundError):
                await lost.wait(poll_interval=0.01, timeout=5)
            await still.wait(poll_interval=0.01, timeout=5)  # the poller goes on for the others
    assert still.status is RunStatus.SUCCEEDED


async def test_a_managers_rerun_is_shared_as_the_run_was(vemu: Emulator) -> None:
    # In virtual time: the rerun is still running when it is cancelled, however slow the machine.
    emu = vemu
    owner = AsyncLume(api_key=emu.add_principal("ana@example.com"), base_url=emu.url)
    manager = AsyncLume(
        api_key=emu.add_principal("bo@example.com", groups=["ops"]), base_url=emu.url
    )
    async with owner, manager:
        first = await owner.run(
            FLOW,
            "synthetic://nightly?duration=1",
            managing_groups=["ops"],
            monitoring_by=["cy@example.com"],
        )
        emu.advance(5)
        again = await (await manager.runs.get(first.id)).rerun()
        assert again.id != first.id
        assert (again.run_owner, again.created_by) == ("ana@example.com", "bo@example.com")
        assert again.managing_groups == ("ops",)
        assert again.monitoring_by == ("cy@example.com",)
        assert (await owner.runs.cancel(again.id)).status is RunStatus.CANCELED
