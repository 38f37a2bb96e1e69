"""Exactly-once creates and the ``lume`` command's exits and output, at their edges.

Exactly once: the same request sent again (in one batch, from two tasks at once, from two
processes sharing an ``idempotency_namespace``, after answers lost once the service committed)
makes one run; requests that differ make their own; keys at their bounds round-trip.

The command: a run canceled while it is waited on, Ctrl-C while ``create --wait`` waits, a
closed stdout, bytes that are not UTF-8, ``--json`` output that is one JSON document, and
server text (principals and groups included) that never reaches the terminal as markup or
control codes.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from click.testing import CliRunner

from lume_async import AsyncLume, RunRequest
from lume_async._cli import main
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from ..cli.conftest import environment, lume, lume_process

FLOW = "customer_cleaner:v1"
NS = "hostile-once-2026-11-29"
RAW_CONTROL = ("\x1b", "\x07", "\x9b")


def rows(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "email": f"{name}@example.com", "age": 30}]


# --- exactly once, in process, in virtual time ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_one_request_object_three_times_in_one_batch_makes_one_run(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    request = RunRequest(FLOW, source_data=rows("dup-batch"), label="dup")
    outcomes = await vlume.runs.create_many([request, request, request], concurrency=3)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert len({o.unwrap().id for o in outcomes}) == 1
    assert {o.idempotency_key for o in outcomes} == {request.idempotency_key}
    assert not any(o.unwrap().reused for o in outcomes)  # each is this request's own run
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_equal_requests_built_apart_in_one_namespaced_batch_make_one_run(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    # Distinct objects, equal content, metadata keys in another order at every depth.
    one = RunRequest(FLOW, source_data=rows("ns-dup"), run_metadata={"a": 1, "b": {"x": 1, "y": 2}})
    two = RunRequest(FLOW, source_data=rows("ns-dup"), run_metadata={"b": {"y": 2, "x": 1}, "a": 1})
    outcomes = await vlume.runs.create_many([one, two], idempotency_namespace=NS)
    assert outcomes[0].idempotency_key == outcomes[1].idempotency_key
    assert outcomes[0].unwrap().id == outcomes[1].unwrap().id
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_requests_differing_only_in_label_or_tag_order_make_their_own_runs(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    base: dict[str, Any] = {"flow_version": FLOW, "source_data": rows("differ")}
    requests = [
        RunRequest(**base, label="a", tags=["x", "y"]),
        RunRequest(**base, label="b", tags=["x", "y"]),
        RunRequest(**base, label="a", tags=["y", "x"]),  # tags are an ordered list on the wire
    ]
    outcomes = await vlume.runs.create_many(requests, idempotency_namespace=NS)
    assert len({o.idempotency_key for o in outcomes}) == 3
    assert len({o.unwrap().id for o in outcomes}) == 3
    assert vemu.stats()["runs_created"] == 3


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_two_tasks_sending_one_request_at_once_get_one_run(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    async def send() -> Any:
        return await vlume.runs.create(
            FLOW, source_data=rows("tasks"), label="t", idempotency_namespace=NS
        )

    first, second = await asyncio.gather(send(), send())
    assert first.id == second.id
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_one_path_from_two_keys_at_once_is_one_run_the_second_marked_reused(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    path = "synthetic://shared?duration=1000"
    first, second = await asyncio.gather(
        vlume.runs.create(FLOW, path, label="one"), vlume.runs.create(FLOW, path, label="two")
    )
    assert first.id == second.id
    assert sorted([first.reused, second.reused]) == [False, True]
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["reset", "truncate", "500", "503", "429"])
async def test_a_create_whose_every_answer_is_lost_after_commit_is_one_run_when_sent_again(
    vemu: Emulator, vlume: AsyncLume, kind: str
) -> None:
    request = RunRequest(FLOW, source_data=rows(f"lost-{kind}"), label="lost")
    vemu.set_faults(FaultProfile(rate=1.0, kinds=(kind,), phase="after", seed=3))
    [failed] = await vlume.runs.create_many([request])
    assert not failed.ok  # every attempt's answer was lost, after the work was done
    assert failed.idempotency_key == request.idempotency_key
    vemu.set_faults(None)
    [again] = await vlume.runs.create_many([request])
    assert again.ok, again.error
    assert vemu.stats()["runs_created"] == 1
    listed = [run async for run in vlume.runs.list(label="lost")]
    assert [run.id for run in listed] == [again.unwrap().id]


EVERY_PRINTABLE = string.punctuation + string.ascii_letters + string.digits  # no space


@pytest.mark.anyio
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "key",
    ["k", "K" * 255, EVERY_PRINTABLE, '"quoted";, \\back'.replace(" ", "")],
    ids=["one", "255", "every-printable", "header-specials"],
)
async def test_keys_at_the_bounds_round_trip_and_replay(
    vemu: Emulator, vlume: AsyncLume, key: str
) -> None:
    first = await vlume.runs.create(FLOW, source_data=rows("bound"), idempotency_key=key)
    again = await vlume.runs.create(FLOW, source_data=rows("bound"), idempotency_key=key)
    assert again.id == first.id
    stats = vemu.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (1, 1)


@pytest.mark.anyio
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "key", ["K" * 256, "has space", "tab\t", "\x7f", "caf\u00e9", "new\nline", ""]
)
async def test_a_key_past_the_bounds_is_refused_before_any_request(
    vemu: Emulator, vlume: AsyncLume, key: str
) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        await vlume.runs.create(FLOW, source_data=rows("bad"), idempotency_key=key)
    [outcome] = await vlume.runs.create_many(
        [{"flow_version": FLOW, "source_data": rows("bad"), "idempotency_key": key}]
    )
    assert isinstance(outcome.error, ValueError) and outcome.idempotency_key is None
    assert "POST /v1/runs" not in vemu.stats()["requests"]


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_the_longest_namespace_round_trips_and_replays(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    space = "n" * 190
    first = await vlume.runs.create(FLOW, source_data=rows("ns"), idempotency_namespace=space)
    again = await vlume.runs.create(FLOW, source_data=rows("ns"), idempotency_namespace=space)
    assert again.id == first.id and vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_one_request_object_sends_the_same_rows_with_or_without_a_namespace(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    row = {"name": "mutated", "email": "m@example.com", "age": 30}
    request = RunRequest(FLOW, source_data=[row])
    row["age"] = 31  # the caller's own bookkeeping, after the request was built
    [plain] = await vlume.runs.create_many([request])
    [keyed] = await vlume.runs.create_many([request], idempotency_namespace=NS)
    sent = [await vlume.runs.input(o.unwrap().id).collect() for o in (plain, keyed)]
    assert sent[0] == sent[1], sent


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_run_metadata_is_what_it_was_when_the_request_was_built(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    metadata: dict[str, Any] = {}
    requests = []
    for batch in range(3):
        metadata["batch"] = batch
        requests.append(RunRequest(FLOW, source_path=f"s3://b/meta-{batch}", run_metadata=metadata))
    outcomes = await vlume.runs.create_many(requests)
    assert [o.unwrap().run_metadata for o in outcomes] == [{"batch": b} for b in range(3)]


class _ReadOnlyMapping(Mapping[str, Any]):
    """A mapping of the caller's own making: not a dict, and not copyable as itself."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __deepcopy__(self, memo: object) -> None:
        raise TypeError("not copyable")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "make",
    [MappingProxyType, collections.ChainMap, collections.OrderedDict, _ReadOnlyMapping],
    ids=["mappingproxy", "chainmap", "ordereddict", "custom-mapping"],
)
def test_run_metadata_from_any_mapping_is_a_dict_snapshot_keyed_as_the_equal_dict(
    make: Callable[[dict[str, Any]], Mapping[str, Any]],
) -> None:
    source = {"job": "nightly", "nested": {"n": 1}}
    given = make(source)
    request = RunRequest(FLOW, source_path="s3://b/mapping", run_metadata=given)
    plain = RunRequest(FLOW, source_path="s3://b/mapping", run_metadata=source)
    assert type(request.run_metadata) is dict
    assert request.run_metadata == source
    source["nested"]["n"] = 2  # the caller's own dict, changed after the request was built
    assert request.run_metadata == {"job": "nightly", "nested": {"n": 1}}
    assert request.with_namespace("ns").idempotency_key == (
        plain.with_namespace("ns").idempotency_key
    )


