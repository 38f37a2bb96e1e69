"""``lume runs create --from-file`` at its edges: the input file's encoding, and Ctrl-C while
batched creates are still being sent."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, lume, lume_process


def test_a_byte_order_mark_is_not_part_of_the_first_line(emu: Emulator, tmp_path: Path) -> None:
    """Editors on Windows start UTF-8 files with a BOM: the first line is a comment still."""
    file = tmp_path / "paths.txt"
    file.write_bytes("# nightly\ns3://b/1\n".encode("utf-8-sig"))
    done = lume("--json", "runs", "create", CUSTOMERS, "--from-file", str(file), emu=emu)
    items = done.json()
    assert [item["source_path"] for item in items] == ["s3://b/1"]
    assert emu.stats()["runs_created"] == 1

    first = tmp_path / "first.txt"
    first.write_bytes("s3://b/2\n".encode("utf-8-sig"))
    done = lume("--json", "runs", "create", CUSTOMERS, "--from-file", str(first), emu=emu)
    assert [item["run"]["source_path"] for item in done.json()] == ["s3://b/2"]


def test_a_file_that_is_not_utf8_names_the_option(emu: Emulator, tmp_path: Path) -> None:
    file = tmp_path / "paths.txt"
    file.write_bytes(b"s3://b/\xff1\n")
    done = lume("runs", "create", CUSTOMERS, "--from-file", str(file), emu=emu)
    assert done.status == 2
    assert "--from-file is not UTF-8 text" in done.error_line()
    assert emu.stats()["runs_created"] == 0


def test_ctrl_c_while_creating_names_the_runs_already_created(tmp_path: Path) -> None:
    """Batches answered before Ctrl-C made runs that go on: the message names them and says
    how to cancel them, as it does for runs being waited on."""
    paths = [f"synthetic://b_{i:03d}?duration=100000" for i in range(500)]
    file = tmp_path / "paths.txt"
    file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    # One batch of 100 at a time (--concurrency 1), each answered half a second late.
    late = FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=0.5)
    with Emulator(time_scale=100, faults=late) as emu:
        args = ("--json", "runs", "create", CUSTOMERS, "--from-file", str(file))
        with lume_process(*args, "--concurrency", "1", emu=emu) as process:
            # The second batch is sent once the first answer is read; its answer is held.
            for _ in range(1000):
                if emu.stats()["runs_created"] >= 200:
                    break
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        created = emu.stats()["runs_created"]
    assert process.returncode == 130, stderr
    error = json.loads(stderr.strip().splitlines()[-1])["error"]
    assert error["type"] == "interrupted"
    named = error["running"]
    assert 100 <= len(named) <= created < 500
    assert len(set(named)) == len(named)
    assert error["cancel_command"] == "lume runs cancel " + " ".join(named)
    assert "the same command again finds them" in error["message"]
