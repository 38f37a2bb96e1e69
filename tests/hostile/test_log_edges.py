"""What the SDK logs when answers or arguments are hostile: bounded, escaped, at the right level."""

from __future__ import annotations

import logging

import anyio
import orjson
import pytest

from lume_async import AsyncLume, RunRequest
from lume_async.testing import VirtualClock

from ..core._scripted import RUN_ID, Answer, ScriptedServer, Seen, run_json
from ._servers import RawServer, raw

pytestmark = pytest.mark.anyio

HTTP = "lume_async.http"
RETRY = "lume_async.retry"
CONTROL = ("\n", "\r", "\x1b", "\x07")


def http_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == HTTP]


async def test_a_huge_request_id_is_cut_in_the_request_log(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HTTP)
    huge = "req_" + "x" * 6000
    scripted.then(Answer(200, run_json(), {"x-request-id": huge}))
    with anyio.fail_after(10):
        async with AsyncLume(api_key="k_logs", base_url=scripted.url, max_retries=0) as lume:
            await lume.run_status(RUN_ID)
    (record,) = http_lines(caplog)
    assert len(record.getMessage()) < 1000
    assert len(record.request_id) <= 200  # type: ignore[attr-defined]


async def test_a_request_id_with_control_characters_is_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HTTP)
    body = orjson.dumps(run_json())
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"x-request-id: req_\x1b[2J\x07\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with anyio.fail_after(10):
        async with (
            RawServer(raw(answer)) as server,
            AsyncLume(api_key="k_logs", base_url=server.url, max_retries=0) as lume,
        ):
            await lume.run_status(RUN_ID)
    (record,) = http_lines(caplog)
    assert not any(c in record.getMessage() for c in CONTROL)
    assert "req_" in record.getMessage()


async def test_a_retried_error_cannot_forge_log_lines(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RETRY)
    detail = "busy\nGET /v1/runs 200 1.0 ms attempt=1\x1b[31m"
    scripted.then(Answer(503, {"detail": detail}), Answer(200, run_json()))
    with anyio.fail_after(10):
        async with AsyncLume(
            api_key="k_logs", base_url=scripted.url, max_retries=1, clock=VirtualClock()
        ) as lume:
            await lume.run_status(RUN_ID)
    (record,) = [r for r in caplog.records if r.name == RETRY]
    assert "busy" in record.getMessage()
    assert not any(c in record.getMessage() for c in CONTROL)


async def test_a_query_value_cannot_forge_a_log_line(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=HTTP)
    scripted.then(Answer(200, {"items": [], "next_page_token": None, "total": 0}))
    with anyio.fail_after(10):
        async with AsyncLume(api_key="k_logs", base_url=scripted.url, max_retries=0) as lume:
            forged = "x\nGET /v1/runs 200 1.0 ms attempt=1"
            await lume.runs.list(label=forged, page_size=5).collect()
    (record,) = http_lines(caplog)
    assert "\n" not in record.getMessage()


async def test_a_refused_batch_create_is_logged_on_one_escaped_line(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lume_async.runs")

    def respond(seen: Seen) -> Answer:
        if seen.path == "/v1/runs/batch-create":
            return Answer(404, {"detail": "no such route\nforged line\x1b[31m"})
        source = orjson.loads(seen.body)["source_path"]
        run_id = f"run_01HY{len(scripted.seen):022d}"
        return Answer(201, {**run_json(run_id), "source_path": source})

    scripted.respond = respond
    flow = "customer_cleaner:v1"
    requests = [RunRequest(flow, source_path=f"s3://bucket/r{i}") for i in range(20)]
    with anyio.fail_after(10):
        async with AsyncLume(api_key="k_logs", base_url=scripted.url, max_retries=0) as lume:
            await lume.runs.create_many(requests, concurrency=1)
    (record,) = [r for r in caplog.records if "refused batch creates" in r.getMessage()]
    assert "no such route" in record.getMessage()
    assert not any(c in record.getMessage() for c in CONTROL)
