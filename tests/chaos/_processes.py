"""The emulator in a process of its own, as a shared service for several client processes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from lume_async import AsyncLume

from ._forks import Forked, ForkServer

__all__ = ["EmulatorProcess", "runs_per_path"]

_READY = "LUME_EMULATOR "


class EmulatorProcess:
    """``with EmulatorProcess(time_scale=20) as emu:`` gives ``emu.url`` and ``emu.api_key``.

    ``python -m lume_async.testing``, started afresh or, given ``forks``, forked from a server
    that has imported it (the same process, less the 0.4 s of imports).
    """

    def __init__(
        self, *, time_scale: float = 1.0, seed: int = 0, forks: ForkServer | None = None
    ) -> None:
        self._args = ["--port", "0", "--time-scale", str(time_scale), "--seed", str(seed)]
        self._proc: subprocess.Popen[str] | Forked | None = None
        self._forks = forks
        self._files: Path | None = None
        self.url = ""
        self.api_key = ""

    def _ready(self, line: str) -> EmulatorProcess:
        ready = json.loads(line[len(_READY) :])
        self.url, self.api_key = ready["url"], ready["api_key"]
        return self

    def __enter__(self) -> EmulatorProcess:
        if self._forks is not None:
            self._files = Path(tempfile.mkdtemp(prefix="lume-emulator-"))
            self._proc = forked = self._forks.start(
                ["-m", "lume_async.testing", *self._args],
                out=self._files / "out",
                err=self._files / "err",
            )
            try:
                return self._ready(forked.wait_for_line(_READY, timeout=30))
            except BaseException:
                self.__exit__(None, None, None)
                raise
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lume_async.testing", *self._args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(_READY):
                return self._ready(line)
        self.__exit__(None, None, None)
        raise RuntimeError("the emulator process exited before it was ready")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if isinstance(proc, subprocess.Popen) and proc.stdout is not None:
            proc.stdout.close()
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)

    def set_faults(self, profile: dict[str, Any] | None) -> None:
        """Arm (or, with None, disarm) fault injection: the body of ``POST /_emulator/faults``."""
        body = json.dumps(profile or {"rate": 0}).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/faults",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200

    async def stats(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/_emulator/stats") as resp,
        ):
            resp.raise_for_status()
            data: dict[str, Any] = await resp.json()
            return data


async def runs_per_path(url: str, api_key: str, batch: str) -> Counter[str]:
    """How many runs the server holds for each source path of ``batch``."""
    counts: Counter[str] = Counter()
    async with AsyncLume(api_key=api_key, base_url=url) as lume:
        async for run in lume.runs.list(page_size=100):
            if (run.source_path or "").startswith(f"synthetic://{batch}-"):
                counts[run.source_path or ""] += 1
    return counts
