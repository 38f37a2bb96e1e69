"""``lume runs create`` / ``update`` / ``get`` and who a run is shared with, run as a user would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lume_async.testing import Emulator

from .cli.conftest import Done
from .cli.conftest import lume as invoke

pytestmark = pytest.mark.lume_emulator(time_scale=100)

CUSTOMERS = "customer_cleaner:v1"
ANA, BO, CY = "ana@example.com", "bo@example.com", "cy@example.com"


def lume(*args: str, emu: Emulator, key: str | None = None) -> Done:
    """``lume ARGS`` in this process (as tests/cli runs it), as ``key`` or the emulator's key."""
    return invoke(*args, emu=emu, env=None if key is None else {"LUME_API_KEY": key})


def ok_json(*args: str, emu: Emulator, key: str | None = None) -> Any:
    done = lume("--json", *args, emu=emu, key=key)
    assert done.status == 0, done.stderr
    return json.loads(done.stdout)


def one_error_line(done: Done, *, status: int = 1) -> str:
    assert done.status == status
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def shared_run(emu: Emulator) -> str:
    run = ok_json(
        "runs",
        "create",
        CUSTOMERS,
        "synthetic://shared",
        "--monitor",
        ANA,
        "--monitor",
        BO,
        "--monitor-group",
        "analysts",
        "--manager",
        CY,
        "--manager-group",
        "ops",
        emu=emu,
    )
    return str(run["id"])


def test_create_shares_the_run_with_every_list_given(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    run = ok_json("runs", "get", run_id, emu=lume_emulator)
    assert run["monitoring_by"] == [ANA, BO]
    assert run["monitoring_groups"] == ["analysts"]
    assert run["managing_by"] == [CY]
    assert run["managing_groups"] == ["ops"]


def test_create_with_an_owner_hands_the_run_to_that_principal(lume_emulator: Emulator) -> None:
    run = ok_json("runs", "create", CUSTOMERS, "synthetic://o", "--owner", ANA, emu=lume_emulator)
    assert run["run_owner"] == ANA
    assert run["created_by"] != ANA


def test_get_shows_the_owner_monitors_and_managers(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    done = lume("runs", "get", run_id, emu=lume_emulator)
    assert done.status == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "admin@" in lines["owner"]
    assert all(name in lines["monitors"] for name in (ANA, BO, "group analysts"))
    assert all(name in lines["managers"] for name in (CY, "group ops"))


def test_get_shows_a_dash_for_a_run_shared_with_nobody(lume_emulator: Emulator) -> None:
    run_id = ok_json("runs", "create", CUSTOMERS, "synthetic://p", emu=lume_emulator)["id"]
    done = lume("runs", "get", run_id, emu=lume_emulator)
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert lines["monitors"][1:] == ["-"]
    assert lines["managers"][1:] == ["-"]


def test_update_replaces_the_lists_given_and_keeps_the_others(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    run = ok_json("runs", "update", run_id, "--monitor", CY, "--label", "q3", emu=lume_emulator)
    assert run["monitoring_by"] == [CY]
    assert run["monitoring_groups"] == ["analysts"]  # not given: kept
    assert run["managing_by"] == [CY]
    assert run["label"] == "q3"


def test_update_clear_empties_a_list(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    args = ("runs", "update", run_id, "--clear", "monitor-groups", "--clear", "managers")
    run = ok_json(*args, emu=lume_emulator)
    assert (run["monitoring_groups"], run["managing_by"]) == ([], [])
    assert run["monitoring_by"] == [ANA, BO]


def test_update_changes_the_owner(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    run = ok_json("runs", "update", run_id, "--owner", BO, emu=lume_emulator)
    assert run["run_owner"] == BO


def test_update_with_nothing_to_change_is_one_error_line(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    done = lume("runs", "update", run_id, emu=lume_emulator)
    assert "nothing to change" in one_error_line(done, status=2)  # usage


def test_update_clearing_a_list_it_also_sets_is_one_error_line(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    done = lume(
        "runs", "update", run_id, "--monitor", ANA, "--clear", "monitors", emu=lume_emulator
    )
    assert "--clear monitors" in one_error_line(done, status=2)  # usage


def test_a_monitors_update_or_cancel_is_one_error_line_saying_403(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    ana = lume_emulator.add_principal(ANA)
    done = lume("runs", "update", run_id, "--label", "mine", emu=lume_emulator, key=ana)
    assert "403 permission_denied" in one_error_line(done)
    done = lume("runs", "cancel", run_id, emu=lume_emulator, key=ana)
    assert "403 permission_denied" in done.stderr
    assert done.status == 1


def test_a_run_hidden_from_a_key_is_not_found_for_it(lume_emulator: Emulator) -> None:
    run_id = shared_run(lume_emulator)
    stranger = lume_emulator.add_principal("dee@example.com")
    assert "404" in one_error_line(lume("runs", "get", run_id, emu=lume_emulator, key=stranger))


def test_a_blank_monitor_is_one_error_line_naming_the_list(lume_emulator: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, "synthetic://b", "--monitor", " ", emu=lume_emulator)
    assert "--monitor #1 must be" in one_error_line(done, status=2)  # usage, in the CLI's words
