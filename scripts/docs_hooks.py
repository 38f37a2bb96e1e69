"""MkDocs hooks: the reference sections generated from the code besides mkdocstrings' own.

- ``<!-- PACKAGE re-exports -->`` becomes a table of the names ``PACKAGE`` re-exports from
  ``lume_async``, each linked to its entry in the ``lume_async`` reference.
- ``<!-- argparse: lume emulator -->`` becomes the help of the emulator's command line, which
  argparse (not click) parses, so mkdocs-click cannot read it.
- ``<!-- benchmarks/README.md -->`` becomes the benchmarks' latest results (``docs_perf.py``),
  and their plots are served under ``assets/benchmarks/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

_REEXPORTS = re.compile(r"^<!-- ([\w.]+) re-exports -->$", re.MULTILINE)
_ARGPARSE = re.compile(r"^<!-- argparse: lume emulator -->$", re.MULTILINE)
_BENCHMARKS = re.compile(r"^<!-- benchmarks/README.md -->$", re.MULTILINE)


def _docs_perf() -> Any:
    """``scripts/docs_perf.py``, loaded by path (hooks are not in a package)."""
    if "docs_perf" not in sys.modules:
        path = Path(__file__).with_name("docs_perf.py")
        spec = importlib.util.spec_from_file_location("docs_perf", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["docs_perf"] = module
        spec.loader.exec_module(module)
    return sys.modules["docs_perf"]


def reexported(package: str) -> list[str]:
    """The names of ``package.__all__`` that are ``lume_async``'s own objects, not its own."""
    module = importlib.import_module(package)
    home = importlib.import_module("lume_async")
    return [
        name
        for name in module.__all__
        if getattr(home, name, None) is getattr(module, name) and package != "lume_async"
    ]


def _summary(obj: Any) -> str:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return "The installed version of lume-sdk." if isinstance(obj, str) else ""
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


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Serve the benchmarks' plots with the site."""
    perf = _docs_perf()
    for image in perf.images():
        uri = f"{perf.ASSETS}/{image.name}"
        files.append(File.generated(config, uri, abs_src_path=str(image)))
    return files


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Fill in the generated sections of a page."""
    markdown = _REEXPORTS.sub(_reexport_table, markdown)
    markdown = _BENCHMARKS.sub(lambda _: _docs_perf().page(), markdown)
    return _ARGPARSE.sub(_emulator_help, markdown)
