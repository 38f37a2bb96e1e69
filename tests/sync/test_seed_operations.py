"""The seeds' newer operations through the blocking client: exports, logs, rerun, flows."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from lume_async.testing import Emulator
from lume_sync import Flow, Lume, Paginator, Run, RunFailedError, RunStatus

pytestmark = pytest.mark.timeout(60)

FLOW = "customer_cleaner:v1"
ROOT = Path(__file__).resolve().parents[2]


def source(rows: int = 20, duration: float = 1.0, **extra: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"rows": rows, "duration": duration, **extra}.items())
    return f"synthetic://sync-{uuid.uuid4().hex}?{query}"


def test_exports_write_files_and_report_progress_on_the_callers_thread(
    lume: Lume, tmp_path: Path
) -> None:
    run = lume.run(FLOW, source(rows=250, reject_rate=0.1)).wait(poll_interval=0.05)
    threads: set[int] = set()
    progress: list[int] = []

    def on_progress(rows: int) -> None:
        threads.add(threading.get_ident())
        progress.append(rows)

    results = run.results(page_size=100)
    assert isinstance(results, Paginator)
    written = results.to_csv(tmp_path / "r.csv", on_progress=on_progress)
    rows = run.results().collect()
    assert written == len(rows) == progress[-1]
    assert threads == {threading.get_ident()}
    with (tmp_path / "r.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert run.rejects().to_jsonl(tmp_path / "rej.jsonl") == len(run.rejects().collect())
    lines = (tmp_path / "rej.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [r.index for r in run.rejects()]


def test_to_pandas_and_to_arrow_through_the_blocking_client(lume: Lume) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    run = lume.run(FLOW, source(rows=30)).wait(poll_interval=0.05)
    assert len(run.results().to_pandas()) == 30
    assert run.results().to_arrow().num_rows == 30


def test_following_logs_ends_with_the_run_and_updates_the_handle(lume: Lume) -> None:
    run = lume.run(FLOW, source(rows=5, duration=5))
    codes = [entry.code for entry in run.logs(follow=True, poll_interval=0.02)]
    assert run.status is RunStatus.SUCCEEDED
    assert codes == [entry.code for entry in run.logs()]
    assert codes[-1] == "run.succeeded"


def test_runs_wait_rerun_and_input(lume: Lume) -> None:
    rows = [{"name": "Ann", "email": "ann@x.io", "age": 41}]
    run = lume.run(FLOW, source_data=rows, label="again")
    done = lume.runs.wait(run.id, poll_interval=0.05)
    assert isinstance(done, Run) and done.status is RunStatus.SUCCEEDED
    again = done.rerun()
    assert isinstance(again, Run) and again.id != done.id and again.label == "again"
    assert again.input().collect() == rows


def test_flows_and_an_all_rejected_process(lume: Lume) -> None:
    flow = lume.flows.get("customer_cleaner")
    assert isinstance(flow, Flow)
    assert "email" in flow.version("v1").target_schema
    with pytest.raises(RunFailedError) as caught:
        lume.process(FLOW, source_data=[{"name": ""}], poll_interval=0.05)
    assert isinstance(caught.value.run, Run)
    assert [r.index for r in caught.value.rejects] == [0]


def test_listing_resumes_from_a_saved_cursor(lume: Lume, emu: Emulator) -> None:
    label = f"resume-{uuid.uuid4().hex}"
    made = [lume.run(FLOW, source(), label=label).id for _ in range(5)]
    first = next(iter(lume.runs.list(label=label, page_size=2).pages()))
    assert first.next_cursor is not None
    with Lume(api_key=emu.api_key, base_url=emu.url) as later:
        rest = [r.id for r in later.runs.list(cursor=first.next_cursor)]
    assert [r.id for r in first.items] + rest == list(reversed(made))


def test_a_saved_cursor_resumes_the_listing_in_another_process(lume: Lume, emu: Emulator) -> None:
    label = f"process-{uuid.uuid4().hex}"
    made = [lume.run(FLOW, source(), label=label).id for _ in range(4)]
    first = next(iter(lume.runs.list(label=label, page_size=3).pages()))
    later = textwrap.dedent(
        """
        import os
        from lume_sync import Lume

        with Lume(api_key=os.environ["EMU_KEY"], base_url=os.environ["EMU_URL"]) as lume:
            for run in lume.runs.list(cursor=os.environ["MARKER"]):
                print(run.id)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMU_URL": emu.url,
        "EMU_KEY": emu.api_key,
        "MARKER": first.next_cursor or "",
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", later],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [r.id for r in first.items] + done.stdout.split() == list(reversed(made))
