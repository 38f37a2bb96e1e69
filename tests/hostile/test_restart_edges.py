"""Exactly once across a caller's own retries and restarts, where requests are spelled apart.

A request's identity is what it sends: keys derived from a namespace follow the body on the
wire (a datetime as it is sent, not as Python writes it), requests compare equal exactly when
they send the same JSON (``True`` is not ``1``), and nothing of it depends on the process (a set
of tags has no order, so it is sent sorted). A key reused with another body is a clear error,
never another item's run. A create whose answer never came says which key finds the run it may
have made, so calling again does not make a second one.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from lume_async import (
    APIConnectionError,
    AsyncLume,
    InvalidRequestError,
    LumeError,
    RunRequest,
    RunTimeoutError,
)
from lume_async.testing import Emulator, FaultProfile, VirtualClock
from lume_sync import Lume

FLOW = "customer_cleaner:v1"
NS = "restart-edges-2026-06-01"
KEY_NOTE = re.compile(r"idempotency_key='([!-~]+?)'")


def rows(name: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": name, "email": f"{name}@example.com", "age": 30, **extra}]


def key_named_in(exc: BaseException) -> str:
    """The key an error tells the caller to create again with."""
    text = "\n".join([str(exc), *getattr(exc, "__notes__", ())])
    found = KEY_NOTE.search(text)
    assert found is not None, text
    return found.group(1)


def reordered(items: list[str]) -> tuple[set[str], set[str]]:
    """Two equal sets of ``items`` whose iteration orders differ, as two processes' would."""
    first = set(items)
    for filler in range(8, 4096, 8):
        fillers = [f"filler-{i}" for i in range(filler)]
        second = {*fillers, *items}
        for name in fillers:  # one by one: the table keeps its size, and so another order
            second.discard(name)
        if list(second) != list(first):
            assert second == first
            return first, second
    raise AssertionError("no two iteration orders found")


# --- keys follow the body as sent -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_a_datetime_and_a_string_sent_differently_get_keys_of_their_own(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    path = "synthetic://when?duration=600"
    sent_as_z = RunRequest(FLOW, source_path=path, run_metadata={"at": datetime(2026, 6, 1)})
    as_text = RunRequest(FLOW, source_path=path, run_metadata={"at": "2026-06-01T00:00:00"})
    assert b'"2026-06-01T00:00:00Z"' in sent_as_z.wire_body()
    assert (
        sent_as_z.with_namespace(NS).idempotency_key != as_text.with_namespace(NS).idempotency_key
    )
    [first] = await vlume.runs.create_many([sent_as_z], idempotency_namespace=NS)
    # A restart that reads the date back as text asks for other metadata: not the first key's
    # answer and not a refusal of a reused key, but the source's run in flight.
    [second] = await vlume.runs.create_many([as_text], idempotency_namespace=NS)
    assert second.ok, second.error
    assert second.unwrap().id == first.unwrap().id and second.unwrap().reused
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_datetimes_sent_alike_share_a_key_and_one_run(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    naive = RunRequest(FLOW, source_data=rows("tz"), run_metadata={"at": datetime(2026, 6, 1)})
    aware = RunRequest(
        FLOW, source_data=rows("tz"), run_metadata={"at": datetime(2026, 6, 1, tzinfo=UTC)}
    )
    path_naive = RunRequest(
        FLOW, source_path="s3://b/tz", run_metadata={"at": datetime(2026, 6, 1)}
    )
    path_aware = RunRequest(
        FLOW, source_path="s3://b/tz", run_metadata={"at": datetime(2026, 6, 1, tzinfo=UTC)}
    )
    assert path_naive.wire_body() == path_aware.wire_body()
    assert path_naive == path_aware
    assert path_naive.with_namespace(NS).idempotency_key == (
        path_aware.with_namespace(NS).idempotency_key
    )
    [first] = await vlume.runs.create_many([naive], idempotency_namespace=NS)
    [again] = await vlume.runs.create_many([aware], idempotency_namespace=NS)  # the restart
    assert again.unwrap().id == first.unwrap().id and not again.unwrap().reused
    assert vemu.stats()["runs_created"] == 1


# --- one key, another body ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("one", "other"), [(True, 1), (1, 1.0), (0.0, -0.0)], ids=["true-1", "1-1.0", "0-minus-0"]
)
async def test_a_key_given_to_two_bodies_in_one_call_is_refused_not_shared(
    vemu: Emulator, vlume: AsyncLume, one: object, other: object
) -> None:
    first = RunRequest(FLOW, source_data=rows("vip", vip=one), idempotency_key="job-7-item-1")
    second = RunRequest(FLOW, source_data=rows("vip", vip=other), idempotency_key="job-7-item-1")
    assert first.wire_body() != second.wire_body()
    assert first != second  # they ask for different rows, as their derived keys say
    unkeyed = [RunRequest(FLOW, source_data=rows("vip", vip=v)) for v in (one, other)]
    assert unkeyed[0].with_namespace(NS).idempotency_key != (
        unkeyed[1].with_namespace(NS).idempotency_key
    )
    outcomes = await vlume.runs.create_many([first, second])
    assert outcomes[0].ok, outcomes[0].error
    error = outcomes[1].error
    assert isinstance(error, InvalidRequestError), outcomes[1]
    assert error.code == "idempotency_key_reused"
    assert vemu.stats()["runs_created"] == 1
    [alone] = await vlume.runs.create_many([second])  # the same answer as within the call
    assert isinstance(alone.error, InvalidRequestError)
    assert alone.error.code == "idempotency_key_reused"


