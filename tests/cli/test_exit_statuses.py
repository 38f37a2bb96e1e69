"""Exit statuses scripts can trust: 0 success, 1 error, 2 usage, 3 a run failed, 4 a run partly
failed (--fail-on-partial), 130 interrupted, 143 terminated; with ``--json``, errors are JSON on
stderr."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from lume_async._cli._exit import ExitStatus
from lume_async.testing import Emulator

from .conftest import CUSTOMERS, create, lume, lume_process, ok_json

FAST = ("--poll-interval", "0.05")
OUTCOME_PATHS = {
    "SUCCEEDED": "synthetic://ok?rows=20&duration=5",
    "PARTIAL_FAILED": "synthetic://partial?rows=200&reject_rate=0.2&duration=5",
    "FAILED": "synthetic://failed?duration=5&outcome=FAILED",
    "CRASHED": "synthetic://crashed?duration=5&outcome=CRASHED",
}
EXPECTED = {"SUCCEEDED": 0, "PARTIAL_FAILED": 0, "FAILED": 3, "CRASHED": 3, "CANCELED": 3}
ON_PARTIAL = {**EXPECTED, "PARTIAL_FAILED": 4}


def run_ending(emu: Emulator, status: str) -> str:
    """A run that is on its way to ``status``."""
    if status == "CANCELED":
        run_id = create(emu, "synthetic://canceled?duration=100000")
        ok_json("runs", "cancel", run_id, emu=emu)
        return run_id
    return create(emu, OUTCOME_PATHS[status])


def test_the_statuses_are_the_documented_numbers() -> None:
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3, 4, 130, 143]


def test_help_lists_the_exit_statuses() -> None:
    text = lume("--help").stdout
    assert "Exit statuses:" in text
    listed = [line.split()[0] for line in text.split("Exit statuses:")[1].splitlines() if line]
    assert {str(int(s)) for s in ExitStatus} <= set(listed)


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_wait_exits_by_how_the_run_ended(emu: Emulator, status: str) -> None:
    run_id = run_ending(emu, status)
    done = lume("runs", "wait", run_id, *FAST, emu=emu)
    assert done.status == EXPECTED[status], done.stderr
    assert run_id in done.stdout


@pytest.mark.parametrize("status", sorted(ON_PARTIAL))
def test_wait_with_fail_on_partial_exits_4_for_partial_failed(emu: Emulator, status: str) -> None:
    run_id = run_ending(emu, status)
    done = lume("runs", "wait", run_id, *FAST, "--fail-on-partial", emu=emu)
    assert done.status == ON_PARTIAL[status], done.stderr


@pytest.mark.parametrize("status", sorted(OUTCOME_PATHS))
@pytest.mark.parametrize("fail_on_partial", [False, True])
def test_create_and_wait_exits_by_how_the_run_ended(
    emu: Emulator, status: str, fail_on_partial: bool
) -> None:
    flags = ["--fail-on-partial"] if fail_on_partial else []
    args = ("runs", "create", CUSTOMERS, OUTCOME_PATHS[status], "--wait", *FAST, *flags)
    done = lume(*args, emu=emu)
    assert done.status == (ON_PARTIAL if fail_on_partial else EXPECTED)[status], done.stderr
    assert status in done.stdout


def test_a_failed_run_outweighs_a_partial_one(emu: Emulator) -> None:
    ids = [run_ending(emu, "PARTIAL_FAILED"), run_ending(emu, "FAILED")]
    done = lume("runs", "wait", *ids, *FAST, "--fail-on-partial", emu=emu)
    assert done.status == 3


def test_a_failed_run_is_named_on_stderr_and_the_runs_still_print(emu: Emulator) -> None:
    ok_id, failed_id = run_ending(emu, "SUCCEEDED"), run_ending(emu, "FAILED")
    done = lume("runs", "wait", ok_id, failed_id, *FAST, emu=emu)
    assert f"{failed_id} FAILED" in done.stderr.splitlines()[-1]
    assert ok_id in done.stdout
    assert failed_id in done.stdout


def test_with_json_a_failed_run_is_json_on_stderr_and_the_runs_on_stdout(emu: Emulator) -> None:
    run_id = run_ending(emu, "CRASHED")
    done = lume("--json", "runs", "wait", run_id, *FAST, emu=emu)
    assert [run["status"] for run in json.loads(done.stdout)] == ["CRASHED"]
    error = done.json_error()
    assert error["type"] == "run_failed"
    assert error["runs"] == {run_id: "CRASHED"}


def test_a_wait_past_its_timeout_exits_1(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://slow?duration=100000")
    done = lume("runs", "wait", run_id, "--timeout", "0.3", "--poll-interval", "0.1", emu=emu)
    assert done.status == 1
    assert "not finished after 0.3 s" in done.error_line()


def test_a_service_error_exits_1_with_one_line(emu: Emulator) -> None:
    done = lume("runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", emu=emu)
    assert done.status == 1
    assert "not found" in done.error_line()


def test_with_json_a_service_error_is_json_on_stderr(emu: Emulator) -> None:
    done = lume("runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", "--json", emu=emu)
    error = done.json_error()
    assert (error["type"], error["status_code"], error["code"]) == (
        "RunNotFoundError",
        404,
        "not_found",
    )
    assert error["request_id"]
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "get"),  # a missing argument
        ("runs", "list", "--limit", "0"),  # a value out of range
        ("runs", "frobnicate"),  # no such command
        ("runs", "create", CUSTOMERS),  # the SDK refuses: no source
        ("runs", "wait", "not a run id"),  # the SDK refuses: not an id
    ],
    ids=["missing", "range", "command", "no-source", "bad-id"],
)
def test_usage_errors_exit_2_with_one_line(emu: Emulator, args: tuple[str, ...]) -> None:
    done = lume(*args, emu=emu)
    assert done.status == 2
    assert "--help" in done.error_line()


@pytest.mark.parametrize("where", ["before", "after"])
def test_with_json_usage_errors_are_json_on_stderr(emu: Emulator, where: str) -> None:
    args = ["runs", "list", "--limit", "0"]
    args = ["--json", *args] if where == "before" else [*args, "--json"]
    error = lume(*args, emu=emu).json_error()
    assert error["type"] == "usage"
    assert "--limit" in error["message"]


def _wait_until_polling(emu: Emulator) -> None:
    """Until the waiting process has polled its run's status (it is inside its wait).

    ``lume runs wait`` looks its runs up with one ``batch-get`` before it waits on them; the
    poller's own ``batch-get`` is the second.
    """
    for _ in range(600):
        answers = emu.stats()["requests"].get("POST /v1/runs/batch-get", {})
        if sum(answers.values()) >= 2:
            return
        time.sleep(0.05)
    raise AssertionError("the command never started waiting")


SIGNALS = {
    # name: (signal, exit status, what the error says, started as a background job)
    "ctrl-c": (signal.SIGINT, 130, "interrupted", False),
    "sigterm": (signal.SIGTERM, 143, "terminated", False),
    "sigterm-in-background": (signal.SIGTERM, 143, "terminated", True),
}


def test_a_sigterm_the_parent_ignores_stays_ignored(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://shielded?duration=100000")
    args = ("runs", "wait", run_id, *FAST)
    with lume_process(*args, emu=emu, ignoring=(signal.SIGTERM,)) as process:
        _wait_until_polling(emu)
        process.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)  # still waiting: SIGTERM was not for it
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.startswith("error: interrupted;"), stderr


@pytest.mark.parametrize("json_", [False, True])
@pytest.mark.parametrize("stop", list(SIGNALS))
def test_a_stopped_wait_exits_by_its_signal_and_says_how_to_cancel_the_run_that_goes_on(
    emu: Emulator, json_: bool, stop: str
) -> None:
    signum, status, said, in_background = SIGNALS[stop]
    run_id = create(emu, f"synthetic://{stop}?duration=100000")
    flags = ["--json"] if json_ else []
    args = (*flags, "runs", "wait", run_id, *FAST)
    ignoring = (signal.SIGINT,) if in_background else ()
    with lume_process(*args, emu=emu, ignoring=ignoring) as process:
        _wait_until_polling(emu)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    if json_:
        error = json.loads(stderr.strip().splitlines()[-1])["error"]
        assert (error["type"], error["exit_status"]) == (said, status)
        assert error["running"] == [run_id]
        assert error["cancel_command"] == f"lume runs cancel {run_id}"
    else:
        assert stderr.startswith(f"error: {said};"), stderr
        assert f"run {run_id} goes on at the service" in stderr
        assert f"lume runs cancel {run_id}" in stderr
    assert ok_json("runs", "get", run_id, emu=emu)["status"] != "CANCELED"
