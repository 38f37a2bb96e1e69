"""Exports of a listing: JSON Lines and CSV files written page by page, DataFrames and Tables.

Files are written to a temporary file beside the target and renamed over it once complete, so a
reader never sees half a file and a failed export leaves the target as it was. Each page is
encoded on the event loop and written by a worker thread, so the loop never blocks on the disk.
Items become rows as they go on the wire: a dict as it is, a model (a rejected row, a log entry,
a run) as its JSON object.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import inspect
import io
import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeAlias

import anyio
import attrs
import orjson

from . import _converter
from ._validation import check_callback, check_columns, check_export_path
from .models import Page

__all__ = [
    "RowsWritten",
    "abandon",
    "as_row",
    "dataframe_builder",
    "dumps_exact",
    "not_a_plain_file",
    "replace_keeping_mode",
    "temp_beside",
    "table_builder",
    "write_csv",
    "write_jsonl",
]

RowsWritten: TypeAlias = Callable[[int], None]
"""``on_progress(rows_written)``: called after each page an export wrote."""

Encoder = Callable[[list[dict[str, Any]]], bytes]


def as_row(item: Any) -> dict[str, Any]:
    """An item of a listing as the JSON object the service sent for it."""
    if isinstance(item, dict):
        return item
    model = getattr(item, "data", item)  # a run handle exports the run it holds
    if attrs.has(type(model)):
        row: dict[str, Any] = _converter.unstructure(model)
        return row
    raise TypeError(f"cannot export an item of type {type(item).__name__}")


async def _write(
    pages: AsyncIterator[Page[Any]],
    target: Path,
    encode: Encoder,
    on_progress: RowsWritten | None,
    trailer: Callable[[], bytes] = bytes,
) -> int:
    """Encode each page, append it to a temporary file, and rename it to ``target`` at the end.

    ``trailer()`` is what to write after the last page (a CSV header no row has written yet).
    Through a symbolic link, the file it names is replaced; a pipe or a device is written into.
    """
    opened: list[tuple[IO[bytes], str | None, Path]] = []  # filled even if the await is cancelled
    done = False
    written = 0
    try:
        await anyio.to_thread.run_sync(_open, target, opened)
        ((file, temp, target),) = opened
        async for page in pages:
            rows = [as_row(item) for item in page.items]
            if rows:
                await anyio.to_thread.run_sync(file.write, encode(rows))
                written += len(rows)
            if on_progress is not None:
                pending: object = on_progress(written)
                if inspect.isawaitable(pending):  # lume_sync's: run on its caller's thread
                    await pending
        await anyio.to_thread.run_sync(_finish, file, trailer(), temp, target)
        done = True
    finally:
        # The file first: in a cancelled scope, an await may raise again before the rest runs.
        for file, temp, _ in opened if not done else ():
            abandon(file, temp)
        with anyio.CancelScope(shield=True):
            await pages.aclose()  # type: ignore[attr-defined]
    return written


def _open(target: Path, opened: list[tuple[IO[bytes], str | None, Path]]) -> None:
    """Add to ``opened`` the file to write, its temporary path (None for a pipe or a device: it
    is written into), and the final path (through a link, the file it names)."""
    target = Path(os.path.realpath(target))
    if not_a_plain_file(target):
        opened.append((open(target, "wb"), None, target))  # noqa: SIM115
        return
    fd, temp = temp_beside(target)
    opened.append((os.fdopen(fd, "wb"), temp, target))


def _finish(file: IO[bytes], last: bytes, temp: str | None, target: Path) -> None:
    file.write(last)
    file.flush()
    if temp is None:  # a pipe or a device: nothing to rename
        file.close()
        return
    os.fsync(file.fileno())
    file.close()
    replace_keeping_mode(temp, target)


def abandon(file: IO[Any] | None, temp: str | None) -> None:
    """Close an export that did not finish and remove its temporary file; on a full disk too,
    where closing fails to write what is buffered."""
    if file is not None:
        with contextlib.suppress(OSError):
            file.close()
    if temp is not None:
        with contextlib.suppress(FileNotFoundError):  # renamed as the call was cancelled
            os.unlink(temp)


def not_a_plain_file(path: str | Path) -> bool:
    """Whether ``path`` names something that exists and is not a regular file (after links)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def temp_beside(target: Path) -> tuple[int, str]:
    """A new private temporary file in ``target``'s folder, named after it: (fd, path)."""
    # NAME_MAX is 255: leave room for the dot, the random part and the suffix.
    return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:200]}.", suffix=".part")


