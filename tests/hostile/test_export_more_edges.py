"""Exports of a listing where the file system is unusual: a full disk, a symbolic link, a named
pipe; and the CSV cells of values that are not text.

Rows come from a listing built in the test; the file system is real (links, pipes), except for a
full disk, which is a file whose every write fails with ``ENOSPC``.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import lume_async._cli._export as cli_export
from lume_async import AsyncPaginator, Page
from lume_async._cli._export import RowSink

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def listing(*pages: list[dict[str, Any]]) -> AsyncPaginator[dict[str, Any]]:
    async def stream() -> AsyncIterator[Page[dict[str, Any]]]:
        for number, items in enumerate(pages, 1):
            yield Page(items=tuple(items), page=number, size=max(1, len(items)))

    return AsyncPaginator(stream=stream, page_size=100)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


class FullDisk(io.FileIO):
    """A file on a disk with no space left: every write fails."""

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# -- a full disk -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_an_export_to_a_full_disk_fails_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    real_fdopen = os.fdopen

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "wb":  # small rows stay buffered until the file is flushed at the end
            return io.BufferedWriter(FullDisk(fd, "wb"))
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    target = tmp_path / f"full.{kind}"
    target.write_text("previous\n")
    export = getattr(listing([{"a": 1}], [{"a": 2}]), f"to_{kind}")
    with pytest.raises(OSError, match="No space left"):
        await export(target)
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_cli_export_to_a_full_disk_fails_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        assert isinstance(file, int)  # the temporary file's descriptor
        return io.TextIOWrapper(io.BufferedWriter(FullDisk(file, "wb")), encoding="utf-8")

    monkeypatch.setattr(cli_export, "open", full_open, raising=False)
    target = tmp_path / f"full.{kind}"
    target.write_text("previous\n")
    with pytest.raises(OSError, match="No space left"), RowSink(str(target), kind) as sink:
        sink.write({"a": 1})
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


# -- links and pipes -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_an_export_through_a_symbolic_link_replaces_the_file_it_names(
    tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    real = elsewhere / f"rows.{kind}"
    real.write_text("previous\n")
    link = tmp_path / f"latest.{kind}"
    link.symlink_to(real)
    assert await getattr(listing([{"a": 1}]), f"to_{kind}")(link) == 1
    assert link.is_symlink()
    assert real.read_text() == ('{"a":1}\n' if kind == "jsonl" else "a\n1\n")
    assert leftovers(tmp_path) == leftovers(elsewhere) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
async def test_an_export_to_a_named_pipe_is_written_into_the_pipe(
    tmp_path: Path, kind: str
) -> None:
    pipe = tmp_path / f"pipe.{kind}"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # a reader waits at the other end
    try:
        assert await getattr(listing([{"a": 1}], [{"a": 2}]), f"to_{kind}")(pipe) == 2
        assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
        try:
            received = os.read(reader, 65536)
        except BlockingIOError:
            received = b""
    finally:
        os.close(reader)
    assert received == (b'{"a":1}\n{"a":2}\n' if kind == "jsonl" else b"a\n1\n2\n")
    assert leftovers(tmp_path) == []


# -- values that are not text ----------------------------------------------------------------------


async def test_booleans_in_csv_cells_are_written_as_json_as_the_lume_command_writes_them(
    tmp_path: Path,
) -> None:
    rows = [{"ok": True, "n": 1, "share": 0.5}, {"ok": False, "n": None, "share": 2}]
    library = tmp_path / "library.csv"
    assert await listing(rows).to_csv(library) == 2
    command = tmp_path / "command.csv"
    with RowSink(str(command), "csv") as sink:
        for row in rows:
            sink.write(row)
    with library.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert written == [
        {"ok": "true", "n": "1", "share": "0.5"},
        {"ok": "false", "n": "", "share": "2"},
    ]
    assert library.read_text() == command.read_text()
