"""Text from the server (or a caller) made safe for a log line: one line, printable, bounded.

A server's request id or error detail can hold newlines (a forged log line), terminal escapes
or megabytes; what lands in a log line has control characters escaped and is cut.
"""

from __future__ import annotations

from typing import Final

from ._exceptions import MAX_MESSAGE, cut

__all__ = ["MAX_ID", "Printable", "escape", "printable"]

MAX_ID: Final = 200
"""The longest request id a log line carries, as errors keep it."""

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES: Final = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def escape(text: str) -> str:
    """``text`` with its control characters escaped: one line, nothing a terminal acts on."""
    return text.translate(_ESCAPES)


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
