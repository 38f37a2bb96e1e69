"""Single-run, flow and webhook-endpoint operations: errors, what they carry, and the data kept.

Every error status maps to its class on every operation and keeps what the service said; an
error survives ``pickle`` and ``copy`` with all it carries; labels, tags, run metadata and rows
read back as given through update and rerun; a late answer does not undo a newer one on a
handle; a failed run is reported as failed whatever else goes wrong while reporting it; and an
answer the SDK cannot read names the request it came in.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from lume_async import (
    APIError,
    AsyncLume,
    AuthenticationError,
    DuplicateRunError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    RunFailedError,
    RunNotFoundError,
    ServerError,
)
from lume_async.testing import VirtualClock

from ..core._scripted import Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio

KEY = "lume_operation_edges_key_0123456789"
FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:00:05Z"


@contextlib.asynccontextmanager
async def client_of(server: ScriptedServer) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(
        api_key=KEY, base_url=server.url, max_retries=0, clock=VirtualClock()
    ) as client:
        yield client


# -- every error status, on every operation -------------------------------------------------------

EXPECTED: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: InvalidRequestError,
    410: APIError,
    418: APIError,
    422: InvalidRequestError,
    429: RateLimitError,
    451: APIError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
    599: ServerError,
}

Operation = Callable[[AsyncLume], Awaitable[object]]


async def _refresh(lume: AsyncLume) -> object:
    run = await lume.runs.get(RUN_ID)
    return await run.refresh()


async def _handle_cancel(lume: AsyncLume) -> object:
    run = await lume.runs.get(RUN_ID)
    return await run.cancel()


async def _handle_update(lume: AsyncLume) -> object:
    run = await lume.runs.get(RUN_ID)
    return await run.update(label="x")


async def _input(lume: AsyncLume) -> object:
    run = await lume.runs.get(RUN_ID)
    return await run.input().collect()


OPERATIONS: dict[str, tuple[Operation, int]] = {
    # name: (operation, answers before the one that fails)
    "run": (lambda lume: lume.run(FLOW, "s3://bucket/x"), 0),
    "runs.get": (lambda lume: lume.runs.get(RUN_ID), 0),
    "runs.update": (lambda lume: lume.runs.update(RUN_ID, tags=[]), 0),
    "runs.cancel": (lambda lume: lume.runs.cancel(RUN_ID), 0),
    "run.refresh": (_refresh, 1),
    "run.cancel": (_handle_cancel, 1),
    "run.update": (_handle_update, 1),
    "run.input": (_input, 1),
    "flows.get": (lambda lume: lume.flows.get("customer_cleaner"), 0),
    "flows.list": (lambda lume: lume.flows.list().collect(), 0),
    "webhook_endpoints.create": (
        lambda lume: lume.webhook_endpoints.create("https://example.com/hook"),
        0,
    ),
    "webhook_endpoints.get": (lambda lume: lume.webhook_endpoints.get("wh_01"), 0),
    "webhook_endpoints.delete": (lambda lume: lume.webhook_endpoints.delete("wh_01"), 0),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_every_error_status_maps_to_its_class_and_keeps_what_the_service_said(
    scripted: ScriptedServer, name: str
) -> None:
    operation, before = OPERATIONS[name]
    run_scoped = name.startswith("run") and name != "run"
    async with client_of(scripted) as lume:
        for status, cls in EXPECTED.items():
            scripted.script.clear()
            scripted.then(*[Answer(200, run_json()) for _ in range(before)])
            body = {"detail": "refused here", "code": "some_code", "error_id": "err_1"}
            scripted.then(Answer(status, body, {"x-request-id": "req_refused"}))
            with pytest.raises(APIError) as caught:
                await operation(lume)
            err = caught.value
            want: type[APIError] = cls
            if status == 404 and run_scoped:
                want = RunNotFoundError
            assert type(err) is want, (status, name)
            assert (err.status_code, err.code, err.error_id, err.request_id, err.message) == (
                status,
                "some_code",
                "err_1",
                "req_refused",
                "refused here",
            )
            assert err.body == body


# -- errors survive pickle and copy ----------------------------------------------------------------


def _twice(err: BaseException, how: str) -> BaseException:
    if how == "copy":
        return copy.copy(err)
    return pickle.loads(pickle.dumps(err))  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", ["pickle", "copy"])
async def test_a_duplicate_run_error_survives_pickle_and_copy_with_all_it_carries(
    vlume: AsyncLume, how: str
) -> None:
    first = await vlume.run(FLOW, "s3://bucket/pickled")
    await first.wait(poll_interval=1)
    with pytest.raises(DuplicateRunError) as caught:
        await vlume.run(FLOW, "s3://bucket/pickled")
    err = caught.value
    again = _twice(err, how)
    assert type(again) is DuplicateRunError
    assert isinstance(again, DuplicateRunError)
    kept = ("status_code", "code", "error_id", "request_id", "message", "body", "existing_run_id")
    assert {a: getattr(again, a) for a in kept} == {a: getattr(err, a) for a in kept}
    assert again.existing_run_id == first.id
    assert str(again) == str(err)


@pytest.mark.parametrize("how", ["pickle", "copy"])
async def test_a_permission_error_from_the_service_survives_pickle_and_copy(
    scripted: ScriptedServer, how: str
) -> None:
    scripted.then(Answer(403, {"detail": "monitors cannot cancel", "code": "permission_denied"}))
    async with client_of(scripted) as lume:
        with pytest.raises(PermissionDeniedError) as caught:
            await lume.runs.cancel(RUN_ID)
    again = _twice(caught.value, how)
    assert isinstance(again, PermissionDeniedError)
    assert (again.status_code, again.code, again.operation) == (403, "permission_denied", "cancel")


async def test_a_run_failed_error_can_be_copied_with_its_run(vlume: AsyncLume) -> None:
    run = await vlume.run(FLOW, "synthetic://copied?rows=5&duration=2&outcome=CRASHED")
    await run.wait(poll_interval=1)
    with pytest.raises(RunFailedError) as caught:
        run.raise_for_status()
    again = copy.copy(caught.value)
    assert isinstance(again, RunFailedError)
    assert again.run is run
    assert str(again) == str(caught.value)


# -- labels, tags, metadata and rows round-trip ---------------------------------------------------


async def test_labels_tags_and_metadata_round_trip_through_update_and_rerun(
    vlume: AsyncLume,
) -> None:
    label = "\U0001d11e e\u0301 \u202eRTL\u202c \x00 nul"
    tags = ["\U0001f600", "dup", "dup", "e\u0301"]
    metadata = {"neg_zero": -0.0, "huge": 1e308, "max": 2**63 - 1, "deep": [[[{"": ""}]]]}
    rows = [{"name": "\U0001d11e", "email": "a@b.c", "age": 30, "note": "\u202e\x00"}]
    run = await vlume.run(FLOW, source_data=rows, label=label, tags=tags, run_metadata=metadata)
    fetched = await vlume.runs.get(run.id)
    assert (fetched.label, list(fetched.tags), fetched.run_metadata) == (label, tags, metadata)
    kept = await vlume.runs.update(run.id, label="relabelled")
    assert (kept.label, list(kept.tags)) == ("relabelled", tags)  # tags=None keeps them
    emptied = await vlume.runs.update(run.id, tags=[])
    assert (emptied.label, emptied.tags) == ("relabelled", ())  # [] empties them
    again = await fetched.rerun()
    assert again.id != run.id
    assert (again.label, list(again.tags), again.run_metadata) == (label, tags, metadata)
    assert await again.input().collect() == rows


# -- a late answer does not undo a newer one -------------------------------------------------------


class SlowReadService:
    """A run whose second GET is answered, as it stood then, only after a PATCH changed it."""

    def __init__(self) -> None:
        self.gets = 0
        self.read_arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    @staticmethod
    def run(label: str, updated_at: str) -> dict[str, Any]:
        return {**run_json(status="TRANSFORMING"), "label": label, "updated_at": updated_at}

    async def get(self, request: web.Request) -> web.Response:
        self.gets += 1
        if self.gets > 1:
            self.read_arrived.set()
            await self.release.wait()
        return web.json_response(self.run("before", NOW))

    async def patch(self, request: web.Request) -> web.Response:
        return web.json_response(self.run("after", LATER))

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(cls) -> AsyncIterator[SlowReadService]:
        service = cls()
        app = web.Application()
        app.router.add_get("/v1/runs/{run_id}", service.get)
        app.router.add_patch("/v1/runs/{run_id}", service.patch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield service
        finally:
            service.release.set()
            await runner.cleanup()


async def test_a_read_answered_late_does_not_undo_an_update_on_the_handle() -> None:
    async with (
        SlowReadService.serving() as service,
        AsyncLume(api_key=KEY, base_url=service.url, max_retries=0) as lume,
    ):
        run = await lume.runs.get(RUN_ID)
        late = asyncio.create_task(run.refresh())
        await service.read_arrived.wait()
        await run.update(label="after")
        assert run.label == "after"
        service.release.set()
        await late
        assert run.label == "after"
        assert run.updated_at.isoformat().startswith("2026-01-01T00:00:05")


# -- a failed run is reported as failed ------------------------------------------------------------


def _failed_run(metadata: Any) -> dict[str, Any]:
    return {
        **run_json(status="FAILED"),
        "metadata": metadata,
        "error": {"code": "all_rows_rejected", "message": "every row failed validation"},
    }


MALFORMED = {"results": {"input_rows": 2, "mapped_rows": 0, "rejected_rows": "two"}}


async def test_raise_for_status_of_a_failed_run_with_malformed_metadata_is_run_failed(
    scripted: ScriptedServer,
) -> None:
    scripted.then(Answer(200, _failed_run(MALFORMED)))
    async with client_of(scripted) as lume:
        run = await lume.runs.get(RUN_ID)
        with pytest.raises(RunFailedError) as caught:
            run.raise_for_status()
    assert caught.value.run is run
    assert "FAILED" in str(caught.value)


async def test_process_of_a_failed_run_with_malformed_metadata_is_run_failed(
    scripted: ScriptedServer,
) -> None:
    scripted.then(Answer(201, _failed_run(MALFORMED)))
    async with client_of(scripted) as lume:
        with pytest.raises(RunFailedError) as caught:
            await lume.process(FLOW, source_data=[{"a": 1}, {"a": 2}])
    assert caught.value.run.id == RUN_ID


async def test_process_of_a_failed_run_whose_rejects_cannot_be_read_is_run_failed(
    scripted: ScriptedServer,
) -> None:
    counts = {"results": {"input_rows": 2, "mapped_rows": 0, "rejected_rows": 2}}
    scripted.then(
        Answer(201, _failed_run(counts)),
        Answer(500, {"detail": "storage unavailable", "code": "internal"}),
    )
    async with client_of(scripted) as lume:
        with pytest.raises(RunFailedError) as caught:
            await lume.process(FLOW, source_data=[{"a": 1}, {"a": 2}])
    assert caught.value.run.id == RUN_ID
    assert caught.value.run.status == "FAILED"
    assert isinstance(caught.value.__cause__, ServerError)


async def test_process_of_a_run_whose_rows_cannot_be_read_names_the_run_in_the_error(
    scripted: ScriptedServer,
) -> None:
    scripted.then(
        Answer(201, run_json(status="SUCCEEDED")),
        Answer(500, {"detail": "storage unavailable", "code": "internal"}),
    )
    async with client_of(scripted) as lume:
        with pytest.raises(ServerError) as caught:
            await lume.process(FLOW, source_data=[{"a": 1}, {"a": 2}])
    assert any(RUN_ID in note and "SUCCEEDED" in note for note in caught.value.__notes__)


# -- an answer that cannot be read names its request ----------------------------------------------

UNREADABLE: dict[str, Operation] = {
    "runs.get": lambda lume: lume.runs.get(RUN_ID),
    "flows.get": lambda lume: lume.flows.get("customer_cleaner"),
    "webhook_endpoints.get": lambda lume: lume.webhook_endpoints.get("wh_01"),
    "webhook_endpoints.create": lambda lume: lume.webhook_endpoints.create("https://e.com/h"),
}


@pytest.mark.parametrize(
    "name",
    [
        "runs.get",
        pytest.param("flows.get"),
        pytest.param("webhook_endpoints.get"),
        pytest.param("webhook_endpoints.create"),
    ],
)
async def test_an_answer_of_the_wrong_shape_is_a_validation_error_naming_its_request(
    scripted: ScriptedServer, name: str
) -> None:
    scripted.then(Answer(200, {"unexpected": True}, {"x-request-id": "req_unreadable"}))
    async with client_of(scripted) as lume:
        with pytest.raises(ResponseValidationError) as caught:
            await UNREADABLE[name](lume)
    assert caught.value.request_id == "req_unreadable"
