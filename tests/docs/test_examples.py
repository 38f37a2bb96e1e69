"""Every code block of the documentation site runs green, as its reader would run it.

Python blocks run as scripts or pytest modules (see ``_blocks``); each starts the emulator it needs,
as the pages show readers to. The shell blocks of a page run in one bash session, in a scratch
directory, with ``LUME_BASE_URL`` and ``LUME_API_KEY`` pointing at an emulator that plays the
"other terminal" the pages tell readers to start one in; their ``lume`` is the installed command,
forked from a process that has imported its libraries (``_lume_shim``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lume_async.testing import Emulator

from .._zygote import Zygote
from ._blocks import FENCE, ROOT, blocks, pages, python_params, run_python

#: Languages a page's blocks may be written in; ``text`` is output or a diagram, never code.
LANGUAGES = {"python", "sh", "text", "json"}
SHELL_PAGES = [
    pytest.param(path, id=path.stem)
    for path in pages()
    if any(marker is None for _, marker, _, _ in blocks(path, "sh"))
]


def test_the_site_has_its_examples() -> None:
    assert len(python_params(pages())) >= 20


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in pages()])
def test_every_block_is_in_a_known_language(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert {m.group(3) for m in FENCE.finditer(text)} <= LANGUAGES


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in pages()])
def test_a_shell_block_not_run_says_why(path: Path) -> None:
    for block_id, marker, argument, _ in blocks(path, "sh"):
        assert marker in (None, "not run"), block_id
        assert marker is None or len(argument) > 10, f"{block_id}: say why it is not run"


@pytest.mark.parametrize("code", python_params(pages()))
def test_python_block_runs(code: str, tmp_path: Path, zygote: Zygote) -> None:
    run_python(code, tmp_path, zygote)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", SHELL_PAGES)
def test_the_shell_blocks_of_a_page_run_in_order(
    path: Path, tmp_path: Path, lume_bin: Path
) -> None:
    if shutil.which("jq") is None:
        if os.environ.get("LUME_DOCS_CHECKS") == "1":
            pytest.fail("jq is not installed (the shell examples use it)")
        pytest.skip("jq is not installed (the shell examples use it)")
    script = ["set -euo pipefail"]
    for block_id, marker, _, code in blocks(path, "sh"):
        if marker is None:
            script += [f"echo '>>> {block_id}'", code]
    # Fast enough that a run of a few seconds is over before the CLI's first status poll (or it
    # waits out a real 5 s poll interval), slow enough that a day-long run is still cancellable.
    with Emulator(time_scale=2000) as emu:
        env = {**os.environ, "LUME_BASE_URL": emu.url, "LUME_API_KEY": emu.api_key}
        # The ``lume`` of this interpreter's environment, activated or not, each forked from a
        # process that has imported its libraries (``_lume_shim``; tests/cli/test_startup.py
        # and the CLI's process tests run the command's own start-up).
        path_dirs = [str(lume_bin), str(Path(sys.executable).parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(path_dirs)
        env.pop("LUME_LOG", None)
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_the_readme_links_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(targets) >= 10
    assert [t for t in targets if not (ROOT / t).is_file()] == []
