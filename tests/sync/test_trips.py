"""How often lume_sync hands work to its loop: once per page of a listing, never once per item.

Each trip to the private loop costs two thread wake-ups, many times what an item costs, so the
number of trips is the structure to pin (the time it takes lives in benchmarks/rows.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from lume_async.testing import Emulator
from lume_sync import Lume, Run
from lume_sync._loop_thread import LoopThread

pytestmark = pytest.mark.timeout(60)

FLOW = "customer_cleaner:v1"
ROWS = 230  # with a reject rate of one half: about 115 mapped rows and 115 rejects


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=50) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def lume(emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client


@pytest.fixture(scope="module")
def run(lume: Lume) -> Run:
    path = f"synthetic://trips?rows={ROWS}&duration=1&reject_rate=0.5"
    return lume.run(FLOW, path).wait(timeout=30, poll_interval=0.05)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every hand-off to the private loop made from here on, by its awaitable."""
    made: list[object] = []
    call = LoopThread.call

    def counted(self: LoopThread, awaitable: Any, timeout: float | None) -> Any:
        made.append(awaitable)
        return call(self, awaitable, timeout)

    monkeypatch.setattr(LoopThread, "call", counted)
    return made


LISTINGS: dict[str, Callable[[Run, int], Iterable[object]]] = {
    "results": lambda run, size: run.results(page_size=size),
    "rejects": lambda run, size: run.rejects(page_size=size),
    "logs": lambda run, size: run.logs(page_size=size),
}


@pytest.mark.parametrize("page_size", [1, 7, 100])
@pytest.mark.parametrize("listing", LISTINGS)
def test_iterating_a_listing_takes_one_trip_per_page_and_one_to_end(
    run: Run, trips: list[object], listing: str, page_size: int
) -> None:
    items = sum(1 for _ in LISTINGS[listing](run, page_size))

    pages = max(1, math.ceil(items / page_size))
    assert items > 0
    assert len(trips) == pages + 1  # the last trip finds the end (and closes the pages there)


@pytest.mark.parametrize("listing", LISTINGS)
def test_breaking_out_mid_page_takes_one_more_trip_to_close(
    run: Run, trips: list[object], listing: str
) -> None:
    for seen, _ in enumerate(LISTINGS[listing](run, 2), 1):
        if seen == 3:  # the first item of the second page
            break

    assert len(trips) == 3  # two pages, then the close


def test_a_listing_of_runs_takes_one_trip_per_page(
    lume: Lume, run: Run, trips: list[object]
) -> None:
    lume.runs.create_many([{"flow_version": FLOW, "source_path": f"s3://t/{i}"} for i in range(4)])
    total = len(lume.runs.list(flow_version=FLOW).collect())
    trips.clear()

    runs = list(lume.runs.list(page_size=2, flow_version=FLOW))

    assert run in runs
    assert len(runs) == total
    assert len(trips) == math.ceil(total / 2) + 1
