"""What a script meets at the edges: a reader that stops reading, paths and names with unusual
characters, runs named twice, a wait that runs out after some runs failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lume_async._cli._fanout import read_paths
from lume_async.testing import Emulator

from .conftest import _AMBIENT, CUSTOMERS, create, environment, finished, lume

FAST = ("--poll-interval", "0.05")
FAILING = "synthetic://failing?rows=5&duration=1&outcome=FAILED"


def failed_run(emu: Emulator) -> str:
    """A run that has ended FAILED."""
    run_id = create(emu, FAILING)
    assert lume("runs", "wait", run_id, *FAST, emu=emu).status == 3
    return run_id


def lume_into_closed_pipe(*args: str, emu: Emulator, both: bool = False) -> tuple[int, str]:
    """``lume ARGS | true``: a process whose standard output (``both``: and standard error) is
    a pipe nobody reads any more; its exit status and what it wrote on standard error."""
    read, write = os.pipe()
    os.close(read)
    environ = {k: v for k, v in os.environ.items() if k not in _AMBIENT}
    environ.update({k: v for k, v in environment(emu, None).items() if v is not None})
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lume_async", *args],
            env=environ,
            stdout=write,
            stderr=write if both else subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr or ""


def test_a_listing_whose_reader_left_ends_quietly_with_status_0(emu: Emulator) -> None:
    create(emu)
    for args in (("runs", "list"), ("--json", "runs", "list")):
        status, stderr = lume_into_closed_pipe(*args, emu=emu)
        assert (status, stderr) == (0, ""), args


def test_rows_to_a_reader_that_left_end_quietly_with_status_0(emu: Emulator) -> None:
    run_id = finished(emu)
    args = ("runs", "results", run_id, "--output", "-", "--format", "jsonl")
    assert lume_into_closed_pipe(*args, emu=emu) == (0, "")


def test_a_failed_run_still_exits_3_when_the_reader_of_its_output_left(emu: Emulator) -> None:
    run_id = create(emu, FAILING)
    status, stderr = lume_into_closed_pipe("--json", "runs", "wait", run_id, *FAST, emu=emu)
    assert status == 3, stderr
    assert json.loads(stderr)["error"]["runs"] == {run_id: "FAILED"}


def test_a_wait_whose_progress_goes_nowhere_still_waits_and_exits_by_the_runs(
    emu: Emulator,
) -> None:
    failing = create(emu, FAILING)
    good = create(emu, "synthetic://good?rows=5&duration=1")
    status, _ = lume_into_closed_pipe("runs", "wait", failing, good, *FAST, emu=emu, both=True)
    assert status == 3
    status, _ = lume_into_closed_pipe("runs", "wait", good, *FAST, emu=emu, both=True)
    assert status == 0


def test_only_line_feeds_and_carriage_returns_end_a_line_of_paths(
    emu: Emulator, tmp_path: Path
) -> None:
    paths = ["s3://bucket/a\u2028b", "s3://bucket/c\x85d", "s3://bucket/e\x0cf"]
    assert read_paths("\r\n".join(paths) + "\rs3://bucket/g\n") == [*paths, "s3://bucket/g"]
    listed = tmp_path / "paths.txt"
    listed.write_text("\n".join(paths) + "\n", encoding="utf-8", newline="")
    done = lume("--json", "runs", "create", CUSTOMERS, "--from-file", str(listed), emu=emu)
    assert [item["source_path"] for item in json.loads(done.stdout)] == paths


def test_a_run_named_twice_is_counted_once_in_the_outcome(emu: Emulator) -> None:
    run_id = failed_run(emu)
    done = lume("--json", "runs", "wait", run_id, run_id, *FAST, emu=emu)
    assert done.status == 3
    error = done.json_error()
    assert error["message"].startswith(f"1 run did not succeed: {run_id} FAILED"), error
    assert error["runs"] == {run_id: "FAILED"}


def test_a_wait_that_runs_out_says_how_the_finished_runs_ended(emu: Emulator) -> None:
    failed = failed_run(emu)
    slow = create(emu, "synthetic://slow?duration=86400")
    done = lume("--json", "runs", "wait", failed, slow, "--timeout", "0.5", *FAST, emu=emu)
    assert done.status == 1
    error = done.json_error()
    assert error["running"] == [slow]
    assert error["finished"] == {failed: "FAILED"}


def test_the_path_of_an_export_is_shown_spelled_out(emu: Emulator, tmp_path: Path) -> None:
    run_id = finished(emu)
    output = tmp_path / "a\x1b]0;title\x07.csv"
    done = lume("runs", "results", run_id, "--output", str(output), emu=emu)
    assert done.status == 0, done.stderr
    assert output.exists()
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "a\\x1b]0;title\\x07.csv" in done.stderr


def test_an_export_to_a_file_name_that_is_not_utf8_reports_it_as_json(
    emu: Emulator, tmp_path: Path
) -> None:
    run_id = finished(emu)
    output = os.fsdecode(bytes(tmp_path) + b"/rows\xff.jsonl")
    done = lume("--json", "runs", "results", run_id, "--output", output, emu=emu)
    report = done.json()
    assert report["path"].endswith("/rows\\xff.jsonl")
    assert report["rows"] == len(Path(output).read_text(encoding="utf-8").splitlines())


def test_a_source_path_with_data_from_stdin_is_a_usage_error_before_stdin_is_read(
    emu: Emulator,
) -> None:
    done = lume("runs", "create", CUSTOMERS, "s3://bucket/x", "--data", "-", emu=emu)
    assert done.status == 2
    assert "SOURCE_PATH or --data, not both" in done.error_line()


def test_an_export_through_a_link_into_a_missing_directory_is_a_usage_error(
    emu: Emulator, tmp_path: Path
) -> None:
    run_id = finished(emu)
    link = tmp_path / "rows.csv"
    link.symlink_to(tmp_path / "gone" / "rows.csv")
    done = lume("runs", "results", run_id, "--output", str(link), emu=emu)
    assert done.status == 2
    assert f"no directory {str(tmp_path / 'gone')!r}" in done.error_line()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rows.csv"]
