"""Checks of what exports are asked with: the file to write, its columns, the progress callback."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ._base import bad_value, wrong_type

__all__ = ["check_callback", "check_columns", "check_export_path"]


def check_export_path(path: object) -> Path:
    """A file to write: a str or path whose directory exists, and not a directory itself."""
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise wrong_type("path", "a str or os.PathLike", path)
    target = Path(path)
    if not str(path) or target.is_dir():
        raise bad_value("path", "a file to write, not a directory", path)
    if not target.parent.is_dir():
        raise bad_value(
            "path", f"in a directory that exists ({str(target.parent)!r} does not)", path
        )
    return target


def check_columns(columns: object) -> list[str] | None:
    """CSV columns: None (take them from the rows), or distinct non-empty strings."""
    if columns is None:
        return None
    if isinstance(columns, str | bytes) or not isinstance(columns, Sequence):
        raise wrong_type("columns", "a sequence of str or None", columns)
    names = list(columns)
    for name in names:
        if not isinstance(name, str):
            raise wrong_type("columns", "a sequence of str", name)
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise bad_value("columns", "distinct, non-empty column names (at least one)", columns)
    return names


def check_callback(callback: object, name: str) -> None:
    """A callable, or None."""
    if callback is not None and not callable(callback):
        raise wrong_type(name, "a callable or None", callback)
