"""Listing runs as a principal who may read only some of them, while others create runs.

Whatever runs exist and however they are shared, and whenever new ones arrive between pages (or
truly concurrently), a listing never shows a run its key may not read, never shows one twice,
keeps its order, and never skips a readable run that existed when it started; in ascending order
it also reaches the readable runs created while it ran.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lume_sync
from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from ._profiles import examples

FLOW = "customer_cleaner:v1"
VIEWER = "viewer@example.com"
TEAM = "team"

# How a run is shared, as seen from the viewer: (who creates it, extra fields, viewer may read).
SHARING: dict[str, tuple[str, dict[str, Any], bool]] = {
    "private": ("ana", {}, False),
    "others": ("ana", {"monitoring_groups": ["other"], "managing_by": ["bo@example.com"]}, False),
    "admin's": ("admin", {}, False),
    "monitor": ("ana", {"monitoring_by": [VIEWER]}, True),
    "monitor group": ("admin", {"monitoring_groups": ["other", TEAM]}, True),
    "manager": ("ana", {"managing_by": [VIEWER]}, True),
    "manager group": ("ana", {"managing_groups": [TEAM]}, True),
    "owner": ("admin", {"run_owner": VIEWER}, True),
    "own": ("viewer", {}, True),
}
sharing = st.sampled_from(sorted(SHARING))
_paths = itertools.count()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


def team_keys(emu: Emulator) -> dict[str, str]:
    """A fresh tenant: the API keys of its admin, a colleague (ana) and the viewer."""
    admin = emu.add_tenant()
    return {
        "admin": admin,
        "ana": emu.add_principal("ana@example.com", groups=["other"], tenant_key=admin),
        "viewer": emu.add_principal(VIEWER, groups=[TEAM], tenant_key=admin),
    }


@attrs.frozen
class Team:
    """A fresh tenant's principals, as sync clients."""

    clients: dict[str, lume_sync.Lume]

    @classmethod
    def new(cls, emu: Emulator) -> Team:
        keys = team_keys(emu)
        return cls({who: lume_sync.Lume(api_key=k, base_url=emu.url) for who, k in keys.items()})

    def create(self, how: str) -> tuple[str, bool]:
        """A run shared as ``how`` says: its id, and whether the viewer may read it."""
        creator, fields, readable = SHARING[how]
        run = self.clients[creator].runs.create(FLOW, f"s3://listing/{next(_paths)}", **fields)
        return run.id, readable

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@settings(max_examples=examples(30), deadline=None)
@given(
    before=st.lists(sharing, max_size=20),
    during=st.dictionaries(st.integers(0, 8), st.lists(sharing, min_size=1, max_size=4)),
    page_size=st.integers(1, 5),
    descending=st.booleans(),
)
def test_a_listing_shows_exactly_the_readable_runs_whatever_arrives_between_pages(
    emu: Emulator,
    before: list[str],
    during: dict[int, list[str]],
    page_size: int,
    descending: bool,
) -> None:
    team = Team.new(emu)
    try:
        existing = [team.create(how) for how in before]
        added: list[tuple[str, bool]] = []
        reachable: list[tuple[str, bool]] = []  # made while more pages were still to come
        seen: list[str] = []
        listing = team.clients["viewer"].runs.list(page_size=page_size, descending=descending)
        for number, page in enumerate(listing.pages()):
            assert len(page.items) <= page_size
            seen += [run.id for run in page.items]
            made = [team.create(how) for how in during.get(number, ())]
            added += made
            if page.has_next:
                reachable += made
    finally:
        team.close()
    readable = {run_id for run_id, ok in existing + added if ok}
    assert set(seen) <= readable  # never a run it may not read
    assert len(seen) == len(set(seen))  # never one twice
    assert seen == sorted(seen, reverse=descending)  # in order (ids follow creation)
    assert {run_id for run_id, ok in existing if ok} <= set(seen)  # never skips one
    if not descending:  # ascending reaches the runs made while it was not yet done
        assert set(seen) == {run_id for run_id, ok in existing + reachable if ok}
    else:  # descending started at the newest: what came later is before it
        assert set(seen) == {run_id for run_id, ok in existing if ok}


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(4))
async def test_a_listing_under_concurrent_creates_never_shows_or_skips_wrongly(
    emu: Emulator, seed: int
) -> None:
    rng = random.Random(seed)
    clients = {who: AsyncLume(api_key=k, base_url=emu.url) for who, k in team_keys(emu).items()}
    made: list[tuple[str, bool]] = []

    async def create(how: str) -> None:
        creator, fields, readable = SHARING[how]
        path = f"s3://concurrent/{next(_paths)}"
        run = await clients[creator].runs.create(FLOW, path, **fields)
        made.append((run.id, readable))

    async def others_keep_creating(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await create(rng.choice(sorted(SHARING)))

    try:
        for _ in range(30):
            await create(rng.choice(sorted(SHARING)))
        existing = list(made)
        stop = asyncio.Event()
        seen: list[str] = []
        async with asyncio.TaskGroup() as tasks:
            for _ in range(3):
                tasks.create_task(others_keep_creating(stop))
            listing = clients["viewer"].runs.list(page_size=rng.randint(1, 3), descending=False)
            async for run in listing:
                seen.append(run.id)
                if len(made) > 150:
                    stop.set()
            stop.set()
    finally:
        for client in clients.values():
            await client.aclose()
    readable = {run_id for run_id, ok in made if ok}
    assert set(seen) <= readable
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert {run_id for run_id, ok in existing if ok} <= set(seen)
