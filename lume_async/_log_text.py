"""Text from the server (or a caller) made safe for a log line or a terminal: one line,
printable, bounded.

A server's request id, error detail or data can hold newlines (a forged log line), terminal
escapes, bidirectional overrides (text that reads backwards) or megabytes; what lands in a log
line or on a terminal has each such character spelled out (``\\x1b``, ``\\u202e``), and a log
line is cut.
"""

from __future__ import annotations

import re
from typing import Final

from ._exceptions import MAX_MESSAGE, cut

__all__ = ["MAX_ID", "Printable", "escape", "printable"]

MAX_ID: Final = 200
"""The longest request id a log line carries, as errors keep it."""

# C0 and C1 controls and DEL, and the invisible format characters that reorder or hide text.
_HIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _spelled(match: re.Match[str]) -> str:
    """A hidden character as ``\\xNN`` or ``\\uNNNN``."""
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control or invisible format character spelled out: one line,
    nothing a terminal acts on."""
    return _HIDDEN.sub(_spelled, text)


def printable(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` escaped, cut to at most ``limit`` characters."""
    return cut(escape(text), limit)


class Printable:
    """``printable(str(value))``, worked out only when a record is formatted."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        try:
            text = str(self._value)
        except Exception:  # a record must format whatever its value does
            text = f"<{type(self._value).__name__} that cannot be shown>"
        return printable(text)