# --- exactly once across processes ----------------------------------------------------------------

_PROCESS_CREATE = """
import asyncio, sys
from lume_async import AsyncLume
async def main():
    async with AsyncLume(api_key=sys.argv[2], base_url=sys.argv[1]) as lume:
        run = await lume.runs.create(
            "customer_cleaner:v1",
            source_data=[{"name": "proc", "email": "p@example.com", "age": 1}],
            run_metadata={"job": "nightly", "n": 1},
            idempotency_namespace=sys.argv[3],
        )
        print(run.id)
asyncio.run(main())
"""


@pytest.fixture
def temu() -> Iterator[Emulator]:
    """An emulator on its own thread, for processes and the command."""
    with Emulator(time_scale=100) as emulator:
        yield emulator


@pytest.mark.timeout(60)
def test_two_processes_at_once_with_one_namespace_make_one_run(temu: Emulator) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_CREATE, temu.url, temu.api_key, NS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ids = []
    for proc in procs:
        out, errors = proc.communicate(timeout=45)
        assert proc.returncode == 0, errors
        ids.append(out.strip())
    assert ids[0] == ids[1] and ids[0].startswith("run_")
    assert temu.stats()["runs_created"] == 1


# --- the command: exits ---------------------------------------------------------------------------


def _batch_gets(emu: Emulator) -> int:
    return sum(emu.stats()["requests"].get("POST /v1/runs/batch-get", {}).values())


