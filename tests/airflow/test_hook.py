"""The provider as Airflow sees it, and LumeHook's clients built from ``lume`` connections."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

from lume_airflow import LumeHook
from lume_async import AsyncLume

pytestmark = pytest.mark.anyio


@pytest.fixture
def connection() -> Iterator[Any]:
    """Define ``lume_test`` from a JSON object or a URI for the length of the test."""

    def define(value: dict[str, Any] | str) -> str:
        os.environ["AIRFLOW_CONN_LUME_TEST"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
        return "lume_test"

    yield define
    os.environ.pop("AIRFLOW_CONN_LUME_TEST", None)


def test_airflow_finds_the_provider_and_its_connection_type() -> None:
    provider = ProvidersManager().providers["lume-sdk"]
    hook = ProvidersManagerTaskRuntime().hooks["lume"]

    assert provider.data["connection-types"][0]["connection-type"] == "lume"
    assert hook is not None
    assert hook.hook_class_name == "lume_airflow.LumeHook"
    assert hook.connection_id_attribute_name == "lume_conn_id"


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "https://api.lume.ai"}, "https://api.lume.ai"),
        ({"host": "https://api.lume.ai/"}, "https://api.lume.ai"),
        ({"host": "lume.example.com"}, "https://lume.example.com"),
        ({"host": "lume.example.com", "port": 8443}, "https://lume.example.com:8443"),
        ({"host": "http://127.0.0.1:8080", "port": 9}, "http://127.0.0.1:8080"),
    ],
)
def test_the_host_is_the_base_url(connection: Any, fields: dict[str, Any], base_url: str) -> None:
    conn_id = connection({"conn_type": "lume", "password": "k", **fields})

    with LumeHook(conn_id).get_client() as lume:
        assert lume.base_url == base_url


@pytest.mark.parametrize(
    ("uri", "base_url"),
    [
        ("lume://http://:k@127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("lume://:k@lume.example.com", "https://lume.example.com"),
        ("lume://https://:k@lume.example.com:8443", "https://lume.example.com:8443"),
    ],
)
def test_a_connection_uri_gives_the_base_url(connection: Any, uri: str, base_url: str) -> None:
    with LumeHook(connection(uri)).get_client() as lume:
        assert lume.base_url == base_url


def test_an_empty_host_falls_back_to_the_environment(
    connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUME_BASE_URL", "https://eu.lume.example.com")
    conn_id = connection({"conn_type": "lume", "password": "k"})

    with LumeHook(conn_id).get_client() as lume:
        assert lume.base_url == "https://eu.lume.example.com"


def test_the_password_is_the_api_key(emu: Any, connection: Any) -> None:
    good = LumeHook(connection({"conn_type": "lume", "host": emu.url, "password": emu.api_key}))
    assert good.test_connection() == (True, "Connected: 2 flows visible")

    bad = LumeHook(connection({"conn_type": "lume", "host": emu.url, "password": "wrong"}))
    ok, message = bad.test_connection()
    assert not ok
    assert "401" in message


def test_lume_default_is_the_default_connection(emu: Any) -> None:
    with LumeHook().get_client() as lume:
        assert lume.base_url == emu.url
        assert [flow.name for flow in lume.flows.list()] == ["customer_cleaner", "invoice_mapper"]


async def test_the_async_client_is_built_without_blocking_the_loop(emu: Any) -> None:
    lume = await LumeHook().get_async_client()

    async with lume:
        assert isinstance(lume, AsyncLume)
        assert len(await lume.flows.list().collect()) == 2


@pytest.mark.parametrize(("conn_id", "error"), [("", ValueError), (7, TypeError)])
def test_a_bad_connection_id_is_refused_by_name(conn_id: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="lume_conn_id"):
        LumeHook(conn_id)
