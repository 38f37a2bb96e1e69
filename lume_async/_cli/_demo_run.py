"""The demo itself: a few hundred runs of mixed outcomes against the embedded emulator.

The demo drives the public async API the way an application would: ``runs.create_many`` fans the
runs out, the client's shared poller (``runs.as_completed``) waits for them, and paginators read
results and rejects. It reports through a callback and returns a summary, so the command line
decides how to draw both.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

from .._client import AsyncLume
from .._run import AsyncRun
from ..models import RunRequest, RunStatus

__all__ = ["DemoProgress", "DemoSummary", "run_demo"]

_FLOWS = ("customer_cleaner:v1", "customer_cleaner:v2", "invoice_mapper:v1")
# (kind, weight): clean runs, runs with some rejected rows, and runs the service fails.
_KINDS = (("clean", 50), ("rejects", 34), ("failed", 10), ("crashed", 6))
_INLINE_RUNS = 8
_SAMPLE_RUNS = 6
_SAMPLE_ROWS = 300


@attrs.frozen
class DemoProgress:
    """Where the demo stands: how many runs exist and how many ended in each way."""

    phase: str  # "creating", "waiting", "paging" or "done"
    total: int
    created: int = 0
    refused: int = 0
    running: int = 0
    succeeded: int = 0
    partial: int = 0
    failed: int = 0


@attrs.frozen
class DemoSummary:
    """What the demo did, for the closing table (and for ``--json``)."""

    runs: int
    statuses: dict[str, int]
    refused: int
    rows_input: int
    rows_mapped: int
    rows_rejected: int
    rows_paged: int
    rejects_paged: int
    top_reject_reasons: list[tuple[str, str, int]]
    requests: dict[str, int]
    requests_total: int
    wall_seconds: float
    url: str

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def demo_requests(count: int, *, seed: int) -> list[RunRequest]:
    """``count`` run requests of mixed outcomes; the first few carry inline rows."""
    rng = random.Random(seed)
    kinds = [kind for kind, _ in _KINDS]
    weights = [weight for _, weight in _KINDS]
    requests: list[RunRequest] = []
    for i in range(count):
        if i < min(_INLINE_RUNS, count // 4):
            requests.append(_inline_request(i, rng))
            continue
        kind = rng.choices(kinds, weights)[0]
        query = f"rows={rng.randrange(200, 20_000)}&duration={rng.uniform(10, 70):.1f}"
        if kind == "rejects":
            query += f"&reject_rate={rng.uniform(0.01, 0.08):.3f}"
        elif kind in ("failed", "crashed"):
            query += f"&outcome={kind.upper()}"
        requests.append(
            RunRequest(
                rng.choice(_FLOWS),
                source_path=f"synthetic://demo/batch_{i:04d}?{query}",
                label="demo",
                tags=("demo", kind),
            )
        )
    return requests


def _inline_request(i: int, rng: random.Random) -> RunRequest:
    rows: list[dict[str, Any]] = []
    for n in range(rng.randrange(20, 60)):
        row: dict[str, Any] = {
            "name": f"  Customer {i}-{n} ",
            "email": f"Customer.{i}.{n}@Example.com",
            "age": rng.randrange(18, 90),
            "signup_date": f"2024-0{rng.randrange(1, 10)}-1{rng.randrange(0, 10)}",
        }
        flaw = rng.random()
        if flaw < 0.08:
            row["email"] = "not-an-address"
        elif flaw < 0.14:
            row["age"] = "forty"
        elif flaw < 0.18:
            del row["name"]
        rows.append(row)
    return RunRequest(
        "customer_cleaner:v1", source_data=rows, label="demo", tags=("demo", "inline")
    )


async def run_demo(
    *,
    runs: int = 300,
    time_scale: float = 10.0,
    seed: int = 0,
    poll_interval: float = 0.25,
    on_progress: Callable[[DemoProgress], None] | None = None,
) -> DemoSummary:
    """Start an emulator in this loop, run the demo against it, and summarise."""
    # Here, not at the top: every other command would import the emulator (its aiohttp server
    # included) at startup for nothing.
    from ..testing import Emulator

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    started = time.monotonic()
    report = on_progress or (lambda _: None)
    async with (
        Emulator(time_scale=time_scale, seed=seed) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume,
    ):
        requests = demo_requests(runs, seed=seed)
        refused = 0

        def created(done: int, total: int, failed: int) -> None:
            nonlocal refused
            refused = failed
            report(
                DemoProgress(
                    "creating", total, created=done - failed, refused=failed, running=done - failed
                )
            )

        report(DemoProgress("creating", runs))
        outcomes = await lume.runs.create_many(requests, on_progress=created)
        handles = [o.value for o in outcomes if o.ok and o.value is not None]

        def snapshot(phase: str) -> DemoProgress:
            counts = Counter(_bucket(run.status) for run in handles)
            return DemoProgress(phase, runs, len(handles), refused, **counts)

        async def tick() -> None:
            while True:
                report(snapshot("waiting"))
                await asyncio.sleep(0.1)

        ticker = asyncio.create_task(tick())
        try:
            await lume.runs.wait_all(handles, poll_interval=poll_interval)
        finally:
            ticker.cancel()
            await asyncio.wait([ticker])

        report(snapshot("paging"))
        rows_paged, rejects_paged, reasons = await _page_samples(handles)
        report(snapshot("done"))
        stats = emu.stats()
        return _summarise(
            handles,
            refused=refused,
            rows_paged=rows_paged,
            rejects_paged=rejects_paged,
            reasons=reasons,
            stats=stats,
            wall=time.monotonic() - started,
            url=emu.url,
        )


def _bucket(status: RunStatus) -> str:
    if status is RunStatus.SUCCEEDED:
        return "succeeded"
    if status is RunStatus.PARTIAL_FAILED:
        return "partial"
    if status.is_failure:
        return "failed"
    return "running"


async def _page_samples(handles: list[AsyncRun]) -> tuple[int, int, Counter[tuple[str, str]]]:
    """Read the rows of the inline runs and the first rows of a few runs with rejects."""
    inline = [run for run in handles if run.source_path is None]
    partial = [run for run in handles if run.source_path and run.status is RunStatus.PARTIAL_FAILED]
    rows = rejects = 0
    reasons: Counter[tuple[str, str]] = Counter()
    for run in [*inline, *partial[:_SAMPLE_RUNS]]:
        seen = 0
        async for _row in run.results():
            seen += 1
            if seen == _SAMPLE_ROWS:
                break
        rows += seen
        seen = 0
        async for reject in run.rejects():
            seen += 1
            reasons.update((e.field or "?", e.error_code) for e in reject.errors)
            if seen == _SAMPLE_ROWS:
                break
        rejects += seen
    return rows, rejects, reasons


def _summarise(
    handles: list[AsyncRun],
    *,
    refused: int,
    rows_paged: int,
    rejects_paged: int,
    reasons: Counter[tuple[str, str]],
    stats: dict[str, Any],
    wall: float,
    url: str,
) -> DemoSummary:
    statuses = Counter(run.status.value for run in handles)
    results = [run.metadata.results for run in handles if run.metadata and run.metadata.results]
    by_route = {
        route: sum(codes.values()) for route, codes in sorted(stats.get("requests", {}).items())
    }
    return DemoSummary(
        runs=len(handles) + refused,
        statuses=dict(sorted(statuses.items())),
        refused=refused,
        rows_input=sum(r.input_rows or 0 for r in results),
        rows_mapped=sum(r.mapped_rows or 0 for r in results),
        rows_rejected=sum(r.rejected_rows or 0 for r in results),
        rows_paged=rows_paged,
        rejects_paged=rejects_paged,
        top_reject_reasons=[(f, code, n) for (f, code), n in reasons.most_common(3)],
        requests=by_route,
        requests_total=sum(by_route.values()),
        wall_seconds=round(wall, 2),
        url=url,
    )
