"""Server text as the terminal shows it: literally, never as markup, styles or control codes.

Whatever a server says (a source path, a label, a log message, an error) may hold Rich markup
(``[/x]`` crashes the renderer, ``[link=...]`` makes a hyperlink), ANSI escape sequences or other
control characters that restyle, move or retitle the terminal, and bidirectional overrides that
make text read backwards. ``visible`` spells each such character out (``\\x1b``, ``\\u202e``);
``plain`` wraps the result in a ``rich.text.Text``, which Rich prints as it is, markup included.
"""

from __future__ import annotations

import re
import sys
from typing import Final

from rich.text import Text

from .._log_text import escape
from ._streams import speaks_utf8

__all__ = ["ascii_json", "plain", "visible", "visible_json"]

# What JSON leaves raw in strings although a terminal may act on it (C0 is escaped already).
_JSON_HIDDEN: Final = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NON_ASCII: Final = re.compile("[^\x00-\x7f]")


def visible(value: object) -> str:
    """``value`` as text with every control or invisible format character spelled out."""
    return escape(value if isinstance(value, str) else str(value))


def plain(value: object, style: str = "") -> Text:
    """A Rich ``Text`` of ``visible(value)``: printed as it is, never read as markup."""
    return Text(visible(value), style=style)


def visible_json(text: str, *, err: bool = False) -> str:
    """JSON text for standard output (``err``: standard error) with the characters JSON leaves
    raw but a terminal may act on escaped; every character past ASCII too where that stream does
    not speak UTF-8 (it would spell them out as no JSON reader can read)."""
    text = _JSON_HIDDEN.sub(_json_escape, text)
    if speaks_utf8(sys.stderr if err else sys.stdout):
        return text
    return ascii_json(text)


def ascii_json(text: str) -> str:
    """JSON text with every character past ASCII escaped (``\\u00fc``): the same JSON, in any
    encoding."""
    return _NON_ASCII.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    """A character as JSON escapes it: ``\\u00fc``; past the BMP, as a surrogate pair."""
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
