"""Crash, resume and many processes: deterministic inputs make a fan-out safe to repeat.

A fan-out killed with SIGKILL half way and run again with the same inputs; four worker
processes fanning out overlapping slices of one batch at the same time (fork and spawn, one
client each); and four forked workers killed at random points of a 400-run fan-out under 30 %
faults, then resumed with the same idempotency namespace: all leave exactly one run per source
path on the server, and the last keeps every result row exactly once. The emulator runs in a
process of its own, as the shared service would.

What is checked holds run by run (made once, its rows kept once), so the batches only have to
be large enough for the kills to land in the middle and the slices to overlap in flight.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lume_async import AsyncLume

from ._forks import ForkServer
from ._processes import EmulatorProcess, runs_per_path
from ._scripts import fanout

SCRIPT = Path(fanout.__file__)
N = 200


def _rows(start: int, stop: int) -> int:
    return sum(3 + i % 18 for i in range(start, stop))


@pytest.fixture
def service(forks: ForkServer) -> Iterator[EmulatorProcess]:
    # 50x: short runs end in 20 ms, long ones (60 s) in 1.2 s, so a resume finds both kinds.
    with EmulatorProcess(time_scale=50, seed=3, forks=forks) as emu:
        yield emu


def _script(emu: EmulatorProcess, batch: str, *extra: str) -> list[str]:
    """``python fanout.py ...`` (run forked from a warm interpreter: see ``_forks``)."""
    return [str(SCRIPT), emu.url, emu.api_key, batch, "0", str(N), *extra]


def _kill_half_way(forks: ForkServer, cmd: list[str], files: Path) -> int:
    """Start the fan-out, SIGKILL it once half the creates are done; the progress seen."""
    proc = forks.start(cmd, out=files / "killed.out", err=files / "killed.err")
    done = 0
    try:
        deadline = time.monotonic() + 60
        while done < N // 2 and proc.poll() is None and time.monotonic() < deadline:
            progress = [line for line in proc.lines() if line.startswith("progress ")]
            done = int(progress[-1].split()[1]) if progress else 0
            if done >= N // 2:
                proc.kill()
            else:
                time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the fan-out ended before it could be killed"
    return done


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "extra", [(), ("--namespace", "crash-ns")], ids=["duplicate-means-done", "namespace-keys"]
)
def test_a_fan_out_killed_half_way_and_run_again_makes_each_run_once(
    service: EmulatorProcess, forks: ForkServer, extra: tuple[str, ...], tmp_path: Path
) -> None:
    batch = "crash-keys" if extra else "crash"
    # One request in flight: 100 creates per batch, so the freeze after the first batch keeps
    # the second from being sent.
    cmd = _script(service, batch, "--concurrency", "1", *extra)
    seen = _kill_half_way(forks, [*cmd, "--freeze-at", str(N // 2)], tmp_path)
    created_before = asyncio.run(service.stats())["runs_created"]
    assert seen >= N // 2 and created_before < N  # really killed in the middle

    again = forks.run(cmd, out=tmp_path / "again.out", err=tmp_path / "again.err", timeout=60)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    summary: dict[str, Any] = json.loads(again.stdout.splitlines()[-1])
    print(f"killed at {seen}/{N} ({created_before} runs made); resume: {summary}")

    per_path = asyncio.run(runs_per_path(service.url, service.api_key, batch))
    assert len(per_path) == N and set(per_path.values()) == {1}
    stats = asyncio.run(service.stats())
    assert stats["runs_created"] == N
    assert summary["failed"] == []
    assert summary["started"] + summary["already_done"] == N
    assert summary["rows"] == _rows(0, N)
    if extra:
        assert stats["idempotent_replays"] >= created_before  # repeats replayed, not redone
        assert stats["duplicate_creates_refused"] == 0
    else:
        assert summary["already_done"] > 0  # some had finished: DuplicateRunError = done
        assert stats["duplicate_creates_refused"] == summary["already_done"]


def _slices(workers: int, batch: str, emu: EmulatorProcess) -> list[tuple[str, str, str, int, int]]:
    # Each slice overlaps its neighbours by half: every item is fanned out twice, at once.
    width = 2 * N // (workers + 1)
    step = width // 2
    return [(emu.url, emu.api_key, batch, k * step, k * step + width) for k in range(workers)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_fanning_out_overlapping_slices_make_each_run_once(
    service: EmulatorProcess, method: str
) -> None:
    batch = f"workers-{method}"
    slices = _slices(4, batch, service)
    assert slices[0][3] == 0 and slices[-1][4] == N
    ctx = multiprocessing.get_context(method)
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking a process that has threads; the workers use none of
        # the parent's threads (each makes its own client and loop), which is the point here.
        warnings.filterwarnings("ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning)
        with ctx.Pool(4) as pool:
            summaries = pool.starmap_async(fanout.work, slices).get(timeout=90)
    per_path = asyncio.run(runs_per_path(service.url, service.api_key, batch))
    stats = asyncio.run(service.stats())
    print(f"{method}: {summaries}")
    assert [s["failed"] for s in summaries] == [[]] * 4
    assert len(per_path) == N and set(per_path.values()) == {1}
    assert stats["runs_created"] == N
    handled = sum(s["started"] + s["already_done"] for s in summaries)
    assert handled == sum(stop - start for *_, start, stop in slices)  # overlap included
    assert sum(s["rows"] for s in summaries) == sum(_rows(a, b) for *_, a, b in slices)


# --- four workers killed at random points, then resumed -------------------------------------------

BIG = 400  # slices of 160: room for a kill point anywhere in the creates or the keeps
FAULTS = {
    "rate": 0.3,
    "kinds": ["500", "502", "503", "429", "reset", "truncate"],
    "phase": "both",
    "seed": 31,
    "retry_after": 0.01,
}


@pytest.fixture
def faulty_service(forks: ForkServer) -> Iterator[EmulatorProcess]:
    # 50x: short runs end in 20 ms, long ones (60 s) in 1.2 s, so kills find both kinds.
    with EmulatorProcess(time_scale=50, seed=4, forks=forks) as emu:
        emu.set_faults(FAULTS)
        yield emu


def _big_slices(workers: int) -> list[tuple[int, int]]:
    width = 2 * BIG // (workers + 1)
    return [(k * width // 2, k * width // 2 + width) for k in range(workers)]


class Workers:
    """Four worker processes on overlapping slices, sharing one namespace and one row sink."""

    def __init__(self, method: str, emu: EmulatorProcess, batch: str, root: Path) -> None:
        self.ctx = multiprocessing.get_context(method)
        self.emu, self.batch, self.root = emu, batch, root
        self.slices = _big_slices(4)
        self.round = 0

    def start(self) -> list[tuple[Any, Any, Path]]:
        self.round += 1
        started = []
        for w, (start, stop) in enumerate(self.slices):
            counters = self.ctx.RawArray("q", 2)  # creates done, runs kept
            summary = self.root / f"summary-{self.round}-{w}.json"
            args = (self.emu.url, self.emu.api_key, self.batch, start, stop, f"{self.batch}-ns")
            proc = self.ctx.Process(
                target=fanout.worker, args=(*args, str(self.root / "sink"), counters, str(summary))
            )
            with warnings.catch_warnings():
                # 3.12+ warns when forking a process with threads; each worker makes its own
                # client and loop and uses none of the parent's threads.
                warnings.filterwarnings("ignore", r".*fork\(\) may lead", DeprecationWarning)
                proc.start()
            started.append((proc, counters, summary))
        return started


def _kill_points(rng: random.Random, slices: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Per worker, (counter, threshold): killed after that many creates, or that many runs kept."""
    points = []
    for start, stop in slices:
        if rng.random() < 0.5:
            points.append((0, rng.randint(1, stop - start - 1)))
        else:
            points.append((1, rng.randint(1, (stop - start) * 15 // 32)))  # under half
    return points


@pytest.mark.slow
@pytest.mark.timeout(300)
# Forked workers only: how a worker starts changes nothing of what a kill leaves behind (runs on
# the server, rows in the sink), and spawned workers, each with a client of its own in a fresh
# interpreter, are the overlapping-slices test's second case.
@pytest.mark.parametrize("method", ["fork"])
def test_four_workers_killed_at_random_points_and_resumed_keep_every_run_and_row_once(
    faulty_service: EmulatorProcess, method: str, tmp_path: Path
) -> None:
    batch = f"resume-{method}"
    workers = Workers(method, faulty_service, batch, tmp_path)
    points = _kill_points(random.Random(f"kill-{method}"), workers.slices)

    killed: list[tuple[int, int, int]] = []  # (worker, creates, kept) when killed
    running = workers.start()
    deadline = time.monotonic() + 120
    while any(p.is_alive() for p, _, _ in running) and time.monotonic() < deadline:
        for w, ((proc, counters, _), (which, at)) in enumerate(zip(running, points, strict=True)):
            if w not in {k for k, _, _ in killed} and counters[which] >= at:
                os.kill(proc.pid, signal.SIGKILL)
                killed.append((w, counters[0], counters[1]))
        time.sleep(0.002)
    for proc, _, _ in running:
        proc.join(timeout=30)
    assert sorted(w for w, _, _ in killed) == [0, 1, 2, 3], (points, killed)
    made_before = asyncio.run(faulty_service.stats())["runs_created"]
    kept_before = len(list((tmp_path / "sink").glob("*.json")))

    resumed = workers.start()  # the same inputs, namespace and sink; nobody is killed now
    for proc, _, _ in resumed:
        proc.join(timeout=200)
        assert proc.exitcode == 0
    summaries = [json.loads(path.read_text()) for _, _, path in resumed]
    print(
        f"{method}: kill points {points}; killed (worker, creates, kept) {killed}; "
        f"{made_before} runs made and {kept_before} kept before the resume; {summaries}"
    )
    assert [s["failed"] for s in summaries] == [[]] * 4
    assert 0 < kept_before < BIG  # the kills landed in the middle

    faulty_service.set_faults(None)
    per_path = asyncio.run(runs_per_path(faulty_service.url, faulty_service.api_key, batch))
    assert len(per_path) == BIG and set(per_path.values()) == {1}
    assert asyncio.run(faulty_service.stats())["runs_created"] == BIG
    _check_every_row_kept_once(tmp_path / "sink", faulty_service, batch)


def _check_every_row_kept_once(sink: Path, emu: EmulatorProcess, batch: str) -> None:
    async def runs() -> dict[str, str]:
        async with AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
            return {
                run.id: run.source_path or ""
                async for run in lume.runs.list(page_size=100)
                if (run.source_path or "").startswith(f"synthetic://{batch}-")
            }

    path_of = asyncio.run(runs())
    records = [json.loads(f.read_text()) for f in sink.glob("*.json")]
    assert sorted(r["run_id"] for r in records) == sorted(path_of)  # one record per run, no more
    read: Counter[tuple[str, str]] = Counter()
    for record in records:
        index = int(path_of[record["run_id"]].split("-")[-1].split("?")[0])
        assert record["rows"] == [f"Customer {i}" for i in range(fanout.rows_of(index))]
        read.update((record["run_id"], name) for name in record["rows"])
    assert set(read.values()) == {1}  # no row read twice...
    assert sum(read.values()) == _rows(0, BIG)  # ...and none missing
