"""``lume runs create --from-file``: one run per line, bounded concurrency, never twice."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from lume_async._cli._fanout import default_namespace
from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, lume, lume_process, ok_json

FAST = ("--poll-interval", "0.05")


def paths_file(tmp_path: Path, paths: list[str], name: str = "paths.txt") -> str:
    file = tmp_path / name
    file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    return str(file)


def fan_out(emu: Emulator, file: str, *args: str) -> list[dict[str, object]]:
    items = ok_json("runs", "create", CUSTOMERS, "--from-file", file, *args, emu=emu)
    assert isinstance(items, list)
    return items


def batch(n: int, query: str = "rows=10&duration=5") -> list[str]:
    return [f"synthetic://batch_{i:03d}?{query}" for i in range(n)]


def test_one_run_per_line_in_file_order(emu: Emulator, tmp_path: Path) -> None:
    paths = batch(12)
    items = fan_out(emu, paths_file(tmp_path, paths))
    assert [item["source_path"] for item in items] == paths
    assert [item["run"]["source_path"] for item in items] == paths  # type: ignore[index]
    assert emu.stats()["runs_created"] == 12


def test_blank_lines_and_comments_are_skipped(emu: Emulator, tmp_path: Path) -> None:
    file = paths_file(tmp_path, ["# nightly", "", "s3://b/1", "   ", "  s3://b/2  ", "#s3://b/3"])
    items = fan_out(emu, file)
    assert [item["source_path"] for item in items] == ["s3://b/1", "s3://b/2"]


def test_paths_may_come_from_stdin(emu: Emulator) -> None:
    args = ("runs", "create", CUSTOMERS, "--from-file", "-")
    items = ok_json(*args, emu=emu, stdin="s3://b/1\ns3://b/2\n")
    assert len(items) == 2


def test_the_same_command_again_creates_nothing_new(emu: Emulator, tmp_path: Path) -> None:
    file = paths_file(tmp_path, batch(20, "duration=100000"))
    first = fan_out(emu, file, "--label", "nightly")
    again = fan_out(emu, file, "--label", "nightly")
    assert [item["run"]["id"] for item in again] == [item["run"]["id"] for item in first]  # type: ignore[index]
    assert emu.stats()["runs_created"] == 20


def test_creates_whose_answers_were_lost_are_found_when_run_again(
    emu: Emulator, tmp_path: Path
) -> None:
    """The service did the work but the answer never came: the second try finds those runs."""
    paths = batch(30, "duration=100000")
    file = paths_file(tmp_path, paths)
    emu.set_faults(FaultProfile(rate=0.5, kinds=("500",), phase="after", seed=3))
    broken = lume(
        "--json", "--max-retries", "0", "runs", "create", CUSTOMERS, "--from-file", file, emu=emu
    )
    assert broken.status == 1
    failed = broken.json_error()["failed"]
    assert 0 < len(failed) < 30
    assert emu.stats()["runs_created"] == 30  # every create did its work; some answers were lost
    emu.set_faults(FaultProfile(rate=0))
    items = fan_out(emu, file)
    assert [item["source_path"] for item in items] == paths
    assert all("run" in item for item in items)
    assert emu.stats()["runs_created"] == 30


def test_a_namespace_names_the_batch_across_files(emu: Emulator, tmp_path: Path) -> None:
    """An interrupted job resumed from a longer file: the runs of the first part are not redone."""
    paths = batch(10, "duration=100000")
    half = paths_file(tmp_path, paths[:5], "half.txt")
    whole = paths_file(tmp_path, paths, "whole.txt")
    first = fan_out(emu, half, "--idempotency-namespace", "nightly-2026-01-01")
    second = fan_out(emu, whole, "--idempotency-namespace", "nightly-2026-01-01")
    assert [i["run"]["id"] for i in second[:5]] == [i["run"]["id"] for i in first]  # type: ignore[index]
    assert emu.stats()["runs_created"] == 10
    assert str(second[0]["idempotency_key"]).startswith("nightly-2026-01-01:")


def test_the_default_namespace_changes_with_the_file_and_the_options() -> None:
    base = default_namespace(CUSTOMERS, ["a", "b"], {"label": None}, api_key="k")
    assert base == default_namespace(CUSTOMERS, ["a", "b"], {"label": None}, api_key="k")
    assert base != default_namespace(CUSTOMERS, ["a", "b", "c"], {"label": None}, api_key="k")
    assert base != default_namespace(CUSTOMERS, ["a", "b"], {"label": "x"}, api_key="k")
    assert base != default_namespace("invoice_mapper:v1", ["a", "b"], {"label": None}, api_key="k")
    assert base != default_namespace(CUSTOMERS, ["a", "b"], {"label": None}, api_key="other")


def test_a_source_that_already_succeeded_is_reported_not_failed(
    emu: Emulator, tmp_path: Path
) -> None:
    done = ok_json("runs", "create", CUSTOMERS, "s3://b/done", "--wait", *FAST, emu=emu)
    items = fan_out(emu, paths_file(tmp_path, ["s3://b/done", "s3://b/new"]))
    assert items[0]["existing_run_id"] == done["id"]
    assert "run" in items[1]


def test_a_source_that_already_succeeded_given_twice_is_counted_once(
    emu: Emulator, tmp_path: Path
) -> None:
    ok_json("runs", "create", CUSTOMERS, "s3://b/done", "--wait", *FAST, emu=emu)
    file = paths_file(tmp_path, ["s3://b/done", "s3://b/new", "s3://b/done"])
    done = lume("runs", "create", CUSTOMERS, "--from-file", file, emu=emu)
    assert done.status == 0, done.stderr
    lines = {" ".join(line.split()) for line in done.stdout.splitlines()}
    assert {"runs started 1", "already succeeded before 1"} <= lines, lines
    assert "1 runs created or found in flight; 1 source paths given again" in done.stderr
    assert "1 already succeeded before" in done.stderr


@pytest.mark.parametrize(
    ("outcome", "status"), [("", 0), ("&outcome=FAILED", 3), ("&reject_rate=0.2", 0)]
)
def test_wait_exits_by_how_the_runs_ended(
    emu: Emulator, tmp_path: Path, outcome: str, status: int
) -> None:
    file = paths_file(tmp_path, [*batch(4), f"synthetic://odd?rows=50&duration=5{outcome}"])
    done = lume("runs", "create", CUSTOMERS, "--from-file", file, "--wait", *FAST, emu=emu)
    assert done.status == status, done.stderr


def test_wait_with_fail_on_partial_exits_4(emu: Emulator, tmp_path: Path) -> None:
    file = paths_file(tmp_path, [*batch(2), "synthetic://p?rows=50&reject_rate=0.2&duration=5"])
    args = ("--from-file", file, "--wait", "--fail-on-partial", *FAST)
    assert lume("runs", "create", CUSTOMERS, *args, emu=emu).status == 4


def test_the_summary_counts_the_runs_by_status(emu: Emulator, tmp_path: Path) -> None:
    file = paths_file(tmp_path, [*batch(3), "synthetic://f?duration=5&outcome=CRASHED"])
    done = lume("runs", "create", CUSTOMERS, "--from-file", file, "--wait", *FAST, emu=emu)
    lines = {" ".join(line.split()) for line in done.stdout.splitlines()}
    assert {"source paths 4", "SUCCEEDED 3", "CRASHED 1"} <= lines
    assert "4 runs created or found in flight" in done.stderr


@pytest.mark.parametrize("wait", [False, True])
def test_a_path_given_twice_is_one_run_and_counted_once(
    emu: Emulator, tmp_path: Path, wait: bool
) -> None:
    paths = batch(3)
    file = paths_file(tmp_path, [*paths, paths[0], paths[0]])
    args = ("--wait", *FAST) if wait else ()
    done = lume("runs", "create", CUSTOMERS, "--from-file", file, *args, emu=emu)
    assert done.status == 0, done.stderr
    lines = {" ".join(line.split()) for line in done.stdout.splitlines()}
    counted = {"SUCCEEDED 3"} if wait else {"runs started 3"}
    assert {"source paths 5", "given again (counted once) 2", *counted} <= lines, lines
    assert (
        "3 runs created or found in flight; 2 source paths given again (counted once)"
        in done.stderr
    )
    assert emu.stats()["runs_created"] == 3
    items = fan_out(emu, file)  # and JSON keeps one item per line, the repeats with their run
    assert [item["run"]["id"] for item in items[3:]] == [items[0]["run"]["id"]] * 2  # type: ignore[index]


def test_json_lists_each_path_with_its_run_or_its_error(emu: Emulator, tmp_path: Path) -> None:
    items = fan_out(emu, paths_file(tmp_path, batch(2)), "--wait", *FAST)
    for item in items:
        assert set(item) == {"source_path", "idempotency_key", "run"}
        assert item["run"]["status"] == "SUCCEEDED"  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["s3://b/1"], "only one of them"),
        (["--concurrency", "0"], "--concurrency"),
        (["--idempotency-namespace", "has spaces"], "--idempotency-namespace"),
    ],
)
def test_bad_fan_out_arguments_are_usage_errors(
    emu: Emulator, tmp_path: Path, args: list[str], says: str
) -> None:
    file = paths_file(tmp_path, batch(2))
    done = lume("runs", "create", CUSTOMERS, "--from-file", file, *args, emu=emu)
    assert done.status == 2
    assert says in done.error_line()
    assert emu.stats()["runs_created"] == 0


def test_an_empty_file_is_a_usage_error(emu: Emulator, tmp_path: Path) -> None:
    done = lume(
        "runs", "create", CUSTOMERS, "--from-file", paths_file(tmp_path, ["# none"]), emu=emu
    )
    assert done.status == 2
    assert "no source paths" in done.error_line()


def test_a_namespace_without_a_file_is_a_usage_error(emu: Emulator) -> None:
    args = ("runs", "create", CUSTOMERS, "s3://b/1", "--idempotency-namespace", "x")
    assert lume(*args, emu=emu).status == 2


def test_the_json_of_each_item_is_plain_json(emu: Emulator, tmp_path: Path) -> None:
    items = fan_out(emu, paths_file(tmp_path, batch(1)))
    assert json.loads(json.dumps(items)) == items


def test_a_missing_file_is_a_usage_error(emu: Emulator, tmp_path: Path) -> None:
    done = lume("runs", "create", CUSTOMERS, "--from-file", str(tmp_path / "nope.txt"), emu=emu)
    assert done.status == 2
    assert "--from-file" in done.error_line()


def test_ctrl_c_names_the_runs_that_go_on_and_the_same_command_finds_them(
    emu: Emulator, tmp_path: Path
) -> None:
    file = paths_file(tmp_path, batch(5, "duration=100000"))
    args = ("runs", "create", CUSTOMERS, "--from-file", file, "--wait", *FAST)
    with lume_process(*args, emu=emu) as process:
        for _ in range(600):
            if "POST /v1/runs/batch-get" in emu.stats()["requests"]:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert "5 runs go on at the service" in last
    assert last.count(" run_") == 5
    assert "the same command again finds them" in last
    again = fan_out(emu, file)
    assert all("run" in item for item in again)
    assert emu.stats()["runs_created"] == 5
