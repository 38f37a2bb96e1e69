"""What a run leaves besides its mapped rows: rejected rows with their reasons, and log lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = ["FieldError", "LogEntry", "RejectedRow"]


@attrs.frozen(kw_only=True)
class LogEntry:
    """One line of a run's log.

    Attributes:
        time: When it was logged (UTC).
        level: The severity, such as ``INFO`` or ``ERROR``.
        message: The line itself.
        code: A machine-readable code, for some lines.
        details: Structured details, for some lines.
    """

    time: datetime
    level: str
    message: str
    code: str | None = None
    details: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class FieldError:
    """Why one field of a source row was rejected.

    Attributes:
        field: The field, or None for the row as a whole.
        error_code: A short machine-readable code, such as ``invalid_email``.
        message: What was wrong, for people.
    """

    field: str | None = None
    error_code: str
    message: str | None = None


@attrs.frozen(kw_only=True)
class RejectedRow:
    """A source row the flow refused, with its position in the source and the reasons.

    Attributes:
        index: The row's position in the source, from 0.
        source_record: The row as it was read.
        errors: Why it was rejected, one entry per field.
    """

    index: int
    source_record: dict[str, Any]
    errors: tuple[FieldError, ...] = ()
