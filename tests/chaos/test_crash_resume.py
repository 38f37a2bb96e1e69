"""Crash, resume and many processes: deterministic inputs make a fan-out safe to repeat.

A fan-out killed with SIGKILL half way and run again with the same inputs, and four worker
processes fanning out overlapping slices of one batch at the same time (fork and spawn, one
client each), all leave exactly one run per source path on the server. The emulator runs in a
process of its own, as the shared service would.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._processes import EmulatorProcess, runs_per_path
from ._scripts import fanout

SCRIPT = Path(fanout.__file__)
N = 400


def _rows(start: int, stop: int) -> int:
    return sum(3 + i % 18 for i in range(start, stop))


@pytest.fixture
def service() -> Iterator[EmulatorProcess]:
    # 20x: short runs end in 50 ms, long ones (60 s) in 3 s, so a resume finds both kinds.
    with EmulatorProcess(time_scale=20, seed=3) as emu:
        yield emu


def _script(emu: EmulatorProcess, batch: str, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), emu.url, emu.api_key, batch, "0", str(N), *extra]


def _kill_half_way(cmd: list[str]) -> int:
    """Start the fan-out, SIGKILL it once half the creates are done; the progress seen."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    done = 0
    try:
        for line in proc.stdout:
            if line.startswith("progress "):
                done = int(line.split()[1])
                if done >= N // 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the fan-out ended before it could be killed"
    return done


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "extra", [(), ("--keys",)], ids=["duplicate-means-done", "idempotency-keys"]
)
def test_a_fan_out_killed_half_way_and_run_again_makes_each_run_once(
    service: EmulatorProcess, extra: tuple[str, ...]
) -> None:
    batch = "crash-keys" if extra else "crash"
    cmd = _script(service, batch, "--concurrency", "4", *extra)
    seen = _kill_half_way(cmd)
    created_before = asyncio.run(service.stats())["runs_created"]
    assert seen >= N // 2 and created_before < N  # really killed in the middle

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
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
