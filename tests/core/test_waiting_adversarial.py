"""Waiting at scale against the edges: many waits ending together, a service that asks to be left
alone, one error failing many waits.

The shared poller runs on a virtual clock with an in-memory ``batch-get`` that records every
request, so the tests count requests and read virtual times exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType

import pytest

from lume_async import RunNotFoundError, RunTimeoutError, ServerError
from lume_async._batch_get import RunsAnswer
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._waiting import Waiting
from lume_async.models import RunData
from lume_async.testing import VirtualClock

from ._scripted import run_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def run_id(n: int) -> str:
    return f"run_{n:026d}"


class Service:
    """Run statuses by id, answered as ``batch-get`` answers; records each request's time and
    ids. ``refuse``, when set, is raised instead of answering; answers take ``delay`` seconds."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.status: dict[str, str] = {}
        self.requests: list[tuple[float, list[str]]] = []
        self.refuse: BaseException | None = None
        self.delay = 0.0
        self.waiting = Waiting(self.fetch, confirm=self.confirm, clock=clock, max_interval=30)

    async def fetch(self, ids: list[str], known: object = None) -> RunsAnswer:
        self.requests.append((self.clock.monotonic(), list(ids)))
        await self.clock.sleep(self.delay)
        if self.refuse is not None:
            raise self.refuse
        return RunsAnswer({i: run_json(i, self.status[i]) for i in ids if i in self.status})

    async def confirm(self, rid: str) -> RunData | None:
        found = self.status.get(rid)
        return None if found is None else run_from_obj(run_json(rid, found))

    def cell(self, n: int) -> RunCell:
        self.status[run_id(n)] = "PENDING"
        return RunCell(run_from_obj(run_json(run_id(n))))

    def at(self, when: float) -> list[list[str]]:
        return [ids for t, ids in self.requests if t == pytest.approx(when)]


@pytest.fixture
def service() -> Service:
    return Service(VirtualClock())


async def timed_out(wait: Awaitable[object]) -> bool:
    try:
        await wait
    except RunTimeoutError:
        return True
    return False


# -- last looks at deadlines --------------------------------------------------------------------


async def test_waits_whose_deadlines_pass_together_share_their_last_look(service: Service) -> None:
    cells = [service.cell(n) for n in range(1000)]
    waits = (service.waiting.wait(c, c, timeout=10, poll_interval=3) for c in cells)

    assert all(await asyncio.gather(*map(timed_out, waits)))

    # One look at the deadline for all of them: ten requests of 100, not 1000 of one run each.
    assert sorted(map(len, service.at(10))) == [100] * 10
    assert {i for ids in service.at(10) for i in ids} == {c.data.id for c in cells}


async def test_a_shared_last_look_ends_each_wait_whose_run_finished(service: Service) -> None:
    cells = [service.cell(n) for n in range(250)]

    async def finish_odd_ones() -> None:
        await service.clock.sleep(9.5)  # after the last sweep, before the deadline
        for cell in cells[1::2]:
            service.status[cell.data.id] = "SUCCEEDED"

    waits = [service.waiting.wait(c, c, timeout=10, poll_interval=3) for c in cells]
    outcomes, _ = await asyncio.gather(asyncio.gather(*map(timed_out, waits)), finish_odd_ones())

    assert outcomes == [True, False] * 125
    assert len(service.at(10)) == 3


async def test_a_wait_cancelled_in_a_shared_last_look_leaves_the_look_to_the_others(
    service: Service,
) -> None:
    cells = [service.cell(n) for n in range(3)]
    service.status[cells[2].data.id] = "SUCCEEDED"
    service.delay = 1.0
    waits = [
        asyncio.ensure_future(service.waiting.wait(c, c, timeout=10, poll_interval=60))
        for c in cells
    ]
    await service.clock.sleep(10.5)  # the look at the deadline is in flight: cancel one wait
    assert len(service.at(10)) == 1
    waits[0].cancel()

    done = await asyncio.gather(*waits, return_exceptions=True)

    assert isinstance(done[0], asyncio.CancelledError)
    assert isinstance(done[1], RunTimeoutError)
    assert done[2] is None and cells[2].data.is_terminal


async def test_no_last_look_while_the_service_asked_to_hold_off(service: Service) -> None:
    service.refuse = ServerError("busy", status_code=503, retry_after=60.0)
    cells = [service.cell(n) for n in range(20)]
    waits = (
        service.waiting.wait(c, c, timeout=5 + n, poll_interval=1) for n, c in enumerate(cells)
    )

    assert all(await asyncio.gather(*map(timed_out, waits)))

    # Retry-After: 60 (held to max_interval, 30), and every wait was over by then.
    assert [t for t, _ in service.requests] == [0.0]


async def test_a_new_waiter_does_not_cut_short_a_hold_the_service_asked_for(
    service: Service,
) -> None:
    service.refuse = ServerError("busy", status_code=503, retry_after=20.0)
    first, second = service.cell(1), service.cell(2)
    assert await timed_out(service.waiting.wait(first, first, timeout=1, poll_interval=1))
    await service.clock.sleep(1)  # nobody waits now: the sweeper has ended
    service.refuse = None
    service.status[second.data.id] = "SUCCEEDED"

    await service.waiting.wait(second, second, timeout=None, poll_interval=1)

    assert [t for t, _ in service.requests] == [0.0, 20.0]


# -- one error, many waits ----------------------------------------------------------------------


def frames(tb: TracebackType | None) -> int:
    count = 0
    while tb is not None:
        count, tb = count + 1, tb.tb_next
    return count


async def test_an_error_failing_many_as_completed_does_not_gather_their_frames(
    service: Service,
) -> None:
    cell = service.cell(1)
    del service.status[cell.data.id]  # the service no longer knows the run

    async def each_as_it_ends() -> None:
        async for _ in service.waiting.as_completed(
            [cell], cell_of=lambda c: c, timeout=None, poll_interval=1
        ):
            pass

    errors = await asyncio.gather(*(each_as_it_ends() for _ in range(200)), return_exceptions=True)

    assert all(isinstance(error, RunNotFoundError) for error in errors)
    # Its traceback is that of the wait that raised it last, not of all 200 stacked (each
    # holding that wait's frames, and what they hold, for as long as the error is kept).
    assert frames(errors[0].__traceback__) < 10


async def test_a_deadline_during_a_sweep_still_looks_at_a_run_the_sweep_does_not_ask_about(
    service: Service,
) -> None:
    service.delay = 1.0  # a slow service: each sweep is in flight for a second
    busy = service.cell(1)
    sweeping = asyncio.ensure_future(
        service.waiting.wait(busy, busy, timeout=None, poll_interval=1)
    )
    await service.clock.sleep(0.5)  # the first sweep, about ``busy`` alone, is in flight
    done = service.cell(2)
    service.status[done.data.id] = "SUCCEEDED"

    await service.waiting.wait(done, done, timeout=0, poll_interval=1)  # one look, not none

    assert done.data.is_terminal
    assert service.at(0.5) == [[done.data.id]]
    sweeping.cancel()