def replace_keeping_mode(temp: str, target: Path) -> None:
    """Rename ``temp`` over ``target``. A temporary file is private (0600): it takes the mode of
    the file it replaces, or the usual 0644 for a new one."""
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    os.chmod(temp, mode)
    os.replace(temp, target)


async def write_jsonl(
    pages: AsyncIterator[Page[Any]],
    path: str | os.PathLike[str],
    on_progress: RowsWritten | None,
) -> int:
    """Every item of ``pages`` to ``path``, one JSON object a line; how many were written."""
    try:
        target = check_export_path(path)
        check_callback(on_progress, "on_progress")
    except BaseException:
        await pages.aclose()  # type: ignore[attr-defined]
        raise

    def encode(rows: list[dict[str, Any]]) -> bytes:
        return b"".join(dumps_exact(row) + b"\n" for row in rows)

    return await _write(pages, target, encode, on_progress)


class _CsvEncoder:
    """Rows to CSV lines under one header, fixed by ``columns`` or by the first rows seen."""

    def __init__(self, columns: list[str] | None, fields: list[str] | None = None) -> None:
        self.columns = columns
        self.fields = fields  # the items' own keys, known for models: an empty listing's header
        self.header_written = False

    def __call__(self, rows: list[dict[str, Any]]) -> bytes:
        if self.columns is None:
            self.columns = list(dict.fromkeys(key for row in rows for key in row))
        known = set(self.columns)
        out = io.StringIO()
        writer = _RowWriter(out)
        if not self.header_written:
            writer.writerow(self.columns)
            self.header_written = True
        for row in rows:
            extra = [key for key in row if key not in known]
            if extra:
                raise ValueError(
                    f"a row has the field {extra[0]!r}, which is not among the CSV columns "
                    f"{self.columns}; pass columns=[...] to choose them"
                )
            writer.writerow([_cell(row.get(name)) for name in self.columns])
        return out.getvalue().encode()

    def header_only(self) -> bytes:
        """The header, if no row wrote it and the columns are known (an empty listing)."""
        if self.columns is None:
            self.columns = self.fields
        if self.header_written or self.columns is None:
            return b""
        return self([])


class _RowWriter:
    """CSV lines ending in ``\\n``; a row with a bare ``\\r`` in a cell is quoted whole (the
    csv module quotes only the characters of its own line terminator)."""

    def __init__(self, out: io.StringIO) -> None:
        self._plain = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, cells: list[Any]) -> None:
        carriage = any(isinstance(cell, str) and "\r" in cell for cell in cells)
        (self._quoted if carriage else self._plain).writerow(cells)


