"""The built site: every exported name has a reference entry, and the pages render in a browser.

The site is the one ``LUME_DOCS_SITE`` points at (CI builds it once with ``mkdocs build
--strict``), else one built here, once per test run, when mkdocs is installed (the ``docs``
extra). The browser tests
run Debian's chromium, headless, against the site served on loopback. In a checkout without
mkdocs or chromium these tests are skipped; with ``LUME_DOCS_CHECKS=1`` (as in CI) a missing
tool is a failure instead.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ._blocks import ROOT

PACKAGES = (
    "lume_async",
    "lume_sync",
    "lume_async.testing",
    "lume_async.webhooks",
    "lume_airflow",
    "lume_pytest",
)
#: The reference page of each package's own names.
PAGES = {
    "lume_sync": "reference/sync/index.html",
    "lume_async.webhooks": "reference/webhooks/index.html",
}


def missing(what: str) -> None:
    """Skip for a missing tool, or fail when every docs check must run."""
    if os.environ.get("LUME_DOCS_CHECKS") == "1":
        pytest.fail(f"{what} (LUME_DOCS_CHECKS=1: every docs check must run)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("LUME_DOCS_SITE")
    if given:
        if not (Path(given) / "objects.inv").is_file():
            missing(f"LUME_DOCS_SITE={given} holds no built site")
        return Path(given)
    if importlib.util.find_spec("mkdocs") is None:
        missing("mkdocs is not installed (pip install -e '.[docs]')")
    # Built once per test run: the pytest-xdist workers share their base directory's parent.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    built = shared / "docs-site"
    with open(shared / "docs-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the kernel drops it if its holder dies
        if not (built / "objects.inv").is_file():
            build(built)
    return built


def build(target: Path) -> None:
    """``mkdocs build --strict`` into ``target``, which holds the site only once it is whole."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
        os.mkdir(tmp)  # for the context manager to remove


def inventory(site: Path) -> set[str]:
    """The object names of the site's Sphinx inventory (``objects.inv``)."""
    header, _, body = (site / "objects.inv").read_bytes().partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2")
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def exported_names(package: str) -> list[str]:
    if package == "lume_airflow":  # imports Airflow: read its __all__ from the source
        tree = ast.parse((ROOT / "lume_airflow" / "__init__.py").read_text(encoding="utf-8"))
        return next(
            list(ast.literal_eval(node.value))
            for node in tree.body
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
        )
    return list(importlib.import_module(package).__all__)


def home_of(package: str, name: str) -> str:
    """Where a name is documented: ``lume_async``'s entry for what it re-exports, else its own."""
    if package in ("lume_async", "lume_airflow", "lume_pytest"):
        return package
    obj = getattr(importlib.import_module(package), name)
    home = importlib.import_module("lume_async")
    return "lume_async" if getattr(home, name, None) is obj else package


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_has_a_reference_entry(site: Path, package: str) -> None:
    entries = inventory(site)
    absent = [n for n in exported_names(package) if f"{home_of(package, n)}.{n}" not in entries]
    assert absent == []


@pytest.mark.parametrize("package", sorted(PAGES))
def test_a_package_page_links_each_name_it_reexports(site: Path, package: str) -> None:
    html = (site / PAGES[package]).read_text(encoding="utf-8")
    reexported = [n for n in exported_names(package) if home_of(package, n) != package]
    assert reexported, "nothing re-exported: drop this page from PAGES"
    unlinked = [n for n in reexported if f"#lume_async.{n}" not in html]
    assert unlinked == []


def test_every_public_member_of_the_clients_has_an_entry(site: Path) -> None:
    import lume_async

    entries = inventory(site)
    absent = [
        f"lume_async.{cls}.{name}"
        for cls in ("AsyncLume", "AsyncRuns", "AsyncRun", "AsyncPaginator")
        for name in vars(getattr(lume_async, cls))
        if not name.startswith("_") and f"lume_async.{cls}.{name}" not in entries
    ]
    assert absent == []


def test_the_changelog_page_holds_every_release_of_the_changelog(site: Path) -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.+)$", changelog, re.MULTILINE)
    items = re.findall(r"^- (.+)$", changelog, re.MULTILINE)  # each entry's first line
    page = text_of((site / "changelog" / "index.html").read_text(encoding="utf-8"))

    assert headings and items
    assert [line for line in headings + items if words(line) not in words(page)] == []


def words(text: str) -> str:
    """The words of a text, whatever its markup: Markdown and its rendering compare equal."""
    return " ".join(re.findall(r"\w+", re.sub(r"\]\([^)]*\)", "", text)))


# -- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in (os.environ.get("LUME_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    missing("chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


def rendered(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran, as headless chromium serializes it."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_scripts_ran(dom: str) -> None:
    """The theme's script ran: it swaps the ``no-js`` class of ``<html>`` for ``js``."""
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag is not None
    classes = re.search(r'class="([^"]*)"', html_tag.group(0))
    assert classes is not None and "js" in classes.group(1).split(), html_tag.group(0)
    assert "no-js" not in classes.group(1).split()


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.timeout(120)
def test_the_home_page_renders_with_its_content(chromium: str, served: str) -> None:
    dom = rendered(chromium, f"{served}/")
    text = text_of(dom)

    assert "The Python client for Lume data-transformation runs" in text
    assert "AsyncLume" in text
    assert_scripts_ran(dom)


@pytest.mark.timeout(120)
def test_the_reference_of_runs_create_renders_with_its_content(chromium: str, served: str) -> None:
    dom = rendered(chromium, f"{served}/reference/runs/")
    section = dom[dom.index('id="lume_async.AsyncRuns.create"') :][:20_000]
    text = text_of(section)

    assert "Start a run of flow_version on source_path or inline source_data" in text
    assert "idempotency_key" in text
    assert "DuplicateRunError" in text
    assert_scripts_ran(dom)


@pytest.mark.timeout(120)
def test_the_cli_page_renders_with_its_content(chromium: str, served: str) -> None:
    text = text_of(rendered(chromium, f"{served}/reference/cli/"))

    assert "lume runs create" in text
    assert "--force-rerun" in text
    assert "Run again even if this source succeeded." in text
    assert "--time-scale" in text  # lume emulator's own options
