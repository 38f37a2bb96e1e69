"""The chaos fan-out, shared by the test suite and ``benchmarks/reliability.py``.

One fan-out creates N runs with ``create_many``, waits for all of them with the shared poller,
and reads every result row; ``audit`` then asks the server, with faults off, what really
happened. The figures say whether anything was lost, duplicated or read twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from lume_async import (
    AsyncLume,
    AsyncRun,
    ResponseValidationError,
    RetryEvent,
    RetryPolicy,
    RunRequest,
    RunStatus,
)

__all__ = [
    "QUICK_BACKOFF",
    "Figures",
    "RetryCounter",
    "all_succeeded",
    "audit",
    "chaos_policy",
    "fan_out",
    "requests_for",
    "rows_of",
]

FLOW = "customer_cleaner:v1"


def rows_of(index: int) -> int:
    """Source rows of item ``index``: 3 to 20, so every row can be checked by name."""
    return 3 + index % 18


def requests_for(n: int, prefix: str, *, duration: float = 2.0) -> list[RunRequest]:
    return [
        RunRequest(
            FLOW,
            source_path=f"synthetic://{prefix}-{i:05d}?rows={rows_of(i)}&duration={duration:g}",
        )
        for i in range(n)
    ]


class RetryCounter:
    """An ``on_retry`` hook that counts the transport's retries by the cause's type."""

    def __init__(self) -> None:
        self.by_cause: Counter[str] = Counter()

    def __call__(self, event: RetryEvent) -> None:
        self.by_cause[type(event.cause).__name__] += 1

    @property
    def total(self) -> int:
        return sum(self.by_cause.values())


def chaos_policy(counter: RetryCounter, **overrides: Any) -> RetryPolicy:
    # Generous on purpose: these scenarios inject faults on a fifth of all requests (or shed
    # load by design), so a request may fail many times in a row; the point is that retrying is
    # safe (nothing lost or doubled), not that the defaults give up at the right moment. The
    # budget is lifted for the same reason: it protects a dead service, and this one is alive.
    settings: dict[str, Any] = {
        "max_retries": 25,
        "deadline": 300.0,
        "budget_ratio": 100.0,
        "budget_floor": 100.0,
        "on_retry": counter,
    }
    settings.update(overrides)
    return RetryPolicy(**settings)


QUICK_BACKOFF: dict[str, Any] = {
    "base_delay": 0.005,
    "rate_limit_base_delay": 0.005,
    "max_delay": 0.05,
}
"""Retry waits of a few milliseconds, for scenarios whose faults come from a server in real time.

A virtual clock cannot stand in there: while the server sleeps out a fault, the client's loop is
idle, and virtual time would run ahead of the server's.
"""


@attrs.define
class Figures:
    """What one scenario did, from the client's side and from the server's."""

    scenario: str
    requested: int
    created: int = 0  # runs the server made (its own count)
    on_server: int = 0  # runs the server lists for this batch
    duplicates: int = 0  # runs beyond one per source_path
    paths: int = 0  # source paths the server holds runs of
    max_per_path: int = 0  # the most runs of one source path
    duplicates_refused: int = 0  # creates the server refused as duplicates
    rows_expected: int = 0
    rows_fetched: int = 0
    rows_wrong: int = 0  # runs whose rows were not exactly the expected ones, in order
    retries: int = 0
    refused: int = 0  # listings refused as untrustworthy, and walked again
    failures: list[str] = attrs.Factory(list)  # anything that escaped: must stay empty
    wall: float = 0.0
    statuses: Counter[str] = attrs.Factory(Counter)

    def row(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "requested": self.requested,
            "created": self.created,
            "on_server": self.on_server,
            "duplicates": self.duplicates,
            "runs_per_path": round(self.on_server / self.paths, 3) if self.paths else 0.0,
            "max_per_path": self.max_per_path,
            "rows_expected": self.rows_expected,
            "rows_fetched": self.rows_fetched,
            "retries": self.retries,
            "refused": self.refused,
            "failures": len(self.failures),
            "wall_s": round(self.wall, 1),
        }


async def fan_out(
    lume: AsyncLume,
    requests: list[RunRequest],
    figures: Figures,
    *,
    page_size: int = 8,
    concurrency: int = 32,
    poll_interval: float = 0.05,
    timeout: float = 600,
    on_created: Callable[[], None] | None = None,
    read_attempts: int = 1,
) -> list[AsyncRun]:
    """Create, wait for and read back every run; record what happened in ``figures``.

    A listing refused as untrustworthy (a lying server) is walked again, up to
    ``read_attempts`` walks in all; each refusal counts in ``figures.refused``.
    """
    started = time.monotonic()
    outcomes = await lume.runs.create_many(requests, concurrency=concurrency)
    runs: list[AsyncRun] = []
    for outcome in outcomes:
        if outcome.ok:
            assert outcome.value is not None
            runs.append(outcome.value)
        else:
            figures.failures.append(f"create #{outcome.index}: {outcome.error!r}")
    if on_created is not None:
        on_created()
    try:
        await lume.runs.wait_all(runs, timeout=timeout, poll_interval=poll_interval)
    except Exception as exc:
        figures.failures.append(f"wait_all: {exc!r}")
        return runs
    figures.statuses.update(run.status.value for run in runs)

    expected_rows = {
        run.id: rows_of(int(str(run.source_path).split("-")[-1].split("?")[0])) for run in runs
    }
    fetched: dict[str, list[dict[str, Any]]] = {}
    todo = iter(runs)

    async def read(run: AsyncRun) -> list[dict[str, Any]]:
        for _ in range(read_attempts - 1):
            try:
                return await run.results(page_size=page_size).collect()
            except ResponseValidationError:
                figures.refused += 1
        return await run.results(page_size=page_size).collect()

    async def reader() -> None:
        for run in todo:
            try:
                fetched[run.id] = await read(run)
            except Exception as exc:
                figures.failures.append(f"results of {run.id}: {exc!r}")

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(reader)

    figures.rows_expected = sum(rows_of(i) for i in range(len(requests)))
    figures.rows_fetched = sum(len(rows) for rows in fetched.values())
    for run_id, rows in fetched.items():
        names = [row.get("full_name") for row in rows]
        if names != [f"Customer {i}" for i in range(expected_rows[run_id])]:
            figures.rows_wrong += 1
    figures.wall = time.monotonic() - started
    return runs


async def audit(
    oracle: AsyncLume, prefix: str, figures: Figures, stats: dict[str, Any] | None = None
) -> Counter[str]:
    """Count, straight from the server, the runs of this batch per source_path."""
    per_path: Counter[str] = Counter()
    async for run in oracle.runs.list(flow_version=FLOW, page_size=100):
        path = run.source_path or ""
        if path.startswith(f"synthetic://{prefix}-"):
            per_path[path] += 1
    figures.on_server = sum(per_path.values())
    figures.duplicates = sum(n - 1 for n in per_path.values() if n > 1)
    figures.paths = len(per_path)
    figures.max_per_path = max(per_path.values(), default=0)
    if stats is not None:
        figures.created = int(stats["runs_created"])
        figures.duplicates_refused = int(stats["duplicate_creates_refused"])
    return per_path


def all_succeeded(runs: list[AsyncRun]) -> bool:
    return all(run.status is RunStatus.SUCCEEDED for run in runs)
