"""The loop the SDK starts for itself: uvloop's when ``lume-sdk[speed]`` installed it."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from lume_async import _event_loop
from lume_async._cli._settings import Settings
from lume_sync import _loop

needs_uvloop = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="lume-sdk[speed] not installed"
)


def kind_of(loop: asyncio.AbstractEventLoop) -> str:
    return type(loop).__module__.split(".")[0]


@needs_uvloop
def test_a_new_loop_is_uvloop_when_it_is_installed() -> None:
    loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == "uvloop"
        assert _event_loop.uses_uvloop()
    finally:
        loop.close()


def test_without_uvloop_a_new_loop_is_asyncio_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: import fails

    loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == "asyncio"
        assert not _event_loop.uses_uvloop()
    finally:
        loop.close()


def test_run_runs_the_coroutine_on_a_new_sdk_loop() -> None:
    async def which() -> str:
        return kind_of(asyncio.get_running_loop())

    expected = "uvloop" if _event_loop.uses_uvloop() else "asyncio"
    assert _event_loop.run(which()) == expected


def test_the_command_line_runs_its_calls_on_the_sdk_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(asyncio.new_event_loop())
        return made[-1]

    monkeypatch.setattr(_event_loop, "new_event_loop", factory)
    settings = Settings(
        base_url="https://lume.invalid", api_key="lume_test", json=False, timeout=5.0
    )

    async def loop_of_the_call(_: object) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert settings.run(loop_of_the_call) is made[0]


@needs_uvloop
def test_lume_loop_asyncio_keeps_asyncio_s_loop_where_uvloop_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LUME_LOOP", "asyncio")

    loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == "asyncio"
        assert not _event_loop.uses_uvloop()
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["uvloop", "UVLOOP", " uvloop ", ""])
@needs_uvloop
def test_lume_loop_uvloop_or_unset_takes_uvloop_where_it_is_installed(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LUME_LOOP", value)

    loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == "uvloop"
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["trio", "uv", "asyncio2", "1"])
def test_an_unknown_lume_loop_is_ignored_with_a_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LUME_LOOP", value)

    with pytest.warns(RuntimeWarning, match=f"LUME_LOOP={value!r}"):
        loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    finally:
        loop.close()


def test_lume_loop_uvloop_without_uvloop_warns_and_takes_asyncio_s_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setenv("LUME_LOOP", "uvloop")

    with pytest.warns(RuntimeWarning, match=r"lume-sdk\[speed\]"):
        loop = _event_loop.new_event_loop()
    try:
        assert kind_of(loop) == "asyncio"
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["asyncio", "uvloop"])
def test_the_sync_facade_s_loop_follows_lume_loop(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("lume-sdk[speed] not installed")
    monkeypatch.setenv("LUME_LOOP", value)
    _loop.shutdown()  # the next call starts the private loop afresh
    try:
        assert kind_of(_loop.get_loop()) == value
    finally:
        _loop.shutdown()
