"""``lume --proxy``, ``--ca-bundle`` and ``--header``: the client options on the command line."""

from __future__ import annotations

import anyio
import pytest

from lume_async.testing import Emulator

from ..cli.conftest import Done, lume
from ..core._scripted import ScriptedServer
from .conftest import NAME, ProxyProcess, TlsFront

pytestmark = pytest.mark.anyio


async def in_thread(*args: str, env: dict[str, str]) -> Done:
    """``lume ARGS`` off the event loop that serves the test's emulator."""
    return await anyio.to_thread.run_sync(lambda: lume(*args, env=env))


async def test_proxy_and_ca_bundle_options(
    proxy: ProxyProcess, tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    env = {"LUME_BASE_URL": f"https://{NAME}:{tls_front.port}", "LUME_API_KEY": emu.api_key}
    args = ("--proxy", proxy.url, "--ca-bundle", ca_file, "--json", "runs", "list")
    done = await in_thread(*args, env=env)
    assert done.json() == []
    assert proxy.targets() == [f"CONNECT {NAME}:{tls_front.port}"]


async def test_the_ca_bundle_from_the_environment(
    tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    env = {
        "LUME_BASE_URL": f"https://localhost:{tls_front.port}",
        "LUME_API_KEY": emu.api_key,
        "LUME_CA_BUNDLE": ca_file,
    }
    assert (await in_thread("--json", "runs", "list", env=env)).json() == []


async def test_header_options_go_with_every_request(scripted: ScriptedServer) -> None:
    env = {"LUME_BASE_URL": scripted.url, "LUME_API_KEY": "k"}
    args = ("--header", "X-Team: data-eng", "--header", "X-Job:nightly", "runs", "get")
    done = await in_thread(*args, "run_01HY0000000000000000000000", env=env)
    assert done.status == 0, done.stderr
    assert scripted.seen[0].headers["X-Team"] == "data-eng"
    assert scripted.seen[0].headers["X-Job"] == "nightly"


async def test_a_header_option_without_a_colon_is_a_usage_error() -> None:
    env = {"LUME_BASE_URL": "http://127.0.0.1:9", "LUME_API_KEY": "k"}
    done = await in_thread("--header", "X-Team", "runs", "list", env=env)
    assert done.status == 2
    assert "'NAME: VALUE'" in done.error_line()


async def test_a_header_option_may_not_replace_the_key() -> None:
    env = {"LUME_BASE_URL": "http://127.0.0.1:9", "LUME_API_KEY": "k"}
    done = await in_thread("--header", "lume-api-key: other", "runs", "list", env=env)
    assert done.status == 2
    assert done.error_line().startswith("error: --header may not set 'lume-api-key'")
