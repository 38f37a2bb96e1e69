"""Run permissions at their edges: the service's limits on principal lists, what a reused run
could not apply, which run a duplicate names, names that only look like a principal, cursors
handed between principals, and waits over runs that stop being visible.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from lume_async import AsyncLume, DuplicateRunError, RunNotFoundError, RunRequest
from lume_async.testing import Emulator, VirtualClock

from ._direct import call, raw

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
LONG = 1_000_000  # emulator seconds: a run that only ends when the test moves the emulator


def client(emu: Emulator, principal: str, *groups: str) -> AsyncLume:
    return AsyncLume(api_key=emu.add_principal(principal, groups=groups), base_url=emu.url)


# -- the service's limits on principals, checked before sending ------------------------------------

TOO_MUCH = [
    pytest.param({"monitoring_by": [f"p{i}@example.com" for i in range(101)]}, id="101-monitors"),
    pytest.param({"managing_groups": ["g" * 255]}, id="255-char-group"),
    pytest.param({"managing_by": ["m" * 255]}, id="255-char-manager"),
    pytest.param({"run_owner": "o" * 255}, id="255-char-owner"),
]


@pytest.mark.parametrize("fields", TOO_MUCH)
async def test_an_update_past_the_principal_limits_is_refused_before_sending(
    emu: Emulator, fields: dict[str, Any]
) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run(FLOW, "s3://limits")
        with pytest.raises(ValueError, match=next(iter(fields))):
            await lume.runs.update(run.id, **fields)
    assert "PATCH /v1/runs/{run_id}" not in emu.stats()["requests"]


@pytest.mark.parametrize("fields", TOO_MUCH)
def test_a_run_request_past_the_principal_limits_is_refused_when_built(
    fields: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        RunRequest(FLOW, source_path="s3://limits", **fields)


def test_a_run_request_at_the_principal_limits_is_accepted() -> None:
    request = RunRequest(
        FLOW,
        source_path="s3://limits",
        run_owner="o" * 254,
        monitoring_by=[f"p{i}@example.com" for i in range(100)],
        managing_groups=["g" * 254],
    )
    assert len(request.to_wire()["monitoring_by"]) == 100


# -- a reused run, and the sharing the create asked for -------------------------------------------


async def test_a_reused_run_logs_the_sharing_the_request_could_not_apply(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    path = f"synthetic://shared?duration={LONG}"
    async with client(emu, "dana@example.com") as dana:
        first = await dana.run(FLOW, path)
        with caplog.at_level(logging.INFO, logger="lume_async.runs"):
            again = await dana.run(
                FLOW, path, monitoring_by=["eve@example.com"], managing_groups=["ops"]
            )
    assert again.reused and again.id == first.id
    assert (again.monitoring_by, again.managing_groups) == ((), ())  # eve was not let in
    [record] = [r for r in caplog.records if r.name == "lume_async.runs"]
    message = record.getMessage()
    assert "not applied" in message
    assert "monitoring_by=" in message and "eve@example.com" in message
    assert "managing_groups=" in message


# -- which run a duplicate names ---------------------------------------------------------------


async def test_a_duplicate_names_an_earlier_run_of_the_pair_the_caller_may_read(
    emu: Emulator,
) -> None:
    # The nightly run, shared with the analysts, wrote the data; a private forced rerun wrote it
    # again. An analyst who repeats the create is refused, and should learn the run it may read.
    path = "synthetic://nightly?duration=1"
    ana, cy = client(emu, "ana@example.com"), client(emu, "cy@example.com", "analysts")
    async with ana, cy:
        shared = await ana.run(FLOW, path, monitoring_groups=["analysts"])
        emu.advance(10)
        private = await ana.run(FLOW, path, force_rerun=True)
        emu.advance(10)
        assert private.id != shared.id
        with pytest.raises(DuplicateRunError) as caught:
            await cy.run(FLOW, path)
        assert caught.value.existing_run_id == shared.id
        assert (await cy.runs.get(shared.id)).id == shared.id


async def test_a_duplicate_never_names_a_run_the_caller_may_not_read(emu: Emulator) -> None:
    path = "synthetic://private?duration=1"
    ana, eve = client(emu, "ana@example.com"), client(emu, "eve@example.com")
    async with ana, eve:
        run = await ana.run(FLOW, path)
        emu.advance(10)
        with pytest.raises(DuplicateRunError) as caught:
            await eve.run(FLOW, path)
    assert caught.value.existing_run_id is None
    assert run.id not in str(caught.value) and run.id not in repr(caught.value.body)


# -- names that only look like a principal -------------------------------------------------------


@pytest.mark.parametrize(
    "lookalike",
    [
        pytest.param("\u0430na@example.com", id="cyrillic-a"),
        pytest.param("ana@example.com\u200b", id="zero-width-space"),
        pytest.param("ana@example.com ", id="trailing-space"),
    ],
)
async def test_a_name_that_only_looks_like_a_principal_grants_it_nothing(
    emu: Emulator, lookalike: str
) -> None:
    dana, ana = client(emu, "dana@example.com"), client(emu, "ana@example.com")
    async with dana, ana:
        run = await dana.run(FLOW, "s3://look", monitoring_by=[lookalike], managing_by=[lookalike])
        with pytest.raises(RunNotFoundError):
            await ana.runs.get(run.id)
        assert await ana.runs.list().collect() == []


# -- cursors handed between principals ---------------------------------------------------------


async def test_a_cursor_from_another_principal_lists_only_the_callers_runs(emu: Emulator) -> None:
    ana_key, eve_key = emu.add_principal("ana@example.com"), emu.add_principal("eve@example.com")
    ana = AsyncLume(api_key=ana_key, base_url=emu.url)
    eve = AsyncLume(api_key=eve_key, base_url=emu.url)
    async with ana, eve, raw(emu, ana_key) as ana_raw, raw(emu, eve_key) as eve_raw:
        mine = [(await ana.run(FLOW, f"s3://c{i}", label="secret")).id for i in range(3)]
        theirs = (await eve.run(FLOW, "s3://eve")).id
        query = {"label": "secret", "size": "1"}
        status, first = await call(ana_raw, "GET", "/v1/runs", params=query)
        assert status == 200 and [item["id"] for item in first["items"]] == [mine[-1]]
        cursor = first["next_cursor"]
        assert cursor is not None
        status, page = await call(eve_raw, "GET", "/v1/runs", params={"cursor": cursor})
        assert status == 200
        assert page["items"] == [] and page["next_cursor"] is None
        status, everything = await call(eve_raw, "GET", "/v1/runs", params={"order": "asc"})
    assert [item["id"] for item in everything["items"]] == [theirs]


# -- waits over runs that stop being visible -----------------------------------------------------


async def test_wait_all_over_runs_one_of_which_is_hidden_ends_naming_that_run(
    emu: Emulator, clock: VirtualClock
) -> None:
    owner = client(emu, "ana@example.com")
    watcher = AsyncLume(api_key=emu.add_principal("cy@example.com"), base_url=emu.url, clock=clock)
    async with owner, watcher:
        hidden, kept = [
            await owner.run(
                FLOW, f"synthetic://{n}?duration={LONG}", monitoring_by=["cy@example.com"]
            )
            for n in ("hidden", "kept")
        ]
        handles = [await watcher.runs.get(hidden.id), await watcher.runs.get(kept.id)]

        async def revoke_then_finish() -> None:
            await clock.sleep(0.05)
            await hidden.update(monitoring_by=[])
            await clock.sleep(0.05)
            emu.advance(2 * LONG)

        caught: list[RunNotFoundError] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(revoke_then_finish)
            try:
                await watcher.runs.wait_all(handles, poll_interval=0.01, timeout=30)
            except RunNotFoundError as exc:
                caught.append(exc)
            finally:
                tg.cancel_scope.cancel()
    [error] = caught
    assert hidden.id in str(error)
