"""What a run leaves besides its mapped rows: rejected rows with their reasons, and log lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = ["FieldError", "LogEntry", "RejectedRow"]


@attrs.frozen(kw_only=True)
class LogEntry:
    """One line of a run's log."""

    time: datetime
    level: str
    message: str
    code: str | None = None
    details: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class FieldError:
    """Why one field of a source row was rejected."""

    field: str | None = None
    error_code: str
    message: str | None = None


@attrs.frozen(kw_only=True)
class RejectedRow:
    """A source row the flow refused, with its position in the source and the reasons."""

    index: int
    source_record: dict[str, Any]
    errors: tuple[FieldError, ...] = ()
