"""lume-sdk's pytest plugin: the ``lume_emulator`` fixture, a running Lume emulator per test.

pytest loads this module in every project where lume-sdk is installed (through the ``pytest11``
entry point), so it imports nothing but pytest until a test asks for the fixture: the SDK, the
emulator and aiohttp load then, not at start-up. It lives outside ``lume_async`` because importing
any module of a package imports the package first.

The emulator runs on a thread of its own, so sync tests and async tests alike can use it. Options
come from the ``lume_emulator`` marker::

    @pytest.mark.lume_emulator(time_scale=100, seed=3)
    def test_cleanup(lume_emulator):
        with Lume(api_key=lume_emulator.api_key, base_url=lume_emulator.url) as lume: ...

Async tests take the same fixture and make an ``AsyncLume`` on their own event loop, with anyio's
pytest plugin (installed with anyio, a dependency of lume-sdk)::

    @pytest.mark.anyio
    async def test_cleanup(lume_emulator):
        async with AsyncLume(api_key=lume_emulator.api_key, base_url=lume_emulator.url) as lume:
            ...

or with pytest-asyncio (``@pytest.mark.asyncio``, or ``asyncio_mode = "auto"``). To keep the
emulator on the test's own loop instead, write an async fixture: ``async with Emulator() as emu:
yield emu``. Turn the plugin off with ``-p no:lume_emulator``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lume_async.testing import Emulator

__all__ = ["lume_emulator", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``lume_emulator`` marker, so that ``--strict-markers`` accepts it.

    pytest calls this hook when it loads the plugin; tests never call it.
    """
    config.addinivalue_line(
        "markers",
        "lume_emulator(**kwargs): keyword arguments for the lume_emulator fixture's Emulator",
    )


@pytest.fixture
def lume_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A running Lume emulator (background thread); use ``.url``, ``.api_key``, ``.advance()``.

    Each test gets an emulator of its own, started before the test and stopped after it. The
    ``lume_emulator`` marker's keyword arguments go to ``lume_async.testing.Emulator``
    (``time_scale``, ``seed``, ``faults``, ...), which refuses unknown ones with a TypeError.
    Markers of the module (``pytestmark``), the class and the test add up, the closest winning
    where they name the same option; an indirect parameter
    (``@pytest.mark.parametrize("lume_emulator", [{"seed": 1}, {"seed": 2}], indirect=True)``)
    wins over them all.

    Example:
        ```python
        @pytest.mark.lume_emulator(time_scale=1000)
        def test_cleanup(lume_emulator):
            with Lume(api_key=lume_emulator.api_key, base_url=lume_emulator.url) as lume:
                rows = [{"name": "Ada", "email": "Ada@Example.com", "age": 36}]
                result = lume.process("customer_cleaner:v1", source_data=rows)
                assert result.rows[0]["email"] == "ada@example.com"
        ```
    """
    from lume_async.testing import Emulator

    with Emulator(**_options(request)) as emulator:
        yield emulator


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The markers' keyword arguments, the closest winning, then an indirect parameter's."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("lume_emulator"))):  # closest last
        if marker.args:
            raise TypeError(
                "the lume_emulator marker takes keyword arguments only (time_scale=..., "
                f"seed=...), got {len(marker.args)} positional"
            )
        options.update(marker.kwargs)
    if hasattr(request, "param"):  # parametrize("lume_emulator", [...], indirect=True)
        if not isinstance(request.param, dict):
            raise TypeError(
                "an indirect parameter of lume_emulator must be a dict of Emulator keyword "
                f"arguments, got {type(request.param).__name__}"
            )
        options.update(request.param)
    return options