def dumps_exact(value: Any, *, indent: bool = False) -> bytes:
    """Plain JSON values (a row) as JSON; an integer past 64 bits, which orjson refuses (pages of
    rows are read with them exact), is written exactly by the json module."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else None)
    except TypeError:  # orjson.JSONEncodeError: also a value nested past 255 levels
        pass
    try:
        return json.dumps(
            value,
            indent=2 if indent else None,
            separators=None if indent else (",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode()
    except RecursionError:  # nested deeper than the stack allows (pages are read to 1024)
        return _dumps_nested(value, indent).encode()


_Pending: TypeAlias = "tuple[Any, int] | str"


def _dumps_nested(value: Any, indent: bool) -> str:
    """What the json module writes in ``dumps_exact``, without nesting on the stack: a list of
    what is left to write (text as it is, values with their depth) takes its place."""
    out: list[str] = []
    pending: list[_Pending] = [(value, 0)]
    while pending:
        entry = pending.pop()
        if isinstance(entry, str):
            out.append(entry)
            continue
        node, depth = entry
        if not isinstance(node, dict | list | tuple) or not node:
            out.append(_scalar(node))
            continue
        inner, outer = ("\n" + "  " * (depth + 1), "\n" + "  " * depth) if indent else ("", "")
        opened: list[_Pending] = ["{" if isinstance(node, dict) else "["]
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for index, (key, item) in enumerate(items):
            opened.append(("," if index else "") + inner)
            if isinstance(node, dict):
                opened.append(_scalar({key: 0})[1:-3] + (": " if indent else ":"))
            opened.append((item, depth + 1))
        opened.append(outer + ("}" if isinstance(node, dict) else "]"))
        pending.extend(reversed(opened))
    return "".join(out)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _cell(value: Any) -> Any:
    """A CSV cell: text as it is, other values as JSON (``true``, ``1.5``, ``{"a": 1}``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps_exact(value).decode()


async def write_csv(
    pages: AsyncIterator[Page[Any]],
    path: str | os.PathLike[str],
    columns: Sequence[str] | None,
    on_progress: RowsWritten | None,
    fields: list[str] | None = None,
) -> int:
    """Every item of ``pages`` to ``path`` as CSV under a header; how many rows were written."""
    try:
        target = check_export_path(path)
        names = check_columns(columns)
        check_callback(on_progress, "on_progress")
    except BaseException:
        await pages.aclose()  # type: ignore[attr-defined]
        raise
    encoder = _CsvEncoder(names, fields)
    return await _write(pages, target, encoder, on_progress, encoder.header_only)


def _optional(module: str, extra: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {module}, which is not installed: pip install 'lume-sdk[{extra}]'"
        ) from exc


def dataframe_builder(fields: list[str] | None = None) -> Callable[[Iterable[Any]], Any]:
    """What turns items into a ``pandas.DataFrame``; ImportError naming the extra without pandas."""
    pandas = _optional("pandas", "pandas", "to_pandas()")

    def build(items: Iterable[Any]) -> Any:
        rows = [as_row(item) for item in items]
        frame = pandas.DataFrame(rows, columns=fields if not rows and fields else None)
        for name in frame.columns:
            if frame[name].dtype.kind not in "fO":
                continue
            # Integers with gaps read as float64, which rounds them past 2**53: nullable Int64
            # instead, or Python ints (object) past the range of int64.
            values = [row.get(name) for row in rows]
            ints = [v for v in values if v is not None]
            if len(ints) < len(values) and ints and all(type(v) is int for v in ints):
                if all(-(2**63) <= v < 2**63 for v in ints):
                    frame[name] = pandas.array(values, dtype="Int64")
                else:
                    frame[name] = pandas.Series(values, dtype=object)
        return frame

    return build


def table_builder(fields: list[str] | None = None) -> Callable[[Iterable[Any]], Any]:
    """What turns items into a ``pyarrow.Table``; ImportError naming the extra without pyarrow.

    Column types are inferred; a column whose values share no one type (the source records of
    rejected rows, say) is kept as JSON text rather than refused. With no items, the columns
    are ``fields`` (the items' keys, known for models), typed null, as in ``dataframe_builder``.
    """
    pa = _optional("pyarrow", "arrow", "to_arrow()")

    def column(values: list[Any]) -> Any:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            text = [None if v is None else dumps_exact(v).decode() for v in values]
            return pa.array(text, type=pa.string())

    def build(items: Iterable[Any]) -> Any:
        rows = [as_row(item) for item in items]
        names = list(dict.fromkeys(key for row in rows for key in row))
        if not rows and fields:
            return pa.table({name: pa.array([], type=pa.null()) for name in fields})
        return pa.table({name: column([row.get(name) for row in rows]) for name in names})

    return build
