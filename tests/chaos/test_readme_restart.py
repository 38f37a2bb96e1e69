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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..test_readme import python_blocks
from ._forks import ForkServer
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
def service(forks: ForkServer) -> Iterator[EmulatorProcess]:
    # 20x: each run (20 s of run time) takes a second, so kills find runs in flight.
    with EmulatorProcess(time_scale=20, seed=5, forks=forks) as emu:
        emu.set_faults(FAULTS)
        yield emu


class Job:
    """The README script as a process with the service and output directory in its environment.

    Run as ``python nightly.py`` would be, forked from a warm interpreter (see ``_forks``).
    """

    def __init__(self, forks: ForkServer, script: Path, emu: EmulatorProcess, out: Path) -> None:
        self.forks = forks
        self.cmd = [str(script)]
        self.env = {
            **os.environ,
            "LUME_BASE_URL": emu.url,
            "LUME_API_KEY": emu.api_key,
            "NIGHTLY_OUT": str(out),
        }
        self.out = out
        self.logs = script.parent
        self.runs = 0

    def saved(self) -> int:
        return len(list(self.out.glob("*.jsonl"))) if self.out.exists() else 0

    def _files(self) -> dict[str, Path]:
        self.runs += 1
        return {
            "out": self.logs / f"job-{self.runs}.out",
            "err": self.logs / f"job-{self.runs}.err",
        }

    def kill_when(self, reached: Callable[[list[str]], bool]) -> None:
        """Run the job and SIGKILL it as soon as ``reached(lines printed so far)``."""
        proc = self.forks.start(self.cmd, env=self.env, **self._files())
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                lines = proc.lines()
                if reached(lines):
                    proc.kill()
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None and not reached(proc.lines()):
                proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"the job ended before its kill: {lines[-3:]}"

    def run_to_the_end(self, attempts: int = 5) -> str:
        """Run the job again until it ends cleanly (it exits 1 while items still fail)."""
        for _ in range(attempts):
            done = self.forks.run(self.cmd, env=self.env, timeout=90, **self._files())
            if done.returncode == 0:
                return done.stdout
            assert done.returncode == 1, done.stderr[-2000:]
        raise AssertionError(f"still failing after {attempts} runs: {done.stderr[-2000:]}")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_readme_job_killed_three_times_and_run_again_makes_each_run_once(
    service: EmulatorProcess, forks: ForkServer, tmp_path: Path
) -> None:
    script = tmp_path / "nightly.py"
    script.write_text(restart_script(), encoding="utf-8")
    job = Job(forks, script, service, tmp_path / "out")
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
