"""``lume demo``: its live display in a real terminal, its summary, its JSON."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from lume_async._cli._demo_run import DemoProgress, run_demo

from .conftest import lume

COUNTS = ("created ", "in flight ", "succeeded ", "partial ", "failed ")


class Terminal:
    """A tmux session of a given size running one command: the screen a user would see."""

    def __init__(self, command: list[str], *, columns: int, lines: int = 30) -> None:
        self._socket = f"lume-test-{uuid.uuid4().hex[:12]}"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in _clean_env().items())
        shell = f"env -i {env} {shlex.join(command)}; sleep 600"
        self._tmux("new-session", "-d", "-x", str(columns), "-y", str(lines), shell)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self._socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p").splitlines()

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self._socket, "kill-server"], capture_output=True, check=False
        )


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["TERM"] = "xterm-256color"
    env.setdefault("LANG", "C.UTF-8")
    return env


@pytest.fixture
def terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing: .ci/run installs it")
        pytest.skip("tmux is not installed")
    columns = request.param
    term = Terminal(
        [sys.executable, "-m", "lume_async", "demo", "--runs", "60", "--time-scale", "10"],
        columns=columns,
    )
    try:
        yield term
    finally:
        term.close()


def live_screen(term: Terminal) -> list[str]:
    """The screen once the demo waits for its runs and some have finished."""
    screen: list[str] = []
    for _ in range(1200):
        screen = term.screen()
        text = "\n".join(screen)
        if "lume demo: waiting" in text and " finished" in text and "succeeded 0 " not in text:
            return screen
        time.sleep(0.025)
    raise AssertionError("the demo never showed its waiting display:\n" + "\n".join(screen))


@pytest.mark.parametrize("terminal", [80, 100], indirect=True, ids=["80-columns", "100-columns"])
def test_the_live_display_shows_every_count_and_a_labelled_bar(terminal: Terminal) -> None:
    screen = live_screen(terminal)
    title = next(i for i, line in enumerate(screen) if line.startswith("lume demo: waiting"))
    bar, counts = screen[title + 1], " ".join(screen[title + 2 : title + 4])
    assert bar.rstrip().endswith("finished")
    assert "━" in bar
    done, total = bar.split()[-2].split("/")
    assert int(done.replace(",", "")) > 0
    assert int(total) == 60
    for label in COUNTS:
        assert label in counts, screen
    assert "created 60/60" in counts
    found = {
        label: int(m.group(1).replace(",", ""))
        for label in COUNTS[1:]
        if (m := re.search(re.escape(label) + r"([\d,]+)", counts))
    }
    assert sum(found.values()) == 60, counts  # in flight + succeeded + partial + failed


def test_demo_ends_with_a_summary_table() -> None:
    done = lume("demo", "--runs", "40", "--time-scale", "50")
    assert done.status == 0, done.stderr
    for text in ("lume demo: 40 runs", "SUCCEEDED", "requests sent", "wall time", "LUME_API_KEY"):
        assert text in done.stdout
    assert "waiting for them with the shared poller" in done.stderr


def test_demo_json_counts_every_run() -> None:
    summary = lume("demo", "--runs", "30", "--time-scale", "100", "--json").json()
    assert sum(summary["statuses"].values()) + summary["refused"] == 30
    assert summary["requests_total"] == sum(summary["requests"].values()) >= 30
    assert summary["rows_mapped"] > 0
    assert summary["rows_rejected"] > 0


@pytest.mark.anyio
async def test_demo_reports_its_phases_in_order_and_sums_up_every_run() -> None:
    seen: list[DemoProgress] = []
    summary = await run_demo(runs=24, time_scale=200, poll_interval=0.05, on_progress=seen.append)
    phases = list(dict.fromkeys(progress.phase for progress in seen))
    assert phases == ["creating", "waiting", "paging", "done"]
    final = seen[-1]
    assert final.running == 0
    assert final.succeeded + final.partial + final.failed == final.created == 24
    assert sum(summary.statuses.values()) == 24
    assert summary.rows_paged > 0
    assert summary.rejects_paged > 0


@pytest.mark.slow
def test_the_default_demo_runs_to_its_summary() -> None:
    done = lume("demo")
    assert done.status == 0, done.stderr
    assert "lume demo: 300 runs" in done.stdout


def test_emulator_command_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "lume_async", "emulator", "--port", "0", "--api-key", "k1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready: dict[str, object] = {}
            for line in process.stdout:
                if line.startswith("LUME_EMULATOR "):
                    ready = json.loads(line.removeprefix("LUME_EMULATOR "))
                    break
            assert ready["api_key"] == "k1"
            env = {"LUME_BASE_URL": str(ready["url"]), "LUME_API_KEY": "k1"}
            assert lume("--json", "runs", "list", env=env).json() == []
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
    assert process.returncode == 0
