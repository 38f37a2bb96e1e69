"""``lume runs create|get|list|update|cancel``: what each prints, as a table and as JSON."""

from __future__ import annotations

import json

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, ROWS, create, finished, lume, ok, ok_json

FAST = ("--poll-interval", "0.05")


def test_help_lists_every_command() -> None:
    top = lume("--help").stdout
    for command in ("demo", "emulator", "runs", "flows", "webhooks"):
        assert command in top
    runs_help = lume("runs", "--help").stdout
    for command in ("create", "get", "list", "update", "wait", "cancel", "logs", "results"):
        assert command in runs_help


def test_help_shows_the_defaults() -> None:
    wait_help = " ".join(lume("runs", "wait", "--help").stdout.split())
    assert "default: 3600.0" in wait_help
    assert "default: 5.0" in wait_help
    assert "default: 60.0" in " ".join(lume("--help").stdout.split())
    assert "default: 32" in " ".join(lume("runs", "create", "--help").stdout.split())


# -- create -------------------------------------------------------------------------------------


def test_create_prints_the_new_run(emu: Emulator) -> None:
    out = ok("runs", "create", CUSTOMERS, "synthetic://a", "--label", "nightly", emu=emu)
    assert "run_" in out
    assert CUSTOMERS in out
    assert "nightly" in out


def test_create_json_gives_the_run_as_the_api_describes_it(emu: Emulator) -> None:
    run = ok_json("runs", "create", CUSTOMERS, "synthetic://a", "--tag", "x", "--tag", "y", emu=emu)
    assert run["id"].startswith("run_")
    assert run["flow_version"] == CUSTOMERS
    assert run["tags"] == ["x", "y"]


def test_create_with_data_from_stdin_and_wait_maps_and_rejects_rows(emu: Emulator) -> None:
    args = ("runs", "create", CUSTOMERS, "--data", "-", "--wait", "--poll-interval", "0.05")
    run = ok_json(*args, emu=emu, stdin=json.dumps(ROWS))
    assert run["status"] == "PARTIAL_FAILED"
    assert run["metadata"]["results"]["mapped_rows"] == 2
    assert run["metadata"]["results"]["rejected_rows"] == 1


def test_create_and_wait_shows_the_finished_run(emu: Emulator) -> None:
    args = (
        "runs",
        "create",
        CUSTOMERS,
        "synthetic://w?rows=10",
        "--wait",
        "--poll-interval",
        "0.05",
    )
    out = ok(*args, emu=emu)
    assert "SUCCEEDED" in out
    assert "10 / 10 / 0" in out


# -- get / list ---------------------------------------------------------------------------------


def test_get_shows_the_run(emu: Emulator) -> None:
    run_id = finished(emu)
    out = ok("runs", "get", run_id, emu=emu)
    assert run_id in out
    assert "PARTIAL_FAILED" in out
    assert "250 / 225 / 25" in out


def test_get_json(emu: Emulator) -> None:
    run_id = finished(emu)
    run = ok_json("runs", "get", run_id, emu=emu)
    assert run["id"] == run_id
    assert run["status"] == "PARTIAL_FAILED"


def test_json_flag_may_follow_the_subcommand(emu: Emulator) -> None:
    run_id = create(emu)
    out = ok("runs", "get", run_id, "--json", emu=emu)
    assert json.loads(out)["id"] == run_id


def test_list_shows_runs_newest_first(emu: Emulator) -> None:
    first, second = create(emu, "synthetic://1"), create(emu, "synthetic://2")
    out = ok("runs", "list", emu=emu)
    assert out.index(second) < out.index(first)


def test_list_json_filters_and_limits(emu: Emulator) -> None:
    for n in range(3):
        ok("runs", "create", CUSTOMERS, f"synthetic://{n}", "--label", "keep", emu=emu)
    create(emu, "synthetic://other")
    runs = ok_json("runs", "list", "--label", "keep", "--limit", "2", emu=emu)
    assert len(runs) == 2
    assert {run["label"] for run in runs} == {"keep"}


def test_list_by_status(emu: Emulator) -> None:
    done = finished(emu, "synthetic://done?rows=5")
    create(emu, "synthetic://slow?duration=100000")
    runs = ok_json("runs", "list", "--status", "succeeded", emu=emu)
    assert [run["id"] for run in runs] == [done]


# -- update -------------------------------------------------------------------------------------


def test_update_changes_the_label_and_keeps_the_tags(emu: Emulator) -> None:
    run_id = ok_json("runs", "create", CUSTOMERS, "synthetic://u", "--tag", "a", emu=emu)["id"]
    run = ok_json("runs", "update", run_id, "--label", "relabelled", emu=emu)
    assert (run["label"], run["tags"]) == ("relabelled", ["a"])
    assert ok_json("runs", "get", run_id, emu=emu)["label"] == "relabelled"


def test_update_replaces_the_tags(emu: Emulator) -> None:
    run_id = ok_json("runs", "create", CUSTOMERS, "synthetic://u", "--tag", "a", emu=emu)["id"]
    run = ok_json("runs", "update", run_id, "--tag", "b", "--tag", "c", emu=emu)
    assert run["tags"] == ["b", "c"]


def test_update_clear_tags_removes_them_all(emu: Emulator) -> None:
    run_id = ok_json("runs", "create", CUSTOMERS, "synthetic://u", "--tag", "a", emu=emu)["id"]
    assert ok_json("runs", "update", run_id, "--clear", "tags", emu=emu)["tags"] == []


def test_update_clearing_the_tags_it_also_sets_is_a_usage_error(emu: Emulator) -> None:
    run_id = ok_json("runs", "create", CUSTOMERS, "synthetic://u", "--tag", "a", emu=emu)["id"]
    done = lume("runs", "update", run_id, "--tag", "b", "--clear", "tags", emu=emu)
    assert done.status == 2
    assert "--clear tags contradicts" in done.error_line()


def test_update_shows_the_changed_run(emu: Emulator) -> None:
    run_id = create(emu)
    out = ok("runs", "update", run_id, "--label", "nightly", emu=emu)
    assert "nightly" in out
    assert run_id in out


def test_update_with_nothing_to_change_is_a_usage_error(emu: Emulator) -> None:
    done = lume("runs", "update", create(emu), emu=emu)
    assert done.status == 2
    assert "--label" in done.error_line()


# -- cancel -------------------------------------------------------------------------------------


def test_cancel_shows_the_canceled_run(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://slow?duration=100000")
    out = ok("runs", "cancel", run_id, emu=emu)
    assert run_id in out
    assert "CANCELED" in out


def test_cancel_json(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://slow?duration=100000")
    runs = ok_json("runs", "cancel", run_id, emu=emu)
    assert [(run["id"], run["status"]) for run in runs] == [(run_id, "CANCELED")]


def test_cancel_with_one_malformed_id_cancels_none(emu: Emulator) -> None:
    run_id = create(emu, "synthetic://slow?duration=100000")
    done = lume("runs", "cancel", run_id, "not a run", emu=emu)
    assert done.status == 2
    assert "RUN_IDS" in done.error_line() or "RUN_ID" in done.error_line()
    assert ok_json("runs", "get", run_id, emu=emu)["status"] != "CANCELED"
