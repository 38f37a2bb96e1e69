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
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from lume_async import AsyncLume, AsyncRun, RunStatus
from lume_async._batch_get import RunsAnswer
from lume_async._converter import decode_run
from lume_async._responses import Response
from lume_async._runs_core import RunCell
from lume_async._waiting import Waiting
from lume_async.models import WebhookEvent, WebhookRunData
from lume_async.testing import Emulator, FaultProfile, VirtualClock
from lume_async.webhooks import WebhookReceiver, new_secret, sign

from ..core._scripted import run_json

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


async def test_a_burst_of_events_is_fetched_with_at_most_eight_requests_in_flight() -> None:
    # 2,000 runs named by events at once: the fetches they start keep to the eight requests a
    # sweep may have in flight, as the sweeps' own do.
    n = 2000
    ids = [f"run_01HY{i:022d}" for i in range(n)]
    ended = False
    in_flight = peak = burst_peak = 0

    def body(run_id: str) -> bytes:
        status = "SUCCEEDED" if ended else "PENDING"
        return orjson.dumps({**run_json(run_id), "status": status, "updated_at": _AT[ended]})

    async def fetch(run_ids: list[str], known: Any) -> RunsAnswer:
        nonlocal in_flight, peak, burst_peak
        in_flight += 1
        peak = max(peak, in_flight)
        if ended:
            burst_peak = max(burst_peak, in_flight)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            items = b",".join(body(run_id) for run_id in run_ids)
            response = Response(200, _HEADERS, b'{"items":[' + items + b'],"missing":[]}')
            return RunsAnswer(response, None)
        finally:
            in_flight -= 1

    cells = [RunCell(decode_run(body(run_id), compact=True)) for run_id in ids]
    waiting = Waiting(fetch, clock=VirtualClock())
    waiting.enable_push()
    done = 0

    async def consume() -> None:
        nonlocal done
        async for _ in waiting.as_completed(
            cells, cell_of=lambda cell: cell, timeout=None, poll_interval=1000
        ):
            done += 1

    with anyio.fail_after(REAL):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            while waiting.sweeps == 0 or in_flight:  # the first look at every run, then quiet
                await anyio.lowlevel.checkpoint()
            ended = True
            for i, run_id in enumerate(ids):
                waiting.on_event(_event(i, run_id))
    assert done == n
    assert 0 < burst_peak <= 8
    assert peak <= 8


_AT = {False: "2026-01-01T00:00:00.000Z", True: "2026-01-01T00:01:00.000Z"}
_HEADERS = CIMultiDictProxy(CIMultiDict({"x-request-id": "req_burst"}))


def _event(i: int, run_id: str) -> WebhookEvent:
    return WebhookEvent(
        id=f"evt_{i:08d}",
        type="run.succeeded",
        created_at=datetime.now(UTC),
        data=WebhookRunData(run_id=run_id, status=RunStatus.SUCCEEDED, flow_version=FLOW),
    )
