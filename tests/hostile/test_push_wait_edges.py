"""Completion events as the fast path of waiting, against the emulator in virtual time.

Events are delivered the way a web framework hands them on: signed with the documented scheme
and posted to the receiver's own app, which verifies them and tells the client. The emulator
answers the polls; its webhook deliveries are not registered, so only the events posted here
reach the client, and the ones left out stand for deliveries that were lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lume_async import AsyncLume, AsyncRun, RunStatus
from lume_async.testing import Emulator, FaultProfile, VirtualClock
from lume_async.webhooks import WebhookReceiver, new_secret, sign

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
# Seconds the tests allow in real time for anything that takes no virtual time.
REAL = 60


class Sender:
    """Posts signed completion events to a receiver's app, as the service would."""

    def __init__(self, http: TestClient[object, object], receiver: WebhookReceiver, secret: str):
        self._http = http
        self._receiver = receiver
        self._secret = secret
        self.sent = 0

    async def completed(self, run: AsyncRun, status: str = "SUCCEEDED") -> None:
        self.sent += 1
        body = orjson.dumps(
            {
                "id": f"evt_{self.sent:08d}_{run.id}",
                "type": f"run.{status.lower()}",
                "created_at": datetime.now(UTC).isoformat(),
                "data": {"run_id": run.id, "status": status, "flow_version": FLOW},
            }
        )
        with anyio.fail_after(REAL):
            answer = await self._http.post(
                self._receiver.path, data=body, headers=sign(body, self._secret)
            )
            assert answer.status == 200, await answer.text()


@asynccontextmanager
async def pushed(emu: Emulator, clock: VirtualClock) -> AsyncIterator[tuple[AsyncLume, Sender]]:
    """A client whose waits hear the events a ``Sender`` posts to its receiver."""
    secret = new_secret()
    receiver = WebhookReceiver(secret)
    with anyio.fail_after(REAL):
        async with (
            TestClient(TestServer(receiver.app)) as http,
            AsyncLume(
                api_key=emu.api_key, base_url=emu.url, clock=clock, webhooks=receiver
            ) as lume,
        ):
            yield lume, Sender(http, receiver, secret)


async def test_a_stream_of_events_for_other_runs_does_not_hold_back_the_safety_net(
    vemu: Emulator, clock: VirtualClock
) -> None:
    # One run whose event is lost, beside 400 runs that end a tenth of a second apart, each
    # announced by its event; every request takes 0.2 s, so events keep arriving while the
    # client fetches the runs earlier ones named.
    async with pushed(vemu, clock) as (lume, sender):
        with anyio.fail_after(REAL):
            lost = await lume.run(FLOW, "synthetic://lost?rows=1&duration=5")
            made = await lume.runs.create_many(
                {"flow_version": FLOW, "source_path": f"synthetic://s{i}?rows=1&duration={d}"}
                for i, d in enumerate(f"{2 + i / 10:.1f}" for i in range(400))
            )
        stream = [outcome.unwrap() for outcome in made]
        began = clock.monotonic()
        vemu.set_faults(FaultProfile(rate=1, kinds=("delay",), phase="before", delay=0.2))

        async def announce() -> None:
            for i, run in enumerate(stream):
                await clock.sleep(began + 2.05 + i / 10 - clock.monotonic())
                await sender.completed(run)

        with anyio.fail_after(REAL):
            async with anyio.create_task_group() as tg:
                tg.start_soon(announce)
                tg.start_soon(lambda: lume.runs.wait_all(stream, timeout=600))
                await lost.wait(timeout=600)
                lost_after = clock.monotonic() - began
        assert lost.status is RunStatus.SUCCEEDED
        # It ended at 5 s; the safety net sweeps every 30 s at most. The events for other runs
        # must not keep the next sweep from starting until they stop (at 42 s).
        assert lost_after <= 5 + 30 + 1, lost_after
        assert all(run.status is RunStatus.SUCCEEDED for run in stream)
