"""Following a run's log: every entry once, in order, as written, ending when the run has ended."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, LogEntry, Page, RunStatus, _converter
from lume_async._clock import Clock
from lume_async._log_stream import MAX_INTERVAL, follow
from lume_async.models import RunData
from lume_async.testing import Emulator, VirtualClock

from .._profiles import examples

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
_names = itertools.count()


def _key(entry: LogEntry) -> tuple[Any, ...]:
    return (entry.time, entry.code, entry.message)


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    page_size=st.integers(1, 5),
    poll_interval=st.sampled_from([0.1, 1.0, 7.0]),
    duration=st.sampled_from([1, 30, 600]),
    reject_rate=st.sampled_from([0.0, 0.3, 1.0]),
    outcome=st.sampled_from([None, "FAILED", "CRASHED"]),
    cancel_after=st.none() | st.floats(0, 700),
)
async def test_following_gives_the_whole_log_once_and_in_order_then_ends(
    vlume: AsyncLume,
    clock: VirtualClock,
    page_size: int,
    poll_interval: float,
    duration: int,
    reject_rate: float,
    outcome: str | None,
    cancel_after: float | None,
) -> None:
    path = f"synthetic://follow-{next(_names)}?rows=20&duration={duration}"
    path += f"&reject_rate={reject_rate}" + (f"&outcome={outcome}" if outcome else "")
    run = await vlume.run(FLOW, path)
    cancel_at = None if cancel_after is None else clock.monotonic() + cancel_after
    followed: list[LogEntry] = []
    async for entry in run.logs(follow=True, page_size=page_size, poll_interval=poll_interval):
        followed.append(entry)
        if cancel_at is not None and clock.monotonic() >= cancel_at:
            await run.cancel()
            cancel_at = None
    assert run.is_terminal  # the handle was kept current
    whole = await run.logs().collect()
    assert [_key(e) for e in followed] == [_key(e) for e in whole]


async def test_entries_arrive_while_the_run_is_in_flight(
    vlume: AsyncLume, clock: VirtualClock
) -> None:
    run = await vlume.run(FLOW, "synthetic://live?rows=5&duration=100")
    first_seen_at: dict[str, float] = {}
    async for entry in run.logs(follow=True, poll_interval=1):
        first_seen_at.setdefault(entry.code or "", clock.monotonic())
    assert first_seen_at["run.created"] < 5
    assert 40 <= first_seen_at["transform.started"] < 40 + MAX_INTERVAL
    assert first_seen_at["run.succeeded"] >= 100


async def test_following_a_finished_run_gives_its_log_and_ends(vlume: AsyncLume) -> None:
    run = await (await vlume.run(FLOW, "synthetic://done?rows=5&duration=1")).wait()
    assert run.status is RunStatus.SUCCEEDED
    followed = await run.logs(follow=True).collect()
    assert [_key(e) for e in followed] == [_key(e) for e in await run.logs().collect()]


async def test_runs_logs_follows_by_id(vlume: AsyncLume) -> None:
    run = await vlume.run(FLOW, "synthetic://by-id?rows=5&duration=60")
    followed = await vlume.runs.logs(run.id, follow=True, poll_interval=3).collect()
    assert followed[-1].code == "run.succeeded"
    assert run.status is not RunStatus.SUCCEEDED  # no handle of the caller's was touched


class ScriptedLog:
    """A log that grows by one entry per status read, and a run that ends after ``total``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.written = 0

    async def read_run(self) -> RunData:
        self.written = min(self.total, self.written + 1)
        status = "SUCCEEDED" if self.written == self.total else "TRANSFORMING"
        return _run_data(status)

    async def read_page(self, number: int, size: int) -> Page[LogEntry]:
        start = (number - 1) * size
        items = tuple(_entry(i) for i in range(start, min(self.written, start + size)))
        return Page(items=items, page=number, size=size, total=self.written)


def _entry(i: int) -> LogEntry:
    return LogEntry(time=datetime(2024, 1, 1, tzinfo=UTC), level="INFO", message=str(i), code="c")


def _run_data(status: str) -> RunData:
    return _converter.run_from_obj(
        {
            "id": "run_01HY0000000000000000000000",
            "status": status,
            "flow_version": FLOW,
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }
    )


class RecordingClock:
    """A clock that records each pause and lets it pass at once."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("size", [1, 2, 3, 10])
async def test_growing_log_is_read_from_where_it_stopped_without_repeats(size: int) -> None:
    log = ScriptedLog(total=7)
    clock = RecordingClock()
    assert isinstance(clock, Clock)
    stream = follow(
        read_run=log.read_run,
        read_page=lambda n: log.read_page(n, size),
        page_size=size,
        poll_interval=2,
        clock=clock,
    )
    messages = [entry.message async for page in stream for entry in page.items]
    assert messages == [str(i) for i in range(7)]
    assert clock.pauses == [2] * 6  # something new every round: never backs off


async def test_a_quiet_log_is_polled_less_and_less_often_up_to_a_ceiling() -> None:
    clock = RecordingClock()
    reads = 0

    async def read_run() -> RunData:
        nonlocal reads
        reads += 1
        return _run_data("SUCCEEDED" if reads > 30 else "TRANSFORMING")

    async def read_page(number: int) -> Page[LogEntry]:
        return Page(items=(), page=number, size=10, total=0)

    stream = follow(
        read_run=read_run, read_page=read_page, page_size=10, poll_interval=1, clock=clock
    )
    assert [page async for page in stream] == []
    assert clock.pauses[0] == 1.5
    assert clock.pauses == sorted(clock.pauses)
    assert max(clock.pauses) == MAX_INTERVAL


async def test_bad_follow_arguments_are_refused_before_any_request(
    vemu: Emulator,
) -> None:
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url) as lume:
        with pytest.raises(TypeError, match="follow"):
            lume.runs.logs("run_01HY0000000000000000000000", follow="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="poll_interval"):
            lume.runs.logs("run_01HY0000000000000000000000", follow=True, poll_interval=0)
    assert vemu.stats()["requests"] == {}
