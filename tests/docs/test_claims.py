"""What the guides, the README and the public docstrings state, checked against the SDK's behaviour.

Each test names the page (or docstring) and quotes the sentence it checks. Waits run in virtual
time: the client and the emulator share one ``VirtualClock``, so an hour-long run takes none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lume_async import (
    AsyncLume,
    InvalidRequestError,
    RunStatus,
    RunTimeoutError,
    Timeout,
)
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
TWO_HOURS = "synthetic://{}?rows=5&duration=7200"
ONE_HOUR = 3600.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def lume(clock: VirtualClock) -> AsyncIterator[AsyncLume]:
    """A client of an emulator on the test's loop, both on ``clock``."""
    async with (
        Emulator(clock=clock) as emu,
        AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=clock) as client,
    ):
        yield client


@pytest.fixture
async def long_detail_url() -> AsyncIterator[str]:
    """A server that answers every request with a 422 whose ``detail`` is 5,000 characters."""

    async def answer(request: web.Request) -> web.Response:
        body = {"detail": "x" * 5000, "code": "validation_error", "error_id": "err_1"}
        return web.json_response(body, status=422, headers={"x-request-id": "req_1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- timeouts of waits (docs/guides/errors.md, "Timeouts"; docs/guides/configuration.md) ----------


async def test_run_wait_gives_up_after_an_hour_by_default(
    lume: AsyncLume, clock: VirtualClock
) -> None:
    """errors.md: "Waiting for a run: timeout= on wait(), ... 3600 s by default"."""
    run = await lume.run(FLOW, TWO_HOURS.format("wait-default"))
    started = clock.monotonic()
    with pytest.raises(RunTimeoutError) as caught:
        await run.wait(poll_interval=60)
    assert caught.value.run is run and not run.is_terminal
    assert ONE_HOUR <= clock.monotonic() - started < 2 * ONE_HOUR


async def test_process_gives_up_after_an_hour_by_default(
    lume: AsyncLume, clock: VirtualClock
) -> None:
    """errors.md: "timeout= on ... process(), 3600 s by default ... It raises RunTimeoutError"."""
    started = clock.monotonic()
    with pytest.raises(RunTimeoutError) as caught:
        await lume.process(FLOW, TWO_HOURS.format("process-default"), poll_interval=60)
    assert caught.value.run is not None and not caught.value.run.is_terminal
    assert ONE_HOUR <= clock.monotonic() - started < 2 * ONE_HOUR


async def test_wait_all_waits_without_a_limit_by_default(
    lume: AsyncLume, clock: VirtualClock
) -> None:
    """errors.md: "3600 s by default for wait() and process(), no limit by default for
    wait_all() and as_completed()"."""
    run = await lume.run(FLOW, TWO_HOURS.format("wait-all-default"))
    started = clock.monotonic()
    await lume.runs.wait_all([run], poll_interval=60)
    assert run.is_terminal and clock.monotonic() - started >= 2 * ONE_HOUR


async def test_as_completed_waits_without_a_limit_by_default(
    lume: AsyncLume, clock: VirtualClock
) -> None:
    """errors.md: "no limit by default for wait_all() and as_completed()"."""
    run = await lume.run(FLOW, TWO_HOURS.format("as-completed-default"))
    started = clock.monotonic()
    finished = [done async for done in lume.runs.as_completed([run], poll_interval=60)]
    assert finished == [run] and clock.monotonic() - started >= 2 * ONE_HOUR


# -- error messages (docs/guides/errors.md, "One error tree") ------------------------------------


async def test_an_error_message_is_at_most_2000_characters(long_detail_url: str) -> None:
    """errors.md: "A message is at most 2,000 characters and body at most 64 KiB of JSON,
    whatever the service sent."""
    async with AsyncLume(api_key="k", base_url=long_detail_url, max_retries=0) as client:
        with pytest.raises(InvalidRequestError) as caught:
            await client.run_status("run_01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert caught.value.message.startswith("x" * 100)
    assert len(caught.value.message) <= 2000


# -- views (README.md, "Views with other settings") ---------------------------------------------


async def test_the_readme_view_example_prints_what_its_comment_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README.md, "Views with other settings": ``print(lume.timeout.total,
    impatient.timeout.total)  # 30 2.0``."""
    async with AsyncLume(
        api_key="k", base_url="http://127.0.0.1:9", timeout=Timeout(total=30, connect=5)
    ) as client:
        impatient = client.with_options(timeout=2, max_retries=0)
        print(client.timeout.total, impatient.timeout.total)
    assert capsys.readouterr().out == "30 2.0\n"


# -- docstrings of the public API ----------------------------------------------------------------


async def test_a_rerun_of_a_run_in_flight_returns_that_run(lume: AsyncLume) -> None:
    """AsyncRun.rerun: "A source path still being processed is not run twice: its run in flight
    is returned (reused is True)"."""
    run = await lume.run(FLOW, TWO_HOURS.format("rerun-in-flight"))
    again = await run.rerun()
    assert again.id == run.id
    assert again.reused is True


async def test_flows_get_takes_a_version_string(lume: AsyncLume) -> None:
    """AsyncFlows.get: "One flow by name (customer_cleaner; a name:vN version string also
    works)"."""
    flow = await lume.flows.get("customer_cleaner:v1")
    assert flow.name == "customer_cleaner"
    assert "v1" in [version.version for version in flow.versions]


async def test_cancel_many_leaves_finished_runs_as_they_are(lume: AsyncLume) -> None:
    """fan-out.md: "runs.cancel_many(ids) cancels with bounded concurrency; runs that already
    finished come back unchanged"."""
    done = await lume.run(FLOW, "synthetic://cancel-done?rows=5&duration=10")
    await done.wait(poll_interval=1)
    running = await lume.run(FLOW, TWO_HOURS.format("cancel-running"))
    outcomes = await lume.runs.cancel_many([done.id, running.id])
    assert [outcome.ok for outcome in outcomes] == [True, True]
    assert outcomes[0].unwrap().status is RunStatus.SUCCEEDED
    assert outcomes[1].unwrap().status is RunStatus.CANCELED


async def test_get_many_gives_malformed_ids_their_own_outcomes(lume: AsyncLume) -> None:
    """AsyncRuns.get_many: "an unknown id gives a RunNotFoundError outcome, a malformed one a
    ValueError outcome (TypeError for one that is not a str)"."""
    run = await lume.run(FLOW, "s3://bucket/get-many")
    ids: list[object] = [run.id, "run id", 7, "run_01HZZZZZZZZZZZZZZZZZZZZZZZ"]
    outcomes = await lume.runs.get_many(ids)  # type: ignore[arg-type]
    assert outcomes[0].ok and outcomes[0].unwrap().id == run.id
    assert [type(outcome.error).__name__ for outcome in outcomes[1:]] == [
        "ValueError",
        "TypeError",
        "RunNotFoundError",
    ]
