"""Server text as the terminal shows it: literally, never as markup, styles or control codes.

Whatever a server says (a source path, a label, a log message, an error) may hold Rich markup
(``[/x]`` crashes the renderer, ``[link=...]`` makes a hyperlink), ANSI escape sequences or other
control characters that restyle, move or retitle the terminal, and bidirectional overrides that
make text read backwards. ``visible`` spells each such character out (``\\x1b``, ``\\u202e``);
``plain`` wraps the result in a ``rich.text.Text``, which Rich prints as it is, markup included.
"""

from __future__ import annotations

import re
from typing import Final

from rich.text import Text

from .._log_text import escape

__all__ = ["plain", "visible", "visible_json"]

# What JSON leaves raw in strings although a terminal may act on it (C0 is escaped already).
_JSON_HIDDEN: Final = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def visible(value: object) -> str:
    """``value`` as text with every control or invisible format character spelled out."""
    return escape(value if isinstance(value, str) else str(value))


def plain(value: object, style: str = "") -> Text:
    """A Rich ``Text`` of ``visible(value)``: printed as it is, never read as markup."""
    return Text(visible(value), style=style)


def visible_json(text: str) -> str:
    """JSON text with the characters JSON leaves raw but a terminal may act on escaped."""
    return _JSON_HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
