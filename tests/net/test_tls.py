"""Custom CA bundles: ``ca_bundle=`` and ``$LUME_CA_BUNDLE`` against a real TLS handshake."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from lume_async import APIConnectionError, AsyncLume
from lume_async.testing import Emulator

from .conftest import TlsFront

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"


@pytest.fixture(autouse=True)
def no_ambient_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUME_CA_BUNDLE", raising=False)


def url(front: TlsFront) -> str:
    return f"https://localhost:{front.port}"


async def test_a_ca_bundle_path_is_trusted(
    tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front), ca_bundle=ca_file) as lume:
        assert (await lume.run(FLOW, "s3://bucket/tls")).flow_version == FLOW


async def test_a_ca_bundle_may_be_a_path_object(
    tls_front: TlsFront, emu: Emulator, ca_file: str
) -> None:
    bundle = Path(ca_file)
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front), ca_bundle=bundle) as lume:
        await lume.run(FLOW, "s3://bucket/tls")


async def test_the_environment_names_the_bundle(
    tls_front: TlsFront, emu: Emulator, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUME_CA_BUNDLE", ca_file)
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front)) as lume:
        await lume.run(FLOW, "s3://bucket/tls")


async def test_without_the_bundle_the_certificate_is_refused(
    tls_front: TlsFront, emu: Emulator
) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front)) as lume:
        with pytest.raises(APIConnectionError, match="certificate"):
            await lume.run(FLOW, "s3://bucket/tls")
    assert emu.stats()["runs_created"] == 0


async def test_the_bundle_replaces_the_system_cas(
    tls_front: TlsFront, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("LUME_CA_BUNDLE", str(other))
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front)) as lume:
        with pytest.raises(APIConnectionError, match="certificate"):
            await lume.run(FLOW, "s3://bucket/tls")


async def test_an_explicit_ssl_context_wins_over_the_environment(
    tls_front: TlsFront,
    emu: Emulator,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LUME_CA_BUNDLE", str(tmp_path / "missing.pem"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with AsyncLume(api_key=emu.api_key, base_url=url(tls_front), ssl_context=context) as lume:
        await lume.run(FLOW, "s3://bucket/tls")


def test_ssl_context_and_ca_bundle_together_are_refused(ca_file: str) -> None:
    with pytest.raises(TypeError, match="ssl_context or ca_bundle, not both"):
        AsyncLume(api_key="k", ssl_context=ssl.create_default_context(), ca_bundle=ca_file)


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_a_missing_bundle_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    missing = str(tmp_path / "missing.pem")
    if where == "environment":
        monkeypatch.setenv("LUME_CA_BUNDLE", missing)
        with pytest.raises(ValueError, match=r"\$LUME_CA_BUNDLE: no such file"):
            AsyncLume(api_key="k")
    else:
        with pytest.raises(ValueError, match="ca_bundle: no such file"):
            AsyncLume(api_key="k", ca_bundle=missing)


def test_a_bundle_that_is_not_pem_is_refused_at_once(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="ca_bundle: cannot load CA certificates"):
        AsyncLume(api_key="k", ca_bundle=str(junk))


@pytest.mark.parametrize("value", [3, b"/etc/ssl/ca.pem", ""])
def test_a_bundle_that_is_not_a_path_is_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="ca_bundle"):
        AsyncLume(api_key="k", ca_bundle=value)  # type: ignore[arg-type]
