"""The README's "Restarting a batch job" script, killed three times and run again, runs once.

The script runs as the README shows it, against an emulator in a process of its own that fails
30 % of requests before or after doing the work. It is SIGKILLed at three seeded points (while
creating, and twice while saving results), then run until it ends cleanly; the service must hold
exactly one run per source path, and the output one file per run with every row once, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..test_readme import python_blocks
from ._processes import EmulatorProcess, runs_per_path

N = 400
FAULTS = {
    "rate": 0.3,
    "kinds": ["500", "502", "503", "429", "reset", "truncate"],
    "phase": "both",
    "seed": 30,
    "retry_after": 0.05,
}


def restart_script() -> str:
    [code] = [p.values[0] for p in python_blocks() if p.id.startswith("restarting-a-batch-job")]
    return str(code)


@pytest.fixture
def service() -> Iterator[EmulatorProcess]:
    # 20x: each run (20 s of run time) takes a second, so kills find runs in flight.
    with EmulatorProcess(time_scale=20, seed=5) as emu:
        emu.set_faults(FAULTS)
        yield emu


class Job:
    """The README script as a process with the service and output directory in its environment."""

    def __init__(self, script: Path, emu: EmulatorProcess, out: Path) -> None:
        self.cmd = [sys.executable, str(script)]
        self.env = {
            **os.environ,
            "LUME_BASE_URL": emu.url,
            "LUME_API_KEY": emu.api_key,
            "NIGHTLY_OUT": str(out),
        }
        self.out = out

    def saved(self) -> int:
        return len(list(self.out.glob("*.jsonl"))) if self.out.exists() else 0

    def kill_when(self, reached: Callable[[list[str]], bool]) -> None:
        """Run the job and SIGKILL it as soon as ``reached(lines printed so far)``."""
        proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines: list[str] = []
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if reached(list(lines)):
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None and not reached(list(lines)):
                proc.kill()
            proc.wait(timeout=30)
            reader.join(timeout=10)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL, f"the job ended before its kill: {lines[-3:]}"

    def run_to_the_end(self, attempts: int = 5) -> str:
        """Run the job again until it ends cleanly (it exits 1 while items still fail)."""
        for _ in range(attempts):
            done = subprocess.run(
                self.cmd, env=self.env, capture_output=True, text=True, timeout=90, check=False
            )
            if done.returncode == 0:
                return done.stdout
            assert done.returncode == 1, done.stderr[-2000:]
        raise AssertionError(f"still failing after {attempts} runs: {done.stderr[-2000:]}")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_readme_job_killed_three_times_and_run_again_makes_each_run_once(
    service: EmulatorProcess, tmp_path: Path
) -> None:
    script = tmp_path / "nightly.py"
    script.write_text(restart_script(), encoding="utf-8")
    job = Job(script, service, tmp_path / "out")
    rng = random.Random(2026)
    created_at = rng.choice([100, 200, 300])
    first_save, second_save = rng.randint(1, 150), rng.randint(151, 350)

    job.kill_when(lambda lines: f"created {created_at}/{N}\n" in lines)
    made_at_first_kill = asyncio.run(service.stats())["runs_created"]
    job.kill_when(lambda _: job.saved() >= first_save)
    job.kill_when(lambda _: job.saved() >= second_save)
    saved_before_the_end = job.saved()
    summary = job.run_to_the_end()

    print(
        f"kills: created {created_at}, saved {first_save}, {second_save}; runs made by the first "
        f"kill {made_at_first_kill}; saved before the last run {saved_before_the_end}; {summary}"
    )
    assert 0 < made_at_first_kill < N and saved_before_the_end < N  # killed in the middle
    assert summary.strip().endswith(f"{N} of {N} batches saved, 0 to retry")
    service.set_faults(None)
    per_path = asyncio.run(runs_per_path(service.url, service.api_key, "customers"))
    assert len(per_path) == N and set(per_path.values()) == {1}
    assert asyncio.run(service.stats())["runs_created"] == N
    check_saved_rows(job.out)


def check_saved_rows(out: Path) -> None:
    """One file per batch, holding each of the batch's rows once, in order."""
    files = sorted(out.glob("*.jsonl"))
    assert [f.stem for f in files] == [f"customers-{i:03d}" for i in range(N)]
    assert list(out.glob("*.partial")) == []  # a write cut short by a kill was done again
    for i, file in enumerate(files):
        names = [json.loads(line)["full_name"] for line in file.read_text().splitlines()]
        assert names == [f"Customer {n}" for n in range(5 + i % 10)], file.name
