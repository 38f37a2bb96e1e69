"""Setting up: the emulator's life cycle and control plane, the virtual clock, the pytest plugin
and the client's configuration, at the edges of what each accepts.

An emulator entered twice, restarted or bound to every interface; a tenant key handed out twice;
fault profiles built from a set; control-plane bodies with misspelt keys or booleans for numbers;
a virtual clock pushed past the largest float; settings from the environment that are malformed;
a base URL or default header that would slip past a check meant to protect the key.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lume_async import AsyncLume
from lume_async.testing import Emulator, VirtualClock

from .._zygote import Zygote

KEY = "lume_setup_edges_9c1e"
REMOTE_PROXY = "http://10.0.0.1:3128"


def _get(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"lume-api-key": key})
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


def _port_accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as session:
        yield session


async def _call(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as response:
        return response.status, await response.json()


# -- the emulator's life cycle ---------------------------------------------------------------------


def test_an_exception_in_the_with_block_stops_the_thread_and_frees_the_port() -> None:
    emu = Emulator()
    seen: list[tuple[int, threading.Thread | None]] = []

    def use() -> None:
        with emu:
            seen.append((emu.port, emu._thread))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        use()
    [(port, thread)] = seen
    assert thread is not None and not thread.is_alive()
    assert not _port_accepts(port)


def test_entering_a_running_emulator_again_leaves_the_first_one_stoppable() -> None:
    emu = Emulator()
    with emu:
        thread, loop = emu._thread, emu._loop
        assert thread is not None and loop is not None
        with pytest.raises(RuntimeError, match="already running"), emu:
            pass
    try:
        assert not thread.is_alive(), "the serving thread outlived the with block"
    finally:  # do not leave a serving thread behind in this worker
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


def test_a_stopped_emulator_serves_again_when_entered_again() -> None:
    emu = Emulator()
    with emu:
        pass
    with emu:
        assert _get(f"{emu.url}/v1/flows", emu.api_key) == 200


@pytest.mark.anyio
async def test_the_url_of_an_emulator_bound_to_every_interface_is_one_a_client_takes() -> None:
    async with (
        Emulator(host="0.0.0.0") as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume,
    ):
        flows = await lume.flows.list().collect()
    assert flows


# -- tenants ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_add_tenant_refuses_a_key_already_in_use(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    status, run = await _call(
        api, "POST", "/v1/runs", json={"flow_version": "customer_cleaner:v1", "source_path": "a"}
    )
    assert status == 201
    principal = emu.add_principal("ana@example.com")
    refused = []
    for key in (emu.api_key, principal):
        try:
            emu.add_tenant(key)
        except ValueError:
            refused.append(key)
    status, listed = await _call(api, "GET", "/v1/runs")
    assert [item["id"] for item in listed["items"]] == [run["id"]]  # still its tenant's key
    assert refused == [emu.api_key, principal]


# -- fault profiles and the control plane ----------------------------------------------------------


def _draws_under_hash_seed(hash_seed: int) -> str:
    code = textwrap.dedent(
        """
        from lume_async.testing._faults import FaultInjector, FaultProfile
        profile = FaultProfile(rate=1.0, kinds={"500", "503", "429", "reset"}, seed=1)
        injector = FaultInjector(profile)
        print([injector.draw() for _ in range(8)])
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    return done.stdout.strip()


