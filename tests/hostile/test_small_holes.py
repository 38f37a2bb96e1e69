"""Smaller correctness holes: what the server said is honoured, and no answer misleads the client.

A ``Retry-After`` date is waited out like a number of seconds; a run one ``batch-get`` answer
leaves out is looked up directly before its waiters are told it is gone; ``process(timeout=)``
bounds the whole call; a retried delete whose first answer was lost is done, not missing; a run
whose metadata is malformed still prints and compares.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import (
    AsyncLume,
    NotFoundError,
    RetryPolicy,
    RunData,
    RunNotFoundError,
    RunStatus,
    RunTimeoutError,
    ServerError,
)
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from .._profiles import examples
from ._servers import RawServer, head, json_answer

pytestmark = pytest.mark.anyio

KEY = "lume_small_holes_key_0123456789"
FLOW = "customer_cleaner:v1"
RUN_ID = "run_01HY0000000000000000000000"
NOW = "2026-01-01T00:00:00Z"


def run_json(status: str = "TRANSFORMING", **extra: Any) -> dict[str, Any]:
    return {
        "id": RUN_ID,
        "status": status,
        "flow_version": FLOW,
        "created_at": NOW,
        "updated_at": NOW,
        **extra,
    }


# -- Retry-After as an HTTP date ----------------------------------------------------------------

DATE_FORMATS = {
    "IMF-fixdate": lambda t: email.utils.formatdate(t, usegmt=True),
    "RFC 850": lambda t: time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t)),
    "asctime": lambda t: time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(t)),
}


def _busy_until(clock: VirtualClock, delay: float, form: str) -> Any:
    """503 with ``Retry-After`` as a date ``delay`` seconds ahead (on the client's clock), then
    the run."""
    answers = 0

    async def write(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        nonlocal answers
        answers += 1
        if answers == 1:
            when = DATE_FORMATS[form](clock.time() + delay)
            writer.write(head(503, retry_after=when, content_length=0))
            await writer.drain()
            return True
        return await json_answer(run_json())(_, writer)

    return write


@settings(max_examples=examples(25), deadline=None, database=None)
@given(delay=st.integers(min_value=2, max_value=55), form=st.sampled_from(list(DATE_FORMATS)))
async def test_a_retry_after_date_is_waited_out(delay: int, form: str) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=1, max_retry_after=60)
    async with (
        RawServer(_busy_until(clock, delay, form)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, retry=policy, clock=clock) as lume,
    ):
        start = clock.monotonic()
        await lume.runs.get(RUN_ID)
        waited = clock.monotonic() - start
    # A date has whole seconds: up to one less than asked; plus at most a quarter of jitter.
    assert delay - 1 <= waited <= delay * 1.25 + 0.01
    assert server.requests == 2


@pytest.mark.parametrize("form", list(DATE_FORMATS))
async def test_a_retry_after_date_in_the_past_means_now(form: str) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=1, base_delay=30, max_delay=30)
    async with (
        RawServer(_busy_until(clock, -3600, form)) as server,
        AsyncLume(api_key=KEY, base_url=server.url, retry=policy, clock=clock) as lume,
    ):
        await lume.runs.get(RUN_ID)
    assert clock.monotonic() == 0  # not our own backoff of up to 30 s either


async def test_a_retry_after_date_past_max_retry_after_is_not_waited_out() -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=3, max_retry_after=60)
    async with (
        RawServer(_busy_until(clock, 600, "IMF-fixdate")) as server,
        AsyncLume(api_key=KEY, base_url=server.url, retry=policy, clock=clock) as lume,
    ):
        with pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert caught.value.retry_after is not None
    assert 599 <= caught.value.retry_after <= 600
    assert "max_retry_after" in " ".join(caught.value.__notes__)
    assert server.requests == 1


# -- batch-get answers that leave a run out -----------------------------------------------------


class LaggingService:
    """``batch-get`` from a lagging replica (it leaves the run out of its first answers), and a
    direct GET that says ``direct`` (a status, ``404`` or ``503``)."""

    def __init__(self, *, omitted: int, direct: str) -> None:
        self.omitted = omitted
        self.direct = direct
        self.status = "TRANSFORMING"
        self.batches = 0
        self.gets = 0
        self.url = ""

    async def batch(self, request: web.Request) -> web.Response:
        self.batches += 1
        if self.batches <= self.omitted:
            return web.json_response({"items": [], "missing": [RUN_ID]})
        return web.json_response({"items": [run_json(self.status)], "missing": []})

    async def get(self, request: web.Request) -> web.Response:
        self.gets += 1
        if self.gets == 1:
            return web.json_response(run_json())  # the create-time read
        if self.direct in ("404", "503"):
            return web.json_response({"detail": "no"}, status=int(self.direct))
        return web.json_response(run_json(self.direct))

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(cls, **kwargs: Any) -> AsyncIterator[LaggingService]:
        service = cls(**kwargs)
        app = web.Application()
        app.router.add_post("/v1/runs/batch-get", service.batch)
        app.router.add_get("/v1/runs/{run_id}", service.get)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield service
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("omitted", [1, 3])
async def test_a_run_left_out_but_found_directly_is_waited_on(omitted: int) -> None:
    clock = VirtualClock()
    async with LaggingService.serving(omitted=omitted, direct="TRANSFORMING") as service:
        async with AsyncLume(api_key=KEY, base_url=service.url, clock=clock) as lume:
            run = await lume.runs.get(RUN_ID)

            async def finish() -> None:
                await clock.sleep(10)
                service.status = "SUCCEEDED"

            task = asyncio.create_task(finish())
            await run.wait(timeout=60, poll_interval=1)
            await task
        assert run.status is RunStatus.SUCCEEDED
        assert service.gets == 1 + omitted  # one direct look per answer that left it out


async def test_a_run_left_out_that_ended_meanwhile_ends_the_wait() -> None:
    clock = VirtualClock()
    async with LaggingService.serving(omitted=1, direct="SUCCEEDED") as service:
        async with AsyncLume(api_key=KEY, base_url=service.url, clock=clock) as lume:
            run = await lume.runs.get(RUN_ID)
            await run.wait(timeout=60, poll_interval=1)
        assert run.status is RunStatus.SUCCEEDED
        assert service.batches == 1


async def test_a_run_left_out_and_missing_directly_fails_its_waiter() -> None:
    clock = VirtualClock()
    async with (
        LaggingService.serving(omitted=1, direct="404") as service,
        AsyncLume(api_key=KEY, base_url=service.url, clock=clock) as lume,
    ):
        run = await lume.runs.get(RUN_ID)
        with pytest.raises(RunNotFoundError):
            await run.wait(timeout=60, poll_interval=1)


async def test_a_failed_direct_look_is_not_taken_for_missing() -> None:
    clock = VirtualClock()
    async with LaggingService.serving(omitted=1, direct="503") as service:
        async with AsyncLume(api_key=KEY, base_url=service.url, clock=clock, max_retries=0) as lume:
            run = await lume.runs.get(RUN_ID)
            service.status = "SUCCEEDED"
            await run.wait(timeout=600, poll_interval=1)
        assert run.status is RunStatus.SUCCEEDED


# -- process(timeout=) bounds the whole call ----------------------------------------------------


class SlowService:
    """Just enough of the API for ``process()``; the stage named ``hang`` never answers."""

    def __init__(self, hang: str) -> None:
        self.hang = hang
        self.url = ""

    async def _maybe_hang(self, stage: str) -> None:
        if stage == self.hang:
            await asyncio.Event().wait()

    async def create(self, request: web.Request) -> web.Response:
        await self._maybe_hang("create")
        return web.json_response(run_json("PENDING"), status=201)

    async def batch(self, request: web.Request) -> web.Response:
        await self._maybe_hang("wait")
        return web.json_response({"items": [run_json("SUCCEEDED")], "missing": []})

    async def page(self, request: web.Request) -> web.Response:
        await self._maybe_hang(request.match_info["what"])
        return web.json_response({"items": [], "total": 0, "page": 1, "size": 100, "pages": 0})

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(cls, hang: str) -> AsyncIterator[SlowService]:
        service = cls(hang)
        app = web.Application()
        app.router.add_post("/v1/runs", service.create)
        app.router.add_post("/v1/runs/batch-get", service.batch)
        app.router.add_get("/v1/runs/{run_id}/{what}", service.page)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield service
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("hang", ["create", "wait", "results", "rejects"])
async def test_process_timeout_bounds_creating_waiting_and_collecting(hang: str) -> None:
    clock = VirtualClock()
    async with SlowService.serving(hang) as service:
        async with AsyncLume(api_key=KEY, base_url=service.url, clock=clock) as lume:
            with pytest.raises(RunTimeoutError) as caught:
                await lume.process(FLOW, "s3://bucket/slow", timeout=30, poll_interval=1)
        assert clock.monotonic() == pytest.approx(30)
        assert (caught.value.run is None) == (hang == "create")
        assert "30 s" in str(caught.value)


async def test_process_within_its_timeout_returns_its_result() -> None:
    clock = VirtualClock()
    async with SlowService.serving("nothing") as service:
        async with AsyncLume(api_key=KEY, base_url=service.url, clock=clock) as lume:
            result = await lume.process(FLOW, "s3://bucket/quick", timeout=30, poll_interval=1)
        assert result.run.status is RunStatus.SUCCEEDED
        assert (result.rows, result.rejects) == ([], [])


# -- a retried delete whose first answer was lost ----------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=100) as emulator:
        yield emulator


def _first_attempt_only(emu: Emulator, kind: str, phase: str) -> RetryPolicy:
    """Fault the next request with ``kind``; the retry hook disarms it before the retry."""
    emu.set_faults(FaultProfile(rate=1.0, kinds=(kind,), phase=phase))  # type: ignore[arg-type]
    return RetryPolicy(max_retries=2, base_delay=0, on_retry=lambda _: emu.set_faults(None))


@pytest.mark.parametrize(
    ("kind", "phase"), [("reset", "after"), ("502", "after"), ("503", "before")]
)
async def test_a_delete_retried_after_its_answer_was_lost_is_done(
    emu: Emulator, kind: str, phase: str
) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=VirtualClock()) as lume:
        endpoint = await lume.webhook_endpoints.create("https://hooks.example/lost")
        policy = _first_attempt_only(emu, kind, phase)
        assert await lume.with_options(retry=policy).webhook_endpoints.delete(endpoint.id) is None
        with pytest.raises(NotFoundError):
            await lume.webhook_endpoints.get(endpoint.id)  # and it is really gone


async def test_a_delete_of_an_unknown_endpoint_is_not_found(emu: Emulator) -> None:
    async with AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=VirtualClock()) as lume:
        with pytest.raises(NotFoundError):
            await lume.webhook_endpoints.delete("wh_unknown")
        # Refused at first (429: not done), then 404: it was never there.
        policy = _first_attempt_only(emu, "429", "before")
        with pytest.raises(NotFoundError):
            await lume.with_options(retry=policy).webhook_endpoints.delete("wh_unknown")


# -- runs with malformed metadata ---------------------------------------------------------------

METADATA: dict[str, Any] = {
    "run": {"run_id": RUN_ID, "flow_version": FLOW, "started_at": NOW},
    "pipeline": {"created_at": NOW, "duration_seconds": 1.5, "stages": {"transform_seconds": 1}},
    "results": {"input_rows": 3, "mapped_rows": 3, "rejected_rows": 0},
    "validation": {"tests_executed": 9, "error_rate": 0.0, "top_errors": [{"count": 1}]},
    "errors": [{"stage": "transform", "message": "m"}],
}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


@st.composite
def malformed_metadata(draw: st.DrawFn) -> Any:
    """The metadata tree with one to three values replaced by JSON of another shape."""
    if draw(st.booleans()):
        return draw(json_values)  # not even an object
    doc = orjson.loads(orjson.dumps(METADATA))
    for path in draw(st.lists(st.sampled_from(list(_paths(METADATA))), min_size=1, max_size=3)):
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@settings(
    max_examples=examples(60),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(metadata=malformed_metadata())
async def test_a_run_with_malformed_metadata_still_prints_and_compares(metadata: Any) -> None:
    async with (
        RawServer(json_answer(run_json("SUCCEEDED", metadata=metadata))) as server,
        AsyncLume(api_key=KEY, base_url=server.url, max_retries=0) as lume,
    ):
        try:
            run = await lume.runs.get(RUN_ID)
            again = await lume.runs.get(RUN_ID)
        except Exception:
            return  # refused as a whole (a LumeError, tested elsewhere): nothing to print
    for obj in (run, run.data):
        assert RUN_ID in repr(obj)
        assert RUN_ID in str(obj)
    assert run == again
    assert run.data == again.data
    other = RunData(
        id="run_01HY0000000000000000000001",
        status=RunStatus.SUCCEEDED,
        flow_version=FLOW,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert run.data != other
