"""Each class of the error tree is raised for the situation it names, with its details."""

from __future__ import annotations

import socket

import pytest

from lume_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncLume,
    AuthenticationError,
    InvalidRequestError,
    LumeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    Timeout,
)
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from ._scripted import RUN_ID, Answer, ScriptedServer

pytestmark = pytest.mark.anyio


async def test_a_wrong_key_is_an_authentication_error(emu: Emulator) -> None:
    async with AsyncLume(api_key="lume_wrong", base_url=emu.url) as lume:
        with pytest.raises(AuthenticationError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.status_code == 401
    assert "lume_wrong" not in str(caught.value)


async def test_a_403_is_permission_denied(scripted: ScriptedServer) -> None:
    scripted.then(Answer(403, {"detail": "read-only key", "code": "forbidden", "error_id": "e1"}))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(PermissionDeniedError) as caught:
            await lume.runs.get(RUN_ID)
    error = caught.value
    assert (error.status_code, error.code, error.error_id, error.request_id) == (
        403,
        "forbidden",
        "e1",
        "req_test",
    )
    assert "read-only key" in str(error)


async def test_an_unknown_flow_version_is_not_found(lume: AsyncLume) -> None:
    with pytest.raises(NotFoundError):
        await lume.run("nope_flow:v9", "s3://bucket/x")


async def test_a_422_lists_the_fields_in_its_message(scripted: ScriptedServer) -> None:
    detail = [{"loc": ["body", "source_path"], "msg": "field required", "type": "missing"}]
    scripted.then(Answer(422, {"detail": detail, "code": "validation_error", "error_id": "e2"}))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(InvalidRequestError, match=r"body\.source_path: field required"):
            await lume.runs.get(RUN_ID)


async def test_rate_limiting_is_a_rate_limit_error_with_retry_after(emu: Emulator) -> None:
    emu.set_rate_limit(0.01, burst=1)  # one request, then none for 100 s
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, max_retries=0) as lume:
        await lume.flows.list().collect()
        with pytest.raises(RateLimitError) as caught:
            await lume.flows.list().collect()
    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


async def test_a_5xx_that_outlasts_the_retries_is_a_server_error(
    emu: Emulator, clock: VirtualClock
) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("503",), phase="before"))
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.status_code == 503


async def test_a_closed_port_is_a_connection_error(clock: VirtualClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncLume(api_key="k", base_url=f"http://127.0.0.1:{port}", clock=clock) as lume:
        with pytest.raises(APIConnectionError, match="cannot connect") as caught:
            await lume.runs.get(RUN_ID)
    assert not isinstance(caught.value.__cause__, LumeError)  # the aiohttp error is chained


async def test_a_slow_answer_is_a_timeout_error(emu: Emulator, clock: VirtualClock) -> None:
    emu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), delay=2.0))
    async with AsyncLume(
        api_key=emu.api_key,
        base_url=emu.url,
        timeout=Timeout(total=0.1),
        max_retries=1,
        clock=clock,
    ) as lume:
        with pytest.raises(APITimeoutError) as caught:
            await lume.runs.get(RUN_ID)
    assert isinstance(caught.value, TimeoutError)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"id": 5}', b"[]", b'{"id": "run_x", "status": "SUCCEEDED"}'],
)
async def test_a_malformed_answer_is_a_response_validation_error(
    scripted: ScriptedServer, body: bytes
) -> None:
    scripted.then(Answer(200, body))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(ResponseValidationError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.request_id == "req_test"


async def test_a_redirect_is_not_followed_and_the_key_is_not_forwarded(
    scripted: ScriptedServer,
) -> None:
    async with ScriptedServer() as elsewhere:
        scripted.then(Answer(307, b"", {"Location": f"{elsewhere.url}/v1/runs/{RUN_ID}"}))
        async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
            with pytest.raises(LumeError, match="redirect"):
                await lume.runs.get(RUN_ID)
        assert elsewhere.seen == []