def test_a_seeded_profile_draws_the_same_faults_in_every_process() -> None:
    draws = {_draws_under_hash_seed(seed) for seed in (0, 1, 2, 3)}
    assert len(draws) == 1, draws


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [{"rate_limt": 5}, {"rate_limit": True}, {"rate_burst": True}],
    ids=["misspelt-key", "bool-rate", "bool-burst"],
)
async def test_the_config_control_refuses_a_body_it_would_misread(
    api: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, error = await _call(api, "POST", "/_emulator/config", json=body)
    assert (status, error.get("code")) == (422, "validation_error"), error


@pytest.mark.anyio
async def test_the_advance_control_refuses_unknown_keys(api: aiohttp.ClientSession) -> None:
    status, error = await _call(
        api, "POST", "/_emulator/advance", json={"seconds": 1, "seconds_extra": 3600}
    )
    assert (status, error.get("code")) == (422, "validation_error"), error


# -- the virtual clock -----------------------------------------------------------------------------


def test_the_autojump_setter_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(TypeError, match="autojump"):
        VirtualClock(autojump="no")  # type: ignore[arg-type]
    clock = VirtualClock()
    with pytest.raises(TypeError, match="autojump"):
        clock.autojump = "no"  # type: ignore[assignment]
    assert clock.autojump is True


def test_advance_never_makes_the_clock_read_infinity() -> None:
    clock = VirtualClock(autojump=False)
    clock.advance(1e308)
    with contextlib.suppress(ValueError):
        clock.advance(1e308)
    assert math.isfinite(clock.monotonic())
    assert math.isfinite(clock.time())


# -- the pytest plugin -----------------------------------------------------------------------------


def test_the_fixture_refuses_positional_marker_arguments(tmp_path: Path, zygote: Zygote) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.lume_emulator(1000.0)
            def test_fast(lume_emulator):
                pass
            """
        )
    )
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = ["-q", "-p", "no:cacheprovider", "-W", "error", "-p", "lume_emulator"]
    done = zygote.pytest(args, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode != 0, done.stdout
    assert "TypeError" in done.stdout or "positional" in done.stdout, done.stdout


# -- the client's configuration --------------------------------------------------------------------


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUME_API_KEY", "from-the-environment")
    monkeypatch.setenv("LUME_BASE_URL", "http://127.0.0.1:9")
    lume = AsyncLume(api_key=KEY, base_url="http://127.0.0.1:10")
    assert lume.base_url == "http://127.0.0.1:10"
    assert lume._core.config.api_key.reveal() == KEY


@pytest.mark.parametrize("env_url", [None, "http://127.0.0.1:9"], ids=["no-env", "env"])
def test_an_explicit_empty_base_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, env_url: str | None
) -> None:
    if env_url is None:
        monkeypatch.delenv("LUME_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("LUME_BASE_URL", env_url)
    with pytest.raises(ValueError, match="base_url"):
        AsyncLume(api_key=KEY, base_url="")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LUME_API_KEY", "lume_key_from_a_file\n"),
        ("LUME_API_KEY", "  "),
        ("LUME_BASE_URL", "ftp://x"),
    ],
    ids=["key-newline", "key-blank", "url-scheme"],
)
def test_a_malformed_environment_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("LUME_API_KEY", KEY)
    monkeypatch.setenv("LUME_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        AsyncLume()


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9", "https://api.lume.ai"])
def test_a_plain_http_base_url_through_a_remote_proxy_is_refused_only_over_http(
    base_url: str,
) -> None:
    if base_url.startswith("https"):
        AsyncLume(api_key=KEY, base_url=base_url, proxy=REMOTE_PROXY, trust_env=False)
        return
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=KEY, base_url=base_url, proxy=REMOTE_PROXY, trust_env=False)


@pytest.mark.parametrize("base_url", ["HTTP://127.0.0.1:9", "Http://localhost:9"])
def test_an_upper_case_http_scheme_does_not_bypass_the_proxy_check(base_url: str) -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        AsyncLume(api_key=KEY, base_url=base_url, proxy=REMOTE_PROXY, trust_env=False)


@pytest.mark.parametrize("value", ["a\x0bb", "a\x1bb", "a\x7fb", "a\tb\x0c"])
def test_a_default_header_with_a_control_character_is_refused_at_once(value: str) -> None:
    with pytest.raises(ValueError, match="default_headers"):
        AsyncLume(api_key=KEY, base_url="http://127.0.0.1:9", default_headers={"X-Trace": value})
