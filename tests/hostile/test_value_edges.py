"""Values users keep and pass around: errors and requests that copy, pickle and compare right.

A timeout error keeps its message through ``pickle`` and ``copy``; an error about a run crosses
processes with the run as its snapshot (a handle holds its client, which never leaves); two run
requests are equal only when they send the same body.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from lume_async import (
    APITimeoutError,
    AsyncLume,
    RunData,
    RunFailedError,
    RunRequest,
    RunStatus,
    RunTimeoutError,
)
from lume_async.testing import Emulator
from lume_sync import Lume

FLOW = "customer_cleaner:v1"

COPIES: dict[str, Callable[[Any], Any]] = {
    **{
        f"pickle {protocol}": (lambda value, p=protocol: pickle.loads(pickle.dumps(value, p)))
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
    },
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


# -- timeout errors keep their message ------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize(
    "error",
    [
        APITimeoutError("request to /v1/runs timed out after 5 s"),
        RunTimeoutError("run run_01 is still RUNNING after 60 s", run=None),
    ],
    ids=type,
)
def test_a_timeout_error_keeps_its_message_through_pickle_and_copy(
    error: Exception, how: str
) -> None:
    again = COPIES[how](error)
    assert type(again) is type(error)
    assert isinstance(again, TimeoutError)
    assert again.args == error.args
    assert str(again) == str(error)


# -- errors about a run cross processes ----------------------------------------------------------


def _same_run(again: Any, run: Any) -> None:
    assert isinstance(again, RunData)  # the snapshot, without the client behind the handle
    assert again == run.data
    assert (again.id, again.status, again.error) == (run.id, run.status, run.error)
    assert again.metadata == run.metadata


@pytest.mark.anyio
@pytest.mark.parametrize("how", sorted(set(COPIES) - {"copy"}))
async def test_a_run_failed_error_pickles_and_deep_copies_with_its_run(
    vlume: AsyncLume, how: str
) -> None:
    with anyio.fail_after(30):
        run = await vlume.run(FLOW, "synthetic://crashes?rows=5&duration=2&outcome=CRASHED")
        await run.wait(poll_interval=1)
    with pytest.raises(RunFailedError) as caught:
        run.raise_for_status()
    error = caught.value
    error.add_note("while loading the nightly batch")
    again = COPIES[how](error)
    assert type(again) is RunFailedError
    assert str(again) == str(error)
    assert again.__notes__ == ["while loading the nightly batch"]
    assert again.rejects == error.rejects
    _same_run(again.run, run)
    assert again.run.status is RunStatus.CRASHED
    assert error.run is run  # the error raised keeps its handle
    assert copy.copy(error).run is run  # and so does a shallow copy


@pytest.mark.anyio
@pytest.mark.parametrize("how", sorted(set(COPIES) - {"copy"}))
async def test_a_run_timeout_error_pickles_and_deep_copies_with_its_run(
    vlume: AsyncLume, how: str
) -> None:
    with anyio.fail_after(30):
        run = await vlume.run(FLOW, "synthetic://slow?rows=5&duration=600")
        with pytest.raises(RunTimeoutError) as caught:
            await run.wait(timeout=5, poll_interval=1)
    error = caught.value
    again = COPIES[how](error)
    assert type(again) is RunTimeoutError
    assert str(again) == str(error) != ""
    assert run.id in str(again)
    _same_run(again.run, run)
    assert not again.run.is_terminal


def test_a_run_failed_error_of_the_sync_facade_pickles_with_its_run() -> None:
    with (
        Emulator(time_scale=100) as emu,
        Lume(api_key=emu.api_key, base_url=emu.url) as lume,
    ):
        run = lume.run(FLOW, "synthetic://sync?rows=5&duration=2&outcome=FAILED")
        run.wait(timeout=60, poll_interval=0.05)
        with pytest.raises(RunFailedError) as caught:
            run.raise_for_status()
        again = pickle.loads(pickle.dumps(caught.value))
        assert str(again) == str(caught.value)
        _same_run(again.run, run)
        assert again.run.status is RunStatus.FAILED


# -- run requests are equal when they send the same body -----------------------------------------


def test_requests_that_send_different_rows_are_not_equal() -> None:
    rows = [{"email": "a@example.com"}]
    first = RunRequest(FLOW, source_data=rows, idempotency_key="k-1")
    rows[0]["email"] = "b@example.com"  # the caller's row, changed after the request was made
    second = RunRequest(FLOW, source_data=rows, idempotency_key="k-1")
    assert first.wire_body() != second.wire_body()
    assert first.to_wire()["source_data"] == [{"email": "a@example.com"}]
    assert first != second
    assert second in [second] and first not in [second]


def test_requests_that_send_the_same_body_are_equal() -> None:
    first = RunRequest(FLOW, source_data=[{"a": 1, "b": [2]}], label="l")
    second = RunRequest(FLOW, source_data=({"b": [2], "a": 1},), label="l")
    assert first == second  # the order of a row's keys does not count
    assert first != RunRequest(FLOW, source_data=[{"a": 1, "b": [3]}], label="l")
    assert pickle.loads(pickle.dumps(first)) == first
    assert copy.deepcopy(first) == first


# -- handles and clients say why they do not pickle -----------------------------------------------

REFUSALS = sorted(set(COPIES) - {"copy"})


@pytest.mark.anyio
@pytest.mark.parametrize("how", REFUSALS)
async def test_a_handle_refuses_to_pickle_naming_what_to_pickle_instead(
    vlume: AsyncLume, how: str
) -> None:
    with anyio.fail_after(30):
        run = await vlume.run(FLOW, "synthetic://handle?rows=5&duration=2")
    with pytest.raises(TypeError, match=r"AsyncRun handles .* run\.data .* or run\.id"):
        COPIES[how](run)
    with pytest.raises(TypeError, match=r"AsyncLume clients cannot be pickled or copied"):
        COPIES[how](vlume)
    with pytest.raises(TypeError, match=r"^AsyncLume clients cannot be pickled"):
        COPIES[how](vlume.with_options(timeout=5))  # a view says what it is a view of
    again = pickle.loads(pickle.dumps(run.data))
    assert (again.id, again.status) == (run.id, run.status)


@pytest.mark.anyio
async def test_a_shallow_copy_of_a_handle_is_a_handle_on_the_same_run(vlume: AsyncLume) -> None:
    with anyio.fail_after(30):
        run = await vlume.run(FLOW, "synthetic://copied?rows=5&duration=2")
        other = copy.copy(run)
        assert other is not run and other == run
        await run.wait(poll_interval=1)
    assert other.status is run.status is RunStatus.SUCCEEDED  # it shows what the first heard
    with pytest.raises(TypeError, match="AsyncLume clients cannot be pickled or copied"):
        copy.copy(vlume)


@pytest.mark.timeout(60)
def test_the_sync_twins_refuse_to_pickle_in_their_own_names() -> None:
    with (
        Emulator(time_scale=100) as emu,
        Lume(api_key=emu.api_key, base_url=emu.url) as lume,
    ):
        run = lume.run(FLOW, "synthetic://twin?rows=5&duration=2")
        for how in REFUSALS:
            with pytest.raises(TypeError, match=r"^Run handles .* run\.data"):
                COPIES[how](run)
            with pytest.raises(TypeError, match=r"^Lume clients cannot be pickled"):
                COPIES[how](lume)
            with pytest.raises(TypeError, match=r"^Lume clients cannot be pickled"):
                COPIES[how](lume.with_options(timeout=5))
        other = copy.copy(run)
        assert type(other) is type(run) and other == run and other is not run
        run.wait(timeout=60, poll_interval=0.05)
        assert other.status is RunStatus.SUCCEEDED


def test_a_clients_parts_refuse_to_pickle_or_copy_saying_why() -> None:
    lume = AsyncLume(api_key="k" * 16, base_url="http://127.0.0.1:9")
    parts = {
        "AsyncRuns": lume.runs,
        "AsyncFlows": lume.flows,
        "AsyncWebhookEndpoints": lume.webhook_endpoints,
        "AsyncPaginator": lume.runs.list(),
    }
    for name, part in parts.items():
        for how in sorted(COPIES):
            with pytest.raises(TypeError, match=rf"^{name} objects cannot be pickled or copied"):
                COPIES[how](part)