def _until(condition: Any, what: str) -> None:
    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(what)


@pytest.mark.timeout(60)
def test_a_run_canceled_while_waited_on_exits_3(temu: Emulator) -> None:
    run_id = lume("--json", "runs", "create", FLOW, "synthetic://c?duration=100000", emu=temu)
    run_id = run_id.json()["id"]
    with lume_process("runs", "wait", run_id, "--poll-interval", "0.05", emu=temu) as process:
        _until(lambda: _batch_gets(temu) >= 2, "the command never started waiting")
        assert lume("runs", "cancel", run_id, emu=temu).status == 0
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stderr
    assert f"{run_id} CANCELED" in stderr.splitlines()[-1]
    assert "Traceback" not in stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("json_", [False, True])
def test_ctrl_c_while_create_waits_exits_130_naming_the_new_run(
    temu: Emulator, json_: bool
) -> None:
    flags = ["--json"] if json_ else []
    args = ("runs", "create", FLOW, "synthetic://int?duration=100000", "--wait")
    with lume_process(*flags, *args, "--poll-interval", "0.05", emu=temu) as process:
        _until(lambda: _batch_gets(temu) >= 1, "the command never started waiting")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    [run] = lume("--json", "runs", "list", emu=temu).json()
    assert f"lume runs cancel {run['id']}" in stderr
    if json_:
        assert json.loads(stderr.strip().splitlines()[-1])["error"]["running"] == [run["id"]]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("json_", [False, True])
def test_create_wait_that_times_out_still_names_the_run_it_started(json_: bool) -> None:
    flags = ["--json"] if json_ else []
    with Emulator(clock=VirtualClock(autojump=False)) as still:  # its runs never move
        _timed_out_create(still, flags)


def _timed_out_create(temu: Emulator, flags: list[str]) -> None:
    done = lume(
        *flags,
        "runs",
        "create",
        FLOW,
        "--data",
        "-",
        "--wait",
        "--timeout",
        "0.3",
        "--poll-interval",
        "0.05",
        emu=temu,
        stdin=json.dumps(rows("timeout")),
    )
    assert done.status == 1
    [run] = lume("--json", "runs", "list", emu=temu).json()  # it goes on at the service
    # Without its id a script can neither cancel it nor wait again; running the command again
    # starts a second run of the same rows.
    assert run["id"] in done.stdout + done.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args",
    [
        ("--json", "runs", "list"),
        ("runs", "list"),
        ("flows", "list"),
        ("runs", "results", "RUN", "--output", "-", "--format", "jsonl"),
        ("runs", "logs", "RUN", "--follow", "--poll-interval", "0.05"),
    ],
    ids=["json-list", "table-list", "flows", "export-stdout", "follow"],
)
def test_a_closed_stdout_ends_the_command_without_a_traceback(
    temu: Emulator, args: tuple[str, ...]
) -> None:
    run = lume(
        "--json",
        "runs",
        "create",
        FLOW,
        "synthetic://p?rows=300&duration=1",
        "--wait",
        "--poll-interval",
        "0.05",
        emu=temu,
    ).json()
    args = tuple(run["id"] if a == "RUN" else a for a in args)
    read, write = os.pipe()
    os.close(read)  # what `lume ... | head -0` leaves: a pipe nobody reads
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUME_")}
    env.update(LUME_BASE_URL=temu.url, LUME_API_KEY=temu.api_key)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lume_async", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=45,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stderr  # no status of its own is documented