# --- nothing of the key depends on the process ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_sets_of_tags_and_groups_in_another_order_are_one_run_on_restart(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    tags, tags_again = reordered(["nightly", "eu", "batch", "customers", "v1"])
    groups, groups_again = reordered(["ops", "data", "finance", "audit"])

    def job(tag_set: set[str], group_set: set[str]) -> list[RunRequest]:
        return [
            RunRequest(
                FLOW, source_data=rows(f"set-{i}"), tags=tag_set, monitoring_groups=group_set
            )
            for i in range(3)
        ]

    first = await vlume.runs.create_many(job(tags, groups), idempotency_namespace=NS)
    again = await vlume.runs.create_many(job(tags_again, groups_again), idempotency_namespace=NS)
    assert [o.idempotency_key for o in again] == [o.idempotency_key for o in first]
    assert [o.unwrap().id for o in again] == [o.unwrap().id for o in first]
    assert vemu.stats()["runs_created"] == 3
    assert list(first[0].unwrap().tags) == sorted(tags)


# --- a create whose answer never came -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_process_out_of_time_before_the_create_answered_names_the_key_of_its_run(
    vemu: Emulator, vlume: AsyncLume, clock: VirtualClock
) -> None:
    data = rows("slow-answer")
    vemu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=30))
    with pytest.raises(RunTimeoutError) as caught:
        await vlume.process(FLOW, source_data=data, timeout=5, poll_interval=0.5)
    assert "not even created" not in str(caught.value)
    assert vemu.stats()["runs_created"] == 1  # the work was done; its answer was late
    key = key_named_in(caught.value)
    vemu.set_faults(None)
    await clock.sleep(30)  # until the late answer is out: before, the key is still in flight
    result = await vlume.process(
        FLOW, source_data=data, idempotency_key=key, timeout=600, poll_interval=0.5
    )
    assert len(result.rows) == 1
    assert [run.id async for run in vlume.runs.list()] == [result.run.id]
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["reset", "503"])
async def test_a_create_whose_every_answer_was_lost_names_the_key_that_finds_its_run(
    vemu: Emulator, vlume: AsyncLume, kind: str
) -> None:
    data = rows(f"lost-{kind}")
    vemu.set_faults(FaultProfile(rate=1.0, kinds=(kind,), phase="after", retry_after=1))
    with pytest.raises(LumeError) as caught:
        await vlume.run(FLOW, source_data=data, label="lost")
    vemu.set_faults(None)
    key = key_named_in(caught.value)
    run = await vlume.run(FLOW, source_data=data, label="lost", idempotency_key=key)
    assert not run.reused
    assert [r.id async for r in vlume.runs.list(label="lost")] == [run.id]
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.timeout(30)
def test_the_blocking_client_names_the_key_of_a_create_whose_answer_was_lost() -> None:
    clock = VirtualClock()
    with (
        Emulator(clock=clock) as emu,
        Lume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume,
    ):
        data = rows("lost-sync")
        emu.set_faults(FaultProfile(rate=1.0, kinds=("reset",), phase="after"))
        with pytest.raises(APIConnectionError) as caught:
            lume.run(FLOW, source_data=data)
        emu.set_faults(None)
        run = lume.run(FLOW, source_data=data, idempotency_key=key_named_in(caught.value))
        assert lume.runs.get(run.id).id == run.id
        assert emu.stats()["runs_created"] == 1


# --- a restart after part of a large call landed --------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_a_restart_past_the_batch_size_with_repeats_across_batches_makes_each_run_once(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    # 801 items over 8 lanes: batches of 100 and one of 1; item i and i + 700 ask for the same.
    def job() -> list[RunRequest]:
        return [RunRequest(FLOW, source_data=rows(f"big-{i % 700}")) for i in range(801)]

    vemu.set_faults(
        FaultProfile(rate=0.5, kinds=("reset", "500", "503", "truncate"), phase="after", seed=11)
    )
    first = await vlume.runs.create_many(job(), idempotency_namespace=NS, concurrency=8)
    vemu.set_faults(None)
    landed = {o.index: o.unwrap().id for o in first if o.ok}
    again = await vlume.runs.create_many(job(), idempotency_namespace=NS, concurrency=8)
    assert all(o.ok for o in again), Counter(type(o.error).__name__ for o in again)
    assert all(again[i].unwrap().id == run_id for i, run_id in landed.items())
    assert all(again[i].unwrap().id == again[i + 700].unwrap().id for i in range(101))
    assert len({o.unwrap().id for o in again}) == 700
    assert vemu.stats()["runs_created"] == 700
