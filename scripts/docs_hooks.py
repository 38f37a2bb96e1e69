"""MkDocs hooks: the reference sections generated from the code besides mkdocstrings' own.

- ``<!-- PACKAGE re-exports -->`` becomes a table of the names ``PACKAGE`` re-exports from
  ``lume_async``, each linked to its entry in the ``lume_async`` reference.
- ``<!-- argparse: lume emulator -->`` becomes the help of the emulator's command line, which
  argparse (not click) parses, so mkdocs-click cannot read it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Any

_REEXPORTS = re.compile(r"^<!-- ([\w.]+) re-exports -->$", re.MULTILINE)
_ARGPARSE = re.compile(r"^<!-- argparse: lume emulator -->$", re.MULTILINE)


def reexported(package: str) -> list[str]:
    """The names of ``package.__all__`` that are ``lume_async``'s own objects, not its own."""
    module = importlib.import_module(package)
    home = importlib.import_module("lume_async")
    return [
        name
        for name in module.__all__
        if name != "__version__"
        and getattr(home, name, None) is getattr(module, name)
        and package != "lume_async"
    ]


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").replace("|", "\\|")


def _reexport_table(match: re.Match[str]) -> str:
    home = importlib.import_module("lume_async")
    rows = [
        f"| [`{name}`][lume_async.{name}] | {_summary(getattr(home, name))} |"
        for name in reexported(match.group(1))
    ]
    return "\n".join(["| Name | What it is |", "|---|---|", *rows])


def _emulator_help(match: re.Match[str]) -> str:
    from lume_async.testing._main import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: make the page stable
    try:
        text = build_parser(prog="lume emulator").format_help()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return f"```text\n{text.rstrip()}\n```"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Fill in the generated sections of a page."""
    markdown = _REEXPORTS.sub(_reexport_table, markdown)
    return _ARGPARSE.sub(_emulator_help, markdown)
