"""Fixtures of the docs' example tests."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._lume_shim import LumeServer


@pytest.fixture(scope="session")
def lume_bin() -> Iterator[Path]:
    """A directory whose ``lume`` runs the installed command forked from a warm process.

    Put it first on ``PATH`` (see ``_lume_shim``): a ``lume`` then costs a fork, not a start-up.
    Where the shim's plumbing is missing (it needs Linux: pidfds, ``SOCK_SEQPACKET``), the
    installed command itself.
    """
    if not (hasattr(os, "pidfd_open") and hasattr(socket, "SOCK_SEQPACKET")):
        yield Path(sys.executable).parent
        return
    server = LumeServer()
    yield server.bin
    server.close()
