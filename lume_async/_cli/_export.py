"""Where ``lume runs results --output`` writes: JSON lines or CSV, a row at a time.

Rows are written as their pages arrive, so memory stays at a page or two whatever the run's size.
A file is written beside its final name and moved into place once complete: an interrupted
export never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from .. import _converter
from .._export import abandon, dumps_exact, not_a_plain_file, replace_keeping_mode, temp_beside
from ._escape import ascii_json
from ._streams import speaks_utf8

__all__ = ["FORMATS", "RowSink", "format_for", "json_text"]

FORMATS = ("jsonl", "csv")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_HEADER_SAMPLE = 100  # CSV columns: every field of the first rows (a page)


def format_for(path: str, given: str | None) -> str:
    """The format to write ``path`` in: ``given``, else its suffix (``.jsonl``, ``.csv``)."""
    if given is not None:
        return given
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot tell the format of {path!r} from its suffix: name it .jsonl or .csv, "
            "or give --format"
        )
    return found


def json_text(value: Any, *, indent: bool = False) -> str:
    """``value`` as JSON text; an integer past 64 bits (read exactly from a page) kept exact."""
    return dumps_exact(value, indent=indent).decode()


class RowSink:
    """Writes rows (dicts, or models such as rejected rows) to a path, or stdout for ``-``."""

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.rows = 0
        self.fields_left_out: set[str] = set()
        self._fmt = fmt
        self._final: Path | None = None
        self._tmp: str | None = None
        if path == "-":
            self._out: IO[str] = sys.stdout
        elif not_a_plain_file(path):  # a pipe, a device (/dev/stdout): written into, as is
            self._out = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        else:
            final = Path(os.path.realpath(path))  # through a link: the file it names
            fd, self._tmp = temp_beside(final)
            self._out = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._final = final
        self._owned = path != "-"
        # JSON lines into a stream that does not speak UTF-8 (a Latin-1 locale) stay JSON.
        self._ascii = path == "-" and not speaks_utf8(sys.stdout)
        self._pending: list[dict[str, Any]] = []
        self._csv: csv.DictWriter[str] | None = None

    def write(self, item: Any) -> None:
        row = item if isinstance(item, dict) else _converter.unstructure(item)
        self.rows += 1
        if self._fmt == "jsonl":
            text = json_text(row)
            self._out.write(ascii_json(text) if self._ascii else text)
            self._out.write("\n")
            return
        if self._csv is None:
            self._pending.append(row)
            if len(self._pending) >= _HEADER_SAMPLE:
                self._start_csv()
            return
        self._write_csv(row)

    def _start_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self._pending for key in row))
        self._csv = csv.DictWriter(self._out, fieldnames=columns, extrasaction="ignore")
        self._csv.writeheader()
        pending, self._pending = self._pending, []
        for row in pending:
            self._write_csv(row)

    def _write_csv(self, row: dict[str, Any]) -> None:
        assert self._csv is not None
        extra = row.keys() - set(self._csv.fieldnames)
        if extra:
            self.fields_left_out.update(extra)
        self._csv.writerow({key: _csv_cell(value) for key, value in row.items()})

    def finish(self) -> None:
        """Write what is buffered and move the file into place."""
        try:
            if self._fmt == "csv" and self._csv is None and (self._pending or self.rows == 0):
                self._start_csv()
            self._out.flush()
            if self._final is not None and self._tmp is not None:
                self._out.close()
                replace_keeping_mode(self._tmp, self._final)
                self._tmp = None
            elif self._owned:
                self._out.close()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop a file that was not finished (closing it may fail: a full disk)."""
        abandon(self._out if self._owned else None, self._tmp)
        self._tmp = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.discard()


def _csv_cell(value: Any) -> str:
    """A CSV cell: text as it is, other values as JSON (``true``, ``1.5``, ``{"a": 1}``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_text(value)
