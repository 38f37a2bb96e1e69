from __future__ import annotations

import time

import aiohttp
import pytest

from lume_async.testing import Emulator, FaultProfile

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio


async def _statuses(profile: FaultProfile, n: int) -> list[str]:
    async with (
        Emulator(faults=profile) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        out = []
        for _ in range(n):
            try:
                async with api.get("/v1/flows") as resp:
                    await resp.read()
                    out.append(str(resp.status))
            except aiohttp.ClientError:
                out.append("error")
        return out


async def test_same_seed_gives_the_same_fault_sequence() -> None:
    profile = FaultProfile(rate=0.5, kinds=("500", "503", "429", "502"), seed=7)
    first = await _statuses(profile, 30)
    assert first == await _statuses(profile, 30)
    assert {"200", "500"} <= set(first)
    assert first != await _statuses(
        FaultProfile(rate=0.5, kinds=("500", "503", "429", "502"), seed=8), 30
    )


async def test_before_phase_never_runs_the_handler(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("500",), phase="before"))
    status, body = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "a"}
    )
    assert (status, body["code"]) == (500, "internal")
    assert emu.stats()["runs_created"] == 0


async def test_after_phase_does_the_work_and_loses_the_answer(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("502",), phase="after"))
    status, _ = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": "a"}
    )
    assert status == 502
    assert emu.stats()["runs_created"] == 1


async def test_429_and_503_faults_carry_retry_after(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    for kind in ("429", "503"):
        emu.set_faults(FaultProfile(rate=1.0, kinds=(kind,), retry_after=2.5))
        async with api.get("/v1/flows") as resp:
            assert resp.status == int(kind)
            assert resp.headers["Retry-After"] == "3"
            assert resp.headers["retry-after-ms"] == "2500"


async def test_reset_closes_the_connection_and_is_counted(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("reset",)))
    with pytest.raises(aiohttp.ClientError):
        await call(api, "GET", "/v1/flows")
    # aiohttp may retry an idempotent GET once on a fresh connection: both are reset.
    assert set(emu.stats()["requests"]["GET /v1/flows"]) == {"reset"}


async def test_truncate_cuts_the_body_short(emu: Emulator, api: aiohttp.ClientSession) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("truncate",), phase="after"))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with api.get("/v1/flows") as resp:
            await resp.read()


async def test_delay_answers_late(emu: Emulator, api: aiohttp.ClientSession) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), delay=0.2))
    start = time.monotonic()
    status, _ = await call(api, "GET", "/v1/flows")
    assert status == 200
    assert time.monotonic() - start >= 0.2


async def test_faults_spare_the_control_plane_and_the_openapi_document(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("500",)))
    assert (await call(api, "GET", "/v1/openapi.json"))[0] == 200
    assert (await call(api, "GET", "/_emulator/stats"))[0] == 200
    status, _ = await call(api, "POST", "/_emulator/faults", json={"rate": 0})
    assert status == 200
    assert (await call(api, "GET", "/v1/flows"))[0] == 200


async def test_fault_profile_over_http_is_validated(api: aiohttp.ClientSession) -> None:
    status, _ = await call(api, "POST", "/_emulator/faults", json={"rate": 2})
    assert status == 422
    status, _ = await call(api, "POST", "/_emulator/faults", json={"rate": 0.1, "kinds": ["boom"]})
    assert status == 422


def test_fault_profile_is_a_frozen_validated_value() -> None:
    profile = FaultProfile(rate=0.2, kinds=("500", "reset"), phase="before", seed=1)
    assert profile.kinds == ("500", "reset")
    with pytest.raises(ValueError, match="rate"):
        FaultProfile(rate=1.5)
    with pytest.raises(ValueError, match="phase"):
        FaultProfile(phase="during")  # type: ignore[arg-type]


async def test_rate_limit_answers_429_with_retry_after() -> None:
    async with (
        Emulator(rate_limit=5, rate_burst=3) as emu,
        aiohttp.ClientSession(emu.url, headers={"lume-api-key": emu.api_key}) as api,
    ):
        statuses = [(await call(api, "GET", "/v1/flows"))[0] for _ in range(6)]
        assert statuses[:3] == [200, 200, 200]
        assert 429 in statuses[3:]
        async with api.get("/v1/flows") as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
        _, body = await call(api, "POST", "/_emulator/config", json={"rate_limit": None})
        assert body["rate_limit"] is None
        assert (await call(api, "GET", "/v1/flows"))[0] == 200
