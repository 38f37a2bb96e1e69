"""pytest plugin: the ``lume_emulator`` fixture, a running ``Emulator`` per test.

The emulator runs in its own thread, so sync and async tests both use it. Options come from the
``lume_emulator`` marker, e.g. ``@pytest.mark.lume_emulator(time_scale=100, seed=3)``. Nothing
heavy is imported until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["lume_emulator", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lume_emulator(**kwargs): keyword arguments for the lume_emulator fixture's Emulator",
    )


@pytest.fixture
def lume_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A running Lume emulator (background thread); use ``.url``, ``.api_key``, ``.advance()``."""
    from ._emulator import Emulator

    marker = request.node.get_closest_marker("lume_emulator")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    with Emulator(**kwargs) as emulator:
        yield emulator
