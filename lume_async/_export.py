"""Exports of a listing: JSON Lines and CSV files written page by page, DataFrames and Tables.

Files are written to a temporary file beside the target and renamed over it once complete, so a
reader never sees half a file and a failed export leaves the target as it was. Each page is
encoded on the event loop and written by a worker thread, so the loop never blocks on the disk.
Items become rows as they go on the wire: a dict as it is, a model (a rejected row, a log entry,
a run) as its JSON object.
"""

from __future__ import annotations

import csv
import importlib
import io
import os
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
    "as_row",
    "dataframe_builder",
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
    """
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    done = False
    written = 0
    file: IO[bytes] = os.fdopen(fd, "wb")
    try:
        async for page in pages:
            rows = [as_row(item) for item in page.items]
            if rows:
                await anyio.to_thread.run_sync(file.write, encode(rows))
                written += len(rows)
            if on_progress is not None:
                on_progress(written)
        await anyio.to_thread.run_sync(_finish, file, trailer(), temp, target)
        done = True
    finally:
        await pages.aclose()  # type: ignore[attr-defined]
        if not done:
            file.close()
            os.unlink(temp)
    return written


def _finish(file: IO[bytes], last: bytes, temp: str, target: Path) -> None:
    file.write(last)
    file.flush()
    os.fsync(file.fileno())
    file.close()
    # A temporary file is private (0600); the export gets the mode of the file it replaces, or
    # the usual 0644 for a new one.
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
        return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)

    return await _write(pages, target, encode, on_progress)


class _CsvEncoder:
    """Rows to CSV lines under one header, fixed by ``columns`` or by the first rows seen."""

    def __init__(self, columns: list[str] | None) -> None:
        self.columns = columns
        self.header_written = False

    def __call__(self, rows: list[dict[str, Any]]) -> bytes:
        if self.columns is None:
            self.columns = list(dict.fromkeys(key for row in rows for key in row))
        known = set(self.columns)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
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
        if self.header_written or self.columns is None:
            return b""
        return self([])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


async def write_csv(
    pages: AsyncIterator[Page[Any]],
    path: str | os.PathLike[str],
    columns: Sequence[str] | None,
    on_progress: RowsWritten | None,
) -> int:
    """Every item of ``pages`` to ``path`` as CSV under a header; how many rows were written."""
    try:
        target = check_export_path(path)
        names = check_columns(columns)
        check_callback(on_progress, "on_progress")
    except BaseException:
        await pages.aclose()  # type: ignore[attr-defined]
        raise
    encoder = _CsvEncoder(names)
    return await _write(pages, target, encoder, on_progress, encoder.header_only)


def _optional(module: str, extra: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {module}, which is not installed: pip install 'lume-sdk[{extra}]'"
        ) from exc


def dataframe_builder() -> Callable[[Iterable[Any]], Any]:
    """What turns items into a ``pandas.DataFrame``; ImportError naming the extra without pandas."""
    pandas = _optional("pandas", "pandas", "to_pandas()")
    return lambda items: pandas.DataFrame([as_row(item) for item in items])


def table_builder() -> Callable[[Iterable[Any]], Any]:
    """What turns items into a ``pyarrow.Table``; ImportError naming the extra without pyarrow.

    Column types are inferred; a column whose values share no one type (the source records of
    rejected rows, say) is kept as JSON text rather than refused.
    """
    pa = _optional("pyarrow", "arrow", "to_arrow()")

    def column(values: list[Any]) -> Any:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = [None if v is None else orjson.dumps(v).decode() for v in values]
            return pa.array(text, type=pa.string())

    def build(items: Iterable[Any]) -> Any:
        rows = [as_row(item) for item in items]
        names = list(dict.fromkeys(key for row in rows for key in row))
        return pa.table({name: column([row.get(name) for row in rows]) for name in names})

    return build