# --- the command: bytes and text ------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_paths_file_that_is_not_utf8_is_one_usage_line_and_creates_nothing(
    temu: Emulator, tmp_path: Path
) -> None:
    paths = tmp_path / "paths.txt"
    paths.write_bytes(b"s3://b/ok\ns3://b/\xff\xfe\n")
    done = lume("runs", "create", FLOW, "--from-file", str(paths), emu=temu)
    assert done.status == 2
    done.error_line()
    assert temu.stats()["runs_created"] == 0


@pytest.mark.timeout(30)
def test_rows_that_are_not_utf8_are_one_usage_line_and_create_nothing(temu: Emulator) -> None:
    not_utf8: Any = b'[{"name": "\xff\xfe"}]'
    result = lume("runs", "create", FLOW, "--data", "-", emu=temu, stdin=not_utf8)
    assert result.status == 2
    result.error_line()
    assert temu.stats()["runs_created"] == 0


@pytest.mark.timeout(30)
def test_a_label_with_terminal_escapes_is_shown_spelled_out(temu: Emulator) -> None:
    label = "\x1b]0;pwned\x07\x1b[31mred"
    done = lume("runs", "create", FLOW, "s3://b/esc", "--label", label, emu=temu)
    assert done.status == 0, done.stderr
    assert not any(c in done.stdout for c in RAW_CONTROL), repr(done.stdout)
    assert "\\x1b]0;pwned\\x07" in done.stdout


@pytest.mark.timeout(60)
def test_json_fan_out_with_duplicate_and_failed_paths_is_one_json_document(
    temu: Emulator, tmp_path: Path
) -> None:
    paths = tmp_path / "paths.txt"
    paths.write_text(
        "synthetic://dup?rows=3&duration=1\n  synthetic://dup?rows=3&duration=1  \n"
        "synthetic://bad?outcome=FAILED&duration=1\n"
    )
    args = ("runs", "create", FLOW, "--from-file", str(paths), "--wait", "--poll-interval", "0.05")
    done = lume("--json", *args, emu=temu)
    assert done.status == 3
    items = json.loads(done.stdout)  # stdout holds the one document and nothing else
    assert [i["run"]["status"] for i in items] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert items[0]["run"]["id"] == items[1]["run"]["id"]
    assert items[0]["idempotency_key"] == items[1]["idempotency_key"]
    assert done.json_error()["type"] == "run_failed"  # stderr: one JSON line
    assert temu.stats()["runs_created"] == 2


HOSTILE_GROUPS = ["[/x]", "\x1b]0;pwned\x07", "[link=https://evil.example]click[/link]"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("group", HOSTILE_GROUPS, ids=["closing-tag", "osc-title", "link"])
def test_a_run_shared_with_a_hostile_group_name_is_created_once_and_shown_literally(
    temu: Emulator, group: str
) -> None:
    done = lume(
        "runs",
        "create",
        FLOW,
        "--data",
        "-",
        "--monitor-group",
        group,
        emu=temu,
        stdin=json.dumps(rows("shared")),
    )
    assert temu.stats()["runs_created"] == 1
    # The run was made: the command must say so (exit 0), not report an error a script retries.
    assert done.status == 0, done.stderr
    assert not any(c in done.stdout for c in RAW_CONTROL), repr(done.stdout)
    shown = group.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert f"group {shown}" in done.stdout, done.stdout


@pytest.mark.timeout(30)
def test_a_terminal_that_cannot_encode_the_label_is_not_told_nothing_was_sent(
    temu: Emulator,
) -> None:
    runner = CliRunner(charset="ascii")  # LANG=C without UTF-8 mode, PYTHONIOENCODING=ascii
    result = runner.invoke(
        main,
        ["runs", "create", FLOW, "--data", "-", "--label", "caf\u00e9"],
        input=json.dumps(rows("ascii")),
        env=environment(temu, None),
        catch_exceptions=False,
    )
    assert temu.stats()["runs_created"] == 1
    # Exit 2 promises "nothing was sent": a script fixes its arguments, or runs it again.
    assert result.exit_code != 2, result.stderr
    assert result.exit_code == 0, result.stderr
    [run] = lume("--json", "runs", "list", emu=temu).json()
    assert run["id"] in result.stdout
