"""What the ``lume`` command loads before it runs one: the client, not the emulator."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_loads_the_emulator_only_for_the_commands_that_start_one() -> None:
    servers = ("lume_async.testing", "aiohttp.web")
    code = (
        "import sys; import lume_async._cli; "
        f"print(sorted(m for m in sys.modules if m.startswith({servers!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
