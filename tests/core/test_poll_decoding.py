"""The shared poller decodes only the runs that moved: an unchanged answer builds no typed run.

Every sweep asks about every watched run, and at any one sweep most have not moved. An item of a
``batch-get`` answer whose status and ``updated_at`` a run's cell already holds costs a lookup and
a comparison; any other item is decoded and applied as before.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from lume_async import AsyncLume, ResponseValidationError, RunStatus
from lume_async._batch_get import RunsAnswer
from lume_async._converter import run_from_obj
from lume_async._runs_core import RunCell
from lume_async._status import behind
from lume_async._transport import Response
from lume_async._waiting import BATCH_SIZE, Waiting
from lume_async._watches import Watches
from lume_async.models import RunData
from lume_async.testing import Emulator, VirtualClock

from ._scripted import run_json
from .test_waiting import FakeService, RecordedAnswer, eventually

STATUSES = [s.value for s in RunStatus if not s.is_terminal]
TIMES = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01Z"]


def item(run_id: str, status: str, updated_at: str, **extra: Any) -> dict[str, Any]:
    return {**run_json(run_id, status), "updated_at": updated_at, **extra}


class Decoder:
    """``RunsAnswer.decode`` with a record of the ids it decoded."""

    def __init__(self) -> None:
        self.decoded: list[str] = []

    def __call__(self, obj: dict[str, Any]) -> RunData:
        self.decoded.append(obj["id"])
        return run_from_obj(obj)


def watched(*cells: RunCell) -> Watches:
    watches = Watches(on_idle=lambda: None)
    watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
    return watches


@given(
    st.lists(
        st.tuples(st.sampled_from(STATUSES), st.sampled_from(TIMES), st.sampled_from([None, "x"])),
        min_size=1,
        max_size=10,
    )
)
def test_an_answer_is_decoded_exactly_when_its_status_or_updated_at_differ(
    answers: list[tuple[str, str, str | None]],
) -> None:
    cell = RunCell(run_from_obj(item("run_a", "PENDING", TIMES[0])))
    watches, decode = watched(cell), Decoder()
    for status, updated_at, label in answers:
        held = cell.data
        said = run_from_obj(item("run_a", status, updated_at))
        news = (said.status, said.updated_at) != (held.status, held.updated_at)
        watches.update("run_a", item("run_a", status, updated_at, label=label), decode)
        assert decode.decoded == (["run_a"] if news else [])
        # A late answer (behind in stage, or older at the same stage) is left out.
        late = behind(said.status, held.status) or (
            said.status == held.status and said.updated_at < held.updated_at
        )
        kept = held if late else said
        assert (cell.data.status, cell.data.updated_at) == (kept.status, kept.updated_at)
        decode.decoded.clear()


def test_a_second_handle_that_lags_behind_gets_the_answer_decoded() -> None:
    current = RunCell(run_from_obj(item("run_a", "RUNNING", TIMES[2])))
    lagging = RunCell(run_from_obj(item("run_a", "PENDING", TIMES[0])))
    watches, decode = watched(current, lagging), Decoder()

    watches.update("run_a", item("run_a", "RUNNING", TIMES[2]), decode)

    assert decode.decoded == ["run_a"]
    assert lagging.data.status is RunStatus.RUNNING


@pytest.mark.parametrize(
    "odd",
    [
        {"status": None},
        {"status": 5},
        {"updated_at": None},
        {"updated_at": 17},
        {"updated_at": "yesterday"},
        {"updated_at": "2026-01-01T00:00:00"},  # naive: the decoder reads it as UTC
    ],
)
def test_an_answer_the_cell_cannot_compare_is_decoded(odd: dict[str, Any]) -> None:
    cell = RunCell(run_from_obj(item("run_a", "PENDING", TIMES[0])))
    answer = {**item("run_a", "PENDING", TIMES[0]), **odd}

    assert not cell.holds(answer)


@pytest.fixture
def fake(clock: VirtualClock) -> FakeService:
    return FakeService(clock)


@pytest.mark.anyio
async def test_a_run_that_stays_put_is_polled_without_being_decoded(
    fake: FakeService, clock: VirtualClock
) -> None:
    cell = fake.cell(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(fake.wait, cell, timeout=None, poll_interval=0.02))
        await eventually(clock, lambda: len(fake.calls) >= 6, within=3)
        assert fake.decoded == []  # six sweeps of an unchanged run
        fake.status[cell.data.id] = "SUCCEEDED"
    assert fake.decoded == [cell.data.id]
    assert cell.data.status is RunStatus.SUCCEEDED


@pytest.mark.anyio
async def test_the_emulators_answer_about_a_run_just_decoded_is_held_by_its_cell(
    emu: Emulator, lume: AsyncLume
) -> None:
    runs = [await lume.run("customer_cleaner:v1", f"synthetic://held-{i}") for i in range(3)]
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{emu.url}/v1/runs/batch-get",
            json={"ids": [run.id for run in runs]},
            headers={"lume-api-key": emu.api_key},
        )
        items = (await response.json())["items"]

    assert len(items) == 3
    for obj in items:
        assert RunCell(run_from_obj(obj)).holds(obj)


@pytest.mark.anyio
@pytest.mark.parametrize("late", [0, 1, 2])
async def test_each_answer_of_a_sweep_is_applied_before_the_other_requests_end(
    clock: VirtualClock, late: int
) -> None:
    """An answer's parsed runs are not held while the sweep's other requests are in flight."""
    release = anyio.Event()
    decoded: list[str] = []
    cells = [RunCell(run_from_obj(run_json(f"run_{n:026d}", "PENDING"))) for n in range(300)]
    ids = [cell.data.id for cell in cells]
    late_chunk = ids[late * BATCH_SIZE : (late + 1) * BATCH_SIZE]

    async def fetch(chunk: list[str], known: object = None) -> RunsAnswer:
        if chunk == late_chunk:
            await release.wait()
        return RecordedAnswer({i: run_json(i, "SUCCEEDED") for i in chunk}, decoded)

    waiting = Waiting(fetch, clock=clock)
    early = [cell for cell in cells if cell.data.id not in late_chunk]
    async with anyio.create_task_group() as tg:
        for cell in cells:
            tg.start_soon(partial(waiting.wait, cell, cell, timeout=None, poll_interval=1.0))
        await eventually(clock, lambda: all(cell.data.is_terminal for cell in early), within=3)
        assert not any(cell.data.is_terminal for cell in cells if cell.data.id in late_chunk)
        release.set()
    assert sorted(decoded) == sorted(ids)


def answer_of(body: bytes) -> RunsAnswer:
    """A ``batch-get`` answer as it comes off the wire."""
    headers = CIMultiDictProxy(CIMultiDict({"x-request-id": "req_1"}))
    response = Response(status=200, headers=headers, body=body)
    return RunsAnswer(response, response.request_id)


def test_an_answer_off_the_wire_is_parsed_where_it_is_read_and_not_kept_parsed() -> None:
    ids = [f"run_{n:026d}" for n in range(3)]
    answer = answer_of(
        orjson.dumps({"items": [run_json(i, "RUNNING") for i in ids], "missing": []})
    )

    first, second = answer.items, answer.items

    assert list(first) == ids
    assert first == second
    assert first is not second  # parsed again: the answer holds bytes, not a tree of dicts
    assert [run.status for run in answer.runs().values()] == [RunStatus.RUNNING] * 3


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"missing": []}', b'{"items": {}}', b'{"items": [{"status": "RUNNING"}]}', b"{"],
)
def test_a_malformed_answer_off_the_wire_is_refused_where_it_is_read(body: bytes) -> None:
    answer = answer_of(body)
    with pytest.raises(ResponseValidationError):
        answer.items  # noqa: B018


def _itself(cell: RunCell) -> RunCell:
    return cell
