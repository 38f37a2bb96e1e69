"""The permission matrix, over real HTTP, through ``lume_async`` and ``lume_sync``.

Every role a principal can have towards a run, times every operation on it, has one expected
answer. The runs are made once, by their owner, shared with a manager by name, the ``ops`` group
as managers, a monitor by name and the ``analysts`` group as monitors. Each cell leaves the runs
as the other cells expect them (a manager's cancel ends the run in flight, and a later cancel of
a CANCELED run answers the same; a permissions update sets the lists they already hold), so the
cells pass in any order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import pytest

import lume_sync
from lume_async import (
    AsyncLume,
    DuplicateRunError,
    PermissionDeniedError,
    RunNotFoundError,
    RunStatus,
)
from lume_async.testing import Emulator, VirtualClock

FLOW = "customer_cleaner:v1"
READ_PATH = "synthetic://matrix-read?rows=20&reject_rate=0.25&duration=1"
TAG = "permission-matrix"
MANAGER = "mgr@example.com"
MONITOR = "mon@example.com"

OK, HIDDEN, NAMED, UNNAMED, OWN = "ok", "not found", "duplicate, named", "duplicate, unnamed", "own"


def denied(operation: str) -> str:
    return f"403 {operation}"


OPERATIONS = (
    "get",
    "list",
    "batch-get",
    "results",
    "rejects",
    "logs",
    "update",
    "update permissions",
    "cancel",
    "create duplicate",
)
READ = (OK,) * 6
MANAGE = (OK, OK, OK)
MONITOR_ONLY = (denied("update"), denied("update_permissions"), denied("cancel"))
NOTHING = (HIDDEN,) * 9
EXPECTED: dict[str, tuple[str, ...]] = {
    #                    get .. logs  update, update permissions, cancel  create duplicate
    "owner": (*READ, *MANAGE, NAMED),
    "manager by name": (*READ, *MANAGE, NAMED),
    "manager by group": (*READ, *MANAGE, NAMED),
    "monitor by name": (*READ, *MONITOR_ONLY, NAMED),
    "monitor by group": (*READ, *MONITOR_ONLY, NAMED),
    "stranger": (*NOTHING, UNNAMED),
    "tenant admin": (*READ, *MANAGE, NAMED),
    "other tenant": (*NOTHING, OWN),
}
CELLS = [
    pytest.param(role, op, expected, id=f"{role}-{op}".replace(" ", "_"))
    for role, answers in EXPECTED.items()
    for op, expected in zip(OPERATIONS, answers, strict=True)
]


@attrs.frozen
class World:
    emu: Emulator
    keys: dict[str, str]
    read: str  # a PARTIAL_FAILED run: rows, rejects, logs, and a pair already processed
    update: str  # a run in flight, for updates
    cancel: str  # a run in flight, for cancels


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with Emulator(clock=VirtualClock(autojump=False)) as emu:
        keys = {
            "owner": emu.add_principal("owner@example.com", groups=["staff"]),
            "manager by name": emu.add_principal(MANAGER),
            "manager by group": emu.add_principal("ops1@example.com", groups=["ops"]),
            "monitor by name": emu.add_principal(MONITOR),
            "monitor by group": emu.add_principal("ana@example.com", groups=["analysts", "x"]),
            "stranger": emu.add_principal("stranger@example.com", groups=["staff"]),
            "tenant admin": emu.add_principal("root@example.com", admin=True),
            "other tenant": emu.add_tenant(),
        }
        shared: dict[str, Any] = {
            "managing_by": [MANAGER],
            "managing_groups": ["ops"],
            "monitoring_by": [MONITOR],
            "monitoring_groups": ["analysts"],
            "tags": [TAG],
        }
        with lume_sync.Lume(api_key=keys["owner"], base_url=emu.url) as owner:
            read = owner.runs.create(FLOW, READ_PATH, **shared)
            update = owner.runs.create(FLOW, "synthetic://matrix-update?duration=3600", **shared)
            cancel = owner.runs.create(FLOW, "synthetic://matrix-cancel?duration=3600", **shared)
            emu.advance(30)
            assert owner.runs.get(read.id).status is RunStatus.PARTIAL_FAILED
        yield World(emu, keys, read.id, update.id, cancel.id)


def outcome_of_error(exc: Exception, world: World) -> str:
    if isinstance(exc, RunNotFoundError):
        return HIDDEN
    if isinstance(exc, PermissionDeniedError):
        return denied(str(exc.operation))
    if isinstance(exc, DuplicateRunError):
        if exc.existing_run_id == world.read:
            return NAMED
        return UNNAMED if exc.existing_run_id is None else OWN
    raise exc


# -- the operations, once per package --------------------------------------------------------------

AsyncOp = Callable[[AsyncLume, World], Awaitable[str]]


async def a_list(lume: AsyncLume, w: World) -> str:
    found = [run.id async for run in lume.runs.list(tags=[TAG], page_size=2)]
    return OK if w.read in found else HIDDEN


async def a_batch_get(lume: AsyncLume, w: World) -> str:
    (outcome,) = await lume.runs.get_many([w.read])
    if outcome.error is not None:
        raise outcome.error
    return OK


async def a_rows(lume: AsyncLume, w: World, what: str) -> str:
    listing = {"results": lume.runs.results, "rejects": lume.runs.rejects, "logs": lume.runs.logs}
    rows = await listing[what](w.read, page_size=7).collect()
    assert rows
    return OK


async def a_update(lume: AsyncLume, w: World, role: str) -> str:
    run = await lume.runs.update(w.update, label=f"by {role}")
    assert run.label == f"by {role}"
    return OK


async def a_update_permissions(lume: AsyncLume, w: World) -> str:
    run = await lume.runs.update(w.update, monitoring_by=[MONITOR], managing_groups=["ops"])
    assert (run.monitoring_by, run.managing_groups) == ((MONITOR,), ("ops",))
    return OK


async def a_cancel(lume: AsyncLume, w: World) -> str:
    run = await lume.runs.cancel(w.cancel)
    assert run.status is RunStatus.CANCELED
    return OK


async def a_duplicate(lume: AsyncLume, w: World) -> str:
    run = await lume.runs.create(FLOW, READ_PATH)
    assert run.id != w.read
    return OWN


async def a_get(lume: AsyncLume, w: World) -> str:
    run = await lume.runs.get(w.read)
    assert (run.run_owner, run.created_by) == ("owner@example.com", "owner@example.com")
    assert run.managing_by == (MANAGER,)
    return OK


ASYNC_OPS: dict[str, Callable[[AsyncLume, World, str], Awaitable[str]]] = {
    "get": lambda lume, w, role: a_get(lume, w),
    "list": lambda lume, w, role: a_list(lume, w),
    "batch-get": lambda lume, w, role: a_batch_get(lume, w),
    "results": lambda lume, w, role: a_rows(lume, w, "results"),
    "rejects": lambda lume, w, role: a_rows(lume, w, "rejects"),
    "logs": lambda lume, w, role: a_rows(lume, w, "logs"),
    "update": a_update,
    "update permissions": lambda lume, w, role: a_update_permissions(lume, w),
    "cancel": lambda lume, w, role: a_cancel(lume, w),
    "create duplicate": lambda lume, w, role: a_duplicate(lume, w),
}


def s_list(lume: lume_sync.Lume, w: World) -> str:
    found = [run.id for run in lume.runs.list(tags=[TAG], page_size=2)]
    return OK if w.read in found else HIDDEN


def s_batch_get(lume: lume_sync.Lume, w: World) -> str:
    (outcome,) = lume.runs.get_many([w.read])
    if outcome.error is not None:
        raise outcome.error
    return OK


def s_rows(lume: lume_sync.Lume, w: World, what: str) -> str:
    listing = {"results": lume.runs.results, "rejects": lume.runs.rejects, "logs": lume.runs.logs}
    assert listing[what](w.read, page_size=7).collect()
    return OK


def s_update(lume: lume_sync.Lume, w: World, role: str) -> str:
    assert lume.runs.update(w.update, label=f"by {role}").label == f"by {role}"
    return OK


def s_update_permissions(lume: lume_sync.Lume, w: World) -> str:
    run = lume.runs.update(w.update, monitoring_by=[MONITOR], managing_groups=["ops"])
    assert (run.monitoring_by, run.managing_groups) == ((MONITOR,), ("ops",))
    return OK


def s_cancel(lume: lume_sync.Lume, w: World) -> str:
    assert lume.runs.cancel(w.cancel).status is RunStatus.CANCELED
    return OK


def s_duplicate(lume: lume_sync.Lume, w: World) -> str:
    assert lume.runs.create(FLOW, READ_PATH).id != w.read
    return OWN


def s_get(lume: lume_sync.Lume, w: World) -> str:
    run = lume.runs.get(w.read)
    assert (run.run_owner, run.created_by) == ("owner@example.com", "owner@example.com")
    assert run.monitoring_groups == ("analysts",)
    return OK


SYNC_OPS: dict[str, Callable[[lume_sync.Lume, World, str], str]] = {
    "get": lambda lume, w, role: s_get(lume, w),
    "list": lambda lume, w, role: s_list(lume, w),
    "batch-get": lambda lume, w, role: s_batch_get(lume, w),
    "results": lambda lume, w, role: s_rows(lume, w, "results"),
    "rejects": lambda lume, w, role: s_rows(lume, w, "rejects"),
    "logs": lambda lume, w, role: s_rows(lume, w, "logs"),
    "update": s_update,
    "update permissions": lambda lume, w, role: s_update_permissions(lume, w),
    "cancel": lambda lume, w, role: s_cancel(lume, w),
    "create duplicate": lambda lume, w, role: s_duplicate(lume, w),
}


# -- the matrix ------------------------------------------------------------------------------------


def test_the_matrix_covers_every_role_and_operation() -> None:
    assert set(ASYNC_OPS) == set(SYNC_OPS) == set(OPERATIONS)
    assert all(len(answers) == len(OPERATIONS) for answers in EXPECTED.values())


@pytest.mark.anyio
@pytest.mark.parametrize(("role", "op", "expected"), CELLS)
async def test_lume_async(world: World, role: str, op: str, expected: str) -> None:
    async with AsyncLume(api_key=world.keys[role], base_url=world.emu.url, max_retries=0) as lume:
        try:
            got = await ASYNC_OPS[op](lume, world, role)
        except Exception as exc:
            got = outcome_of_error(exc, world)
    assert got == expected


@pytest.fixture(scope="module")
def sync_clients(world: World) -> Iterator[dict[str, lume_sync.Lume]]:
    clients = {
        role: lume_sync.Lume(api_key=key, base_url=world.emu.url, max_retries=0)
        for role, key in world.keys.items()
    }
    yield clients
    for client in clients.values():
        client.close()


@pytest.mark.parametrize(("role", "op", "expected"), CELLS)
def test_lume_sync(
    world: World, sync_clients: dict[str, lume_sync.Lume], role: str, op: str, expected: str
) -> None:
    try:
        got = SYNC_OPS[op](sync_clients[role], world, role)
    except Exception as exc:
        got = outcome_of_error(exc, world)
    assert got == expected
