"""The ``lume`` command, run as a subprocess against an emulator, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lume_async._cli._demo_run import DemoProgress, run_demo
from lume_async.testing import Emulator

pytestmark = pytest.mark.lume_emulator(time_scale=100)

CUSTOMERS = "customer_cleaner:v1"
ROWS = [
    {"name": "Ada", "email": "ada@example.com", "age": 36},
    {"name": "Bob", "email": "not-an-address", "age": 41},
    {"name": "Cy", "email": "cy@example.com", "age": 29},
]


def lume(
    *args: str,
    emu: Emulator | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lume_async ARGS`` with the emulator's URL and key in the environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LUME_")}
    environ.pop("COLUMNS", None)
    if emu is not None:
        environ.update(LUME_BASE_URL=emu.url, LUME_API_KEY=emu.api_key)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lume_async", *args],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(*args: str, emu: Emulator, stdin: str | None = None) -> str:
    done = lume(*args, emu=emu, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ok_json(*args: str, emu: Emulator, stdin: str | None = None) -> Any:
    return json.loads(ok("--json", *args, emu=emu, stdin=stdin))


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr
    return lines[0]


def create(emu: Emulator, path: str = "synthetic://t?rows=250&reject_rate=0.1") -> str:
    run = ok_json("runs", "create", CUSTOMERS, path, emu=emu)
    assert isinstance(run["id"], str)
    return run["id"]


def finished(emu: Emulator, path: str = "synthetic://t?rows=250&reject_rate=0.1") -> str:
    run = ok_json("runs", "create", CUSTOMERS, path, "--wait", "--poll-interval", "0.05", emu=emu)
    return str(run["id"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- lume, lume demo, lume emulator ------------------------------------------------------------


def test_help_lists_every_command() -> None:
    out = lume("--help").stdout
    for command in ("demo", "emulator", "runs"):
        assert command in out
    runs_help = lume("runs", "--help").stdout
    for command in ("create", "get", "list", "wait", "cancel", "logs", "results"):
        assert command in runs_help


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    script = Path(sys.executable).with_name("lume")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("lume, version ")


def test_demo_ends_with_a_summary_table() -> None:
    done = lume("demo", "--runs", "40", "--time-scale", "50")
    assert done.returncode == 0, done.stderr
    for text in ("lume demo: 40 runs", "SUCCEEDED", "requests sent", "wall time", "LUME_API_KEY"):
        assert text in done.stdout
    assert "waiting for them with the shared poller" in done.stderr


def test_demo_json_counts_every_run() -> None:
    done = lume("demo", "--runs", "30", "--time-scale", "100", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
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
def test_default_demo_finishes_within_a_minute() -> None:
    done = lume("demo", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "lume demo: 300 runs" in done.stdout


def test_emulator_command_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "lume_async", "emulator", "--port", "0", "--api-key", "k1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready: dict[str, Any] = {}
            for line in process.stdout:
                if line.startswith("LUME_EMULATOR "):
                    ready = json.loads(line.removeprefix("LUME_EMULATOR "))
                    break
            assert ready["api_key"] == "k1"
            env = {"LUME_BASE_URL": ready["url"], "LUME_API_KEY": "k1"}
            listed = lume("--json", "runs", "list", env=env)
            assert listed.returncode == 0, listed.stderr
            assert json.loads(listed.stdout) == []
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
    assert process.returncode == 0


# -- lume runs create ---------------------------------------------------------------------------


def test_create_prints_the_new_run(lume_emulator: Emulator) -> None:
    out = ok("runs", "create", CUSTOMERS, "synthetic://a", "--label", "nightly", emu=lume_emulator)
    assert "run_" in out
    assert CUSTOMERS in out
    assert "nightly" in out


def test_create_json_gives_the_run_as_the_api_describes_it(lume_emulator: Emulator) -> None:
    run = ok_json(
        "runs", "create", CUSTOMERS, "synthetic://a", "--tag", "x", "--tag", "y", emu=lume_emulator
    )
    assert run["id"].startswith("run_")
    assert run["flow_version"] == CUSTOMERS
    assert run["tags"] == ["x", "y"]


def test_create_with_data_from_stdin_and_wait_maps_and_rejects_rows(
    lume_emulator: Emulator,
) -> None:
    args = ("runs", "create", CUSTOMERS, "--data", "-", "--wait", "--poll-interval", "0.05")
    run = ok_json(*args, emu=lume_emulator, stdin=json.dumps(ROWS))
    assert run["status"] == "PARTIAL_FAILED"
    assert run["metadata"]["results"]["mapped_rows"] == 2
    assert run["metadata"]["results"]["rejected_rows"] == 1


def test_create_and_wait_shows_the_finished_run(lume_emulator: Emulator) -> None:
    args = (
        "runs",
        "create",
        CUSTOMERS,
        "synthetic://w?rows=10",
        "--wait",
        "--poll-interval",
        "0.05",
    )
    out = ok(*args, emu=lume_emulator)
    assert "SUCCEEDED" in out
    assert "10 / 10 / 0" in out


def test_create_with_data_that_is_not_json_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, "--data", "-", emu=lume_emulator, stdin="[{oops")
    assert "--data is not valid JSON" in one_error_line(done)


def test_create_without_a_source_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, emu=lume_emulator)
    assert "exactly one of source_path and source_data" in one_error_line(done)


def test_create_of_an_unknown_flow_version_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "create", "nope:v1", "synthetic://a", emu=lume_emulator)
    assert "404" in one_error_line(done)


# -- lume runs get / list -----------------------------------------------------------------------


def test_get_shows_the_run(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    out = ok("runs", "get", run_id, emu=lume_emulator)
    assert run_id in out
    assert "PARTIAL_FAILED" in out
    assert "250 / 225 / 25" in out


def test_get_json(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    run = ok_json("runs", "get", run_id, emu=lume_emulator)
    assert run["id"] == run_id
    assert run["status"] == "PARTIAL_FAILED"


def test_json_flag_may_follow_the_subcommand(lume_emulator: Emulator) -> None:
    run_id = create(lume_emulator)
    out = ok("runs", "get", run_id, "--json", emu=lume_emulator)
    assert json.loads(out)["id"] == run_id


def test_list_shows_runs_newest_first(lume_emulator: Emulator) -> None:
    first, second = create(lume_emulator, "synthetic://1"), create(lume_emulator, "synthetic://2")
    out = ok("runs", "list", emu=lume_emulator)
    assert out.index(second) < out.index(first)


def test_list_json_filters_and_limits(lume_emulator: Emulator) -> None:
    for n in range(3):
        ok("runs", "create", CUSTOMERS, f"synthetic://{n}", "--label", "keep", emu=lume_emulator)
    create(lume_emulator, "synthetic://other")
    runs = ok_json("runs", "list", "--label", "keep", "--limit", "2", emu=lume_emulator)
    assert len(runs) == 2
    assert {run["label"] for run in runs} == {"keep"}


def test_list_by_status(lume_emulator: Emulator) -> None:
    done = finished(lume_emulator, "synthetic://done?rows=5")
    create(lume_emulator, "synthetic://slow?duration=100000")
    runs = ok_json("runs", "list", "--status", "succeeded", emu=lume_emulator)
    assert [run["id"] for run in runs] == [done]


# -- lume runs wait / cancel --------------------------------------------------------------------


def test_wait_reports_each_run_as_it_finishes(lume_emulator: Emulator) -> None:
    ids = [create(lume_emulator, f"synthetic://{n}?duration=50") for n in range(3)]
    done = lume("runs", "wait", *ids, "--poll-interval", "0.05", emu=lume_emulator)
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.splitlines()) == 3
    for run_id in ids:
        assert f"{run_id} SUCCEEDED" in done.stderr
        assert run_id in done.stdout


def test_wait_json_prints_the_terminal_runs(lume_emulator: Emulator) -> None:
    run_id = create(lume_emulator, "synthetic://w?duration=50&outcome=FAILED")
    runs = ok_json("runs", "wait", run_id, "--poll-interval", "0.05", emu=lume_emulator)
    assert [(run["id"], run["status"]) for run in runs] == [(run_id, "FAILED")]


def test_wait_past_its_timeout_is_one_error_line(lume_emulator: Emulator) -> None:
    run_id = create(lume_emulator, "synthetic://slow?duration=100000")
    done = lume(
        "runs", "wait", run_id, "--timeout", "0.3", "--poll-interval", "0.1", emu=lume_emulator
    )
    assert "not finished after 0.3 s" in one_error_line(done)


def test_cancel_shows_the_canceled_run(lume_emulator: Emulator) -> None:
    run_id = create(lume_emulator, "synthetic://slow?duration=100000")
    out = ok("runs", "cancel", run_id, emu=lume_emulator)
    assert run_id in out
    assert "CANCELED" in out


def test_cancel_json(lume_emulator: Emulator) -> None:
    run_id = create(lume_emulator, "synthetic://slow?duration=100000")
    runs = ok_json("runs", "cancel", run_id, emu=lume_emulator)
    assert [(run["id"], run["status"]) for run in runs] == [(run_id, "CANCELED")]


# -- lume runs logs / results -------------------------------------------------------------------


def test_logs_shows_the_log_oldest_first(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    out = ok("runs", "logs", run_id, emu=lume_emulator)
    assert out.index("run.created") < out.index("run.partial_failed")


def test_logs_json(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    entries = ok_json("runs", "logs", run_id, emu=lume_emulator)
    assert entries[0]["code"] == "run.created"
    assert {"time", "level", "message"} <= entries[0].keys()


def test_results_shows_mapped_rows_as_a_table(lume_emulator: Emulator) -> None:
    run = ok_json(
        "runs",
        "create",
        CUSTOMERS,
        "--data",
        "-",
        "--wait",
        emu=lume_emulator,
        stdin=json.dumps(ROWS),
    )
    out = ok("runs", "results", run["id"], emu=lume_emulator)
    assert "full_name" in out.splitlines()[0]
    assert "ada@example.com" in out
    assert "cy@example.com" in out


def test_results_json_pages_up_to_the_limit(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    rows = ok_json("runs", "results", run_id, "--limit", "130", emu=lume_emulator)
    assert len(rows) == 130
    assert all("email" in row for row in rows)


def test_results_rejects_shows_the_reasons(lume_emulator: Emulator) -> None:
    run = ok_json(
        "runs",
        "create",
        CUSTOMERS,
        "--data",
        "-",
        "--wait",
        emu=lume_emulator,
        stdin=json.dumps(ROWS),
    )
    out = ok("runs", "results", run["id"], "--rejects", emu=lume_emulator)
    assert "email: invalid_email" in out
    assert "not-an-address" in out


def test_results_rejects_json(lume_emulator: Emulator) -> None:
    run_id = finished(lume_emulator)
    rejects = ok_json("runs", "results", run_id, "--rejects", "--limit", "5", emu=lume_emulator)
    assert len(rejects) == 5
    assert {"index", "source_record", "errors"} <= rejects[0].keys()


# -- errors -------------------------------------------------------------------------------------


def test_a_bad_api_key_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "list", emu=lume_emulator, env={"LUME_API_KEY": "not-the-key"})
    assert "401" in one_error_line(done)


def test_an_unknown_run_id_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", emu=lume_emulator)
    assert "not found" in one_error_line(done)


def test_an_unknown_run_id_in_cancel_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "cancel", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", emu=lume_emulator)
    assert "not found" in one_error_line(done)


def test_a_malformed_run_id_is_one_error_line(lume_emulator: Emulator) -> None:
    done = lume("runs", "logs", "not a run", emu=lume_emulator)
    assert "must be a run id" in one_error_line(done)


def test_an_unreachable_server_is_one_error_line() -> None:
    env = {"LUME_BASE_URL": f"http://127.0.0.1:{free_port()}", "LUME_API_KEY": "k"}
    done = lume("runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", env=env)
    assert "cannot connect" in one_error_line(done)


def test_a_missing_api_key_is_one_error_line() -> None:
    done = lume("runs", "list", env={"LUME_BASE_URL": "http://127.0.0.1:9"})
    assert "LUME_API_KEY" in one_error_line(done)


def test_without_the_cli_extra_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['click'] = None; import lume_async._cli"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert "pip install 'lume-sdk[cli]'" in one_error_line(done)


def test_the_sdk_does_not_import_the_cli_libraries() -> None:
    code = (
        "import sys, lume_async, lume_async.testing, lume_sync; "
        "print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]"
