"""What the blocking facade's tests share: an emulator per module and a client per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lume_async.testing import Emulator
from lume_sync import Lume


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=50) as emulator:
        yield emulator


@pytest.fixture
def lume(emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=emu.api_key, base_url=emu.url) as client:
        yield client
