"""Run permissions from the side of principals who share a tenant but not each other's runs.

Paths the permission matrix does not take: a colleague running the same ``--from-file`` command,
a fan-out over paths that runs the caller may not read have processed, and what a 403 says on
the routes the matrix never sees refused (create, list, batch-get and a run's pages).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lume_async import AsyncLume, PermissionDeniedError, RunRequest
from lume_async.testing import Emulator, VirtualClock

from .cli.conftest import lume
from .core._scripted import RUN_ID, Answer, ScriptedServer

FLOW = "customer_cleaner:v1"
TEAM = "team"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """Runs move only when the test says (``advance``): a run in flight stays in flight."""
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as server:
        yield server


def as_principal(emu: Emulator, key: str, *args: str) -> Any:
    done = lume("--json", *args, emu=emu, env={"LUME_API_KEY": key})
    assert done.status == 0, done.stderr
    return json.loads(done.stdout)


def paths_file(tmp_path: Path, paths: list[str]) -> str:
    file = tmp_path / "paths.txt"
    file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    return str(file)


# -- lume runs create --from-file, run by two principals of one tenant -------------------------


def test_a_colleague_running_the_same_fan_out_gets_the_runs_in_flight_it_may_read(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.add_principal("ana@example.com", groups=[TEAM])
    bo = emu.add_principal("bo@example.com", groups=[TEAM])
    file = paths_file(tmp_path, ["s3://b/1", "s3://b/2"])
    args = ("runs", "create", FLOW, "--from-file", file, "--monitor-group", TEAM)
    first = as_principal(emu, ana, *args)
    again = as_principal(emu, bo, *args)
    assert [item["run"]["id"] for item in again] == [item["run"]["id"] for item in first]
    assert not any("error" in item for item in again)
    assert emu.stats()["runs_created"] == 2


def test_the_default_fan_out_keys_are_the_same_for_the_same_key_again(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.add_principal("ana@example.com")
    file = paths_file(tmp_path, ["s3://b/1"])
    first = as_principal(emu, ana, "runs", "create", FLOW, "--from-file", file)
    again = as_principal(emu, ana, "runs", "create", FLOW, "--from-file", file)
    assert again[0]["idempotency_key"] == first[0]["idempotency_key"]
    assert again[0]["run"]["id"] == first[0]["run"]["id"]


def test_a_fan_out_reports_a_path_processed_by_a_run_it_may_not_read(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.add_principal("ana@example.com")
    bo = emu.add_principal("bo@example.com")
    as_principal(emu, ana, "runs", "create", FLOW, "s3://b/done")
    emu.advance(60)  # it SUCCEEDED: the pair wrote to the target
    file = paths_file(tmp_path, ["s3://b/done", "s3://b/new"])
    items = as_principal(emu, bo, "runs", "create", FLOW, "--from-file", file)
    assert items[0]["existing_run_id"] is None  # not named: bo may not read it
    assert "may not read" in items[0]["duplicate"]
    assert "run" in items[1]
    done = lume("runs", "create", FLOW, "--from-file", file, emu=emu, env={"LUME_API_KEY": bo})
    assert done.status == 0, done.stderr
    assert "1 processed or in flight in runs you may not read" in done.stderr


# -- what a 403 names, on the routes a monitor is never refused by the emulator ----------------


DENIED = Answer(403, {"detail": "no", "code": "permission_denied", "error_id": "e"})


async def _collect_results(client: AsyncLume) -> object:
    return await client.runs.results(RUN_ID).collect()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call_it", "operation"),
    [
        (lambda c: c.runs.create(FLOW, "s3://b/1"), "create"),
        (lambda c: c.runs.list().collect(), "read"),
        (lambda c: c.runs.results_page(RUN_ID), "read"),
        (_collect_results, "read"),
    ],
    ids=["create", "list", "results-page", "results"],
)
async def test_a_403_names_the_operation_and_is_not_retried(
    scripted: ScriptedServer, call_it: Callable[[AsyncLume], Awaitable[Any]], operation: str
) -> None:
    scripted.default = DENIED
    async with AsyncLume(api_key="k", base_url=scripted.url) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await call_it(client)
    assert caught.value.operation == operation
    assert len(scripted.seen) == 1


@pytest.mark.anyio
async def test_a_403_to_a_batch_of_creates_names_create_on_each_item(
    scripted: ScriptedServer,
) -> None:
    scripted.default = DENIED
    requests = [RunRequest(FLOW, source_path=f"s3://b/{i}") for i in range(3)]
    async with AsyncLume(api_key="k", base_url=scripted.url) as client:
        outcomes = await client.runs.create_many(requests, concurrency=1)
    for outcome in outcomes:
        assert isinstance(outcome.error, PermissionDeniedError)
        assert outcome.error.operation == "create"


@pytest.mark.anyio
async def test_a_403_to_a_batch_get_names_read_in_each_outcome(scripted: ScriptedServer) -> None:
    scripted.default = DENIED
    async with AsyncLume(api_key="k", base_url=scripted.url) as client:
        outcomes = await client.runs.get_many([RUN_ID])
    assert isinstance(outcomes[0].error, PermissionDeniedError)
    assert outcomes[0].error.operation == "read"
    assert len(scripted.seen) == 1
