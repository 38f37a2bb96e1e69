"""Seed 004, "Advanced Topics": forcing a rerun, polling with backoff, handling partial failures.

Every snippet of the seed runs as written through the blocking client (``lume``), and awaited
through the async one (``alume``). Lines between ``# seed:`` and ``# end of seed`` are the seed's
own; what each test adds or adapts is said at its top.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lume_async import AsyncLume, DuplicateRunError
from lume_async.testing import Emulator, VirtualClock
from lume_sync import Lume

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
OUTCOMES = {
    "SUCCEEDED": "synthetic://seed-004-ok-{}?rows=40",
    "PARTIAL_FAILED": "synthetic://seed-004-partial-{}?rows=40&reject_rate=0.25",
    "FAILED": "synthetic://seed-004-failed-{}?rows=40&outcome=FAILED",
    "CRASHED": "synthetic://seed-004-crashed-{}?rows=40&outcome=CRASHED",
}


# -- Forcing a Rerun (Idempotency Bypass) --------------------------------------------------------


def test_force_rerun_snippet(lume: Lume) -> None:
    # Added: a first run that already processed the path, so that only force_rerun passes.
    first = lume.run(flow_version="customer_cleaner:v1", source_path="failed_batch_abc_123")
    first.wait(timeout=600, poll_interval=10)
    with pytest.raises(DuplicateRunError):
        lume.run(flow_version="customer_cleaner:v1", source_path="failed_batch_abc_123")
    # fmt: off
    # seed:
    # This will force Lume to re-process the data at this source_path,
    # even if a successful run already exists for it.
    run = lume.run(
        flow_version="customer_cleaner:v1",
        source_path="failed_batch_abc_123",
        force_rerun=True
    )
    # end of seed
    # fmt: on
    assert run.id != first.id
    assert run.wait(timeout=600, poll_interval=10).status == "SUCCEEDED"


async def test_force_rerun_snippet_async(alume: AsyncLume) -> None:
    # Added: the first run (as above). Adapted: lume.run() is awaited.
    lume = alume
    first = await lume.run(flow_version="customer_cleaner:v1", source_path="failed_batch_abc_123")
    await first.wait(timeout=600, poll_interval=10)
    with pytest.raises(DuplicateRunError):
        await lume.run(flow_version="customer_cleaner:v1", source_path="failed_batch_abc_123")
    # fmt: off
    # seed:
    # This will force Lume to re-process the data at this source_path,
    # even if a successful run already exists for it.
    run = await lume.run(
        flow_version="customer_cleaner:v1",
        source_path="failed_batch_abc_123",
        force_rerun=True
    )
    # end of seed
    # fmt: on
    assert run.id != first.id


# -- Advanced Run Monitoring ---------------------------------------------------------------------


def make_wait_for_run_completion(lume: Lume) -> Callable[..., Any]:
    """The seed's function, as written (``lume`` is the snippet's global client)."""
    # fmt: off
    # seed:
    import time

    def wait_for_run_completion(run_id, max_attempts=10, initial_delay=5):
        """
        Waits for a Lume run to complete using exponential backoff.
        """
        delay = initial_delay
        for attempt in range(max_attempts):
            run = lume.run_status(run_id)

            if run.status in ["SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED"]:
                print(f"Run {run.id} finished with status: {run.status}")
                return run

            print(f"Attempt {attempt + 1}: Status is {run.status}. Retrying in {delay}s...")
            time.sleep(delay)
            delay = min(delay * 2, 60) # Double the delay, capped at 60 seconds

        raise TimeoutError(f"Run {run.id} did not complete after {max_attempts} attempts.")
    # end of seed
    # fmt: on
    return wait_for_run_completion


def make_async_wait_for_run_completion(lume: AsyncLume, clock: VirtualClock) -> Callable[..., Any]:
    """The seed's function made a coroutine: it awaits run_status() and sleeps on the test's
    virtual clock, where a real program would ``await asyncio.sleep(delay)``."""

    # fmt: off
    async def wait_for_run_completion(run_id, max_attempts=10, initial_delay=5):
        """
        Waits for a Lume run to complete using exponential backoff.
        """
        delay = initial_delay
        for attempt in range(max_attempts):
            run = await lume.run_status(run_id)

            if run.status in ["SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED"]:
                print(f"Run {run.id} finished with status: {run.status}")
                return run

            print(f"Attempt {attempt + 1}: Status is {run.status}. Retrying in {delay}s...")
            await clock.sleep(delay)
            delay = min(delay * 2, 60) # Double the delay, capped at 60 seconds

        raise TimeoutError(f"Run {run.id} did not complete after {max_attempts} attempts.")
    # fmt: on
    return wait_for_run_completion


@pytest.fixture
def still_emu() -> Iterator[Emulator]:
    """An emulator whose runs move only when told (``advance()``), never on their own."""
    with Emulator(clock=VirtualClock(autojump=False)) as emulator:
        yield emulator


@pytest.fixture
def still_lume(still_emu: Emulator) -> Iterator[Lume]:
    with Lume(api_key=still_emu.api_key, base_url=still_emu.url) as client:
        yield client


@pytest.fixture
def sleep_is_run_time(still_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.sleep(s)`` skips ``s`` seconds of ``still_emu``'s run time instead of waiting.

    Its runs move by these skips alone, so each status the snippet prints is the same on every
    run, however slowly the machine answers.
    """
    slept: list[float] = []

    def skip(seconds: float) -> None:
        slept.append(seconds)
        still_emu.advance(seconds)

    monkeypatch.setattr(time, "sleep", skip)
    return slept


def test_backoff_polling_snippet(
    still_lume: Lume, sleep_is_run_time: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    # Adapted: lume.run(...) is given its arguments, which the seed elides; time.sleep skips
    # run time (fixture) so the backoff is followed without waiting.
    lume = still_lume
    wait_for_run_completion = make_wait_for_run_completion(lume)
    # seed:
    # Usage:
    initial_run = lume.run(FLOW, "synthetic://seed-004-backoff?rows=20&duration=30")
    try:
        final_run = wait_for_run_completion(initial_run.id)
        # Now you can inspect the final metadata
        print(final_run.metadata)
    except TimeoutError as e:
        print(e)
    # end of seed
    assert sleep_is_run_time == [5, 10, 20]  # doubled each time: 35 s of run time in all
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Attempt 1: Status is CREATED. Retrying in 5s..."
    assert out[3] == f"Run {initial_run.id} finished with status: SUCCEEDED"
    assert out[4].startswith("RunMetadata(run=RunInfo(")


def test_backoff_polling_caps_the_delay_and_gives_up(
    still_lume: Lume, sleep_is_run_time: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    # Adapted: as above, with a run too long for ten attempts.
    lume = still_lume
    wait_for_run_completion = make_wait_for_run_completion(lume)
    initial_run = lume.run(FLOW, "synthetic://seed-004-long?rows=20&duration=100000")
    # seed:
    try:
        final_run = wait_for_run_completion(initial_run.id)
        # Now you can inspect the final metadata
        print(final_run.metadata)
    except TimeoutError as e:
        print(e)
    # end of seed
    assert sleep_is_run_time == [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"Run {initial_run.id} did not complete after 10 attempts."


async def test_backoff_polling_snippet_async(
    alume: AsyncLume, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Adapted: the function is a coroutine (see make_async_wait_for_run_completion), and
    # lume.run(...) gets its arguments.
    lume = alume
    wait_for_run_completion = make_async_wait_for_run_completion(lume, clock)
    start = clock.monotonic()
    # seed:
    # Usage:
    initial_run = await lume.run(FLOW, "synthetic://seed-004-backoff?rows=20&duration=30")
    try:
        final_run = await wait_for_run_completion(initial_run.id)
        # Now you can inspect the final metadata
        print(final_run.metadata)
    except TimeoutError as e:
        print(e)
    # end of seed
    assert clock.monotonic() - start == 5 + 10 + 20
    assert f"Run {initial_run.id} finished with status: SUCCEEDED" in capsys.readouterr().out


# -- Handling Partial Failures -------------------------------------------------------------------


class Downstream:
    """Trivial stand-ins for the seed's undefined helpers: they record how they were called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def trigger_reporting_job(self, mapped: Any) -> None:
        self.calls.append(("report", mapped))

    def notify_data_stewards(self, run_id: str, rejects_location: Any) -> None:
        self.calls.append(("stewards", (run_id, rejects_location)))

    def alert_on_call(self, run_id: str, error_message: Any) -> None:
        self.calls.append(("alert", (run_id, error_message)))


def expected_calls(run: Any) -> list[tuple[str, Any]]:
    mapped = f"lume://runs/{run.id}/mapped"
    rejects = f"lume://runs/{run.id}/rejects"
    return {
        "SUCCEEDED": [("report", mapped)],
        "PARTIAL_FAILED": [("report", mapped), ("stewards", (run.id, rejects))],
        "FAILED": [("alert", (run.id, "The transformation failed"))],
        "CRASHED": [
            ("alert", (run.id, "The worker running this run crashed; no rows were written"))
        ],
    }[run.status]


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_partial_failures_snippet(
    still_lume: Lume, sleep_is_run_time: list[float], outcome: str
) -> None:
    # Added: the run to handle (its id replaces the seed's "run_01HY..."), and trivial
    # definitions of the seed's undefined helpers.
    lume = still_lume
    made = lume.run(FLOW, OUTCOMES[outcome].format("sync"))
    wait_for_run_completion = make_wait_for_run_completion(lume)
    downstream = Downstream()
    trigger_reporting_job = downstream.trigger_reporting_job
    notify_data_stewards = downstream.notify_data_stewards
    alert_on_call = downstream.alert_on_call
    # fmt: off
    # seed:
    run = wait_for_run_completion(made.id)

    if run.status == "SUCCEEDED":
        # All data processed, trigger downstream processes on the mapped output.
        trigger_reporting_job(run.metadata["target_locations"]["mapped"])

    elif run.status == "PARTIAL_FAILED":
        # Some data is ready. You might process the good data...
        trigger_reporting_job(run.metadata["target_locations"]["mapped"])

        # ...and send the rejected data to a separate workflow for manual review.
        notify_data_stewards(
            run_id=run.id,
            rejects_location=run.metadata["target_locations"]["rejects"]
        )

    elif run.status in ["FAILED", "CRASHED"]:
        # No data was processed. Alert the on-call engineer.
        alert_on_call(
            run_id=run.id,
            error_message=run.metadata.get("error_message")
        )
    # end of seed
    # fmt: on
    assert run.status == outcome
    assert downstream.calls == expected_calls(run)
    if outcome in ("FAILED", "CRASHED"):  # "No data was processed."
        assert run.metadata["results"]["mapped_rows"] == 0
        assert run.results().collect() == []


@pytest.mark.parametrize("outcome", list(OUTCOMES))
async def test_partial_failures_snippet_async(
    alume: AsyncLume, clock: VirtualClock, outcome: str
) -> None:
    # Added: the run and helpers (as above). Adapted: wait_for_run_completion is the coroutine
    # version, so it is awaited.
    made = await alume.run(FLOW, OUTCOMES[outcome].format("async"))
    wait_for_run_completion = make_async_wait_for_run_completion(alume, clock)
    downstream = Downstream()
    trigger_reporting_job = downstream.trigger_reporting_job
    notify_data_stewards = downstream.notify_data_stewards
    alert_on_call = downstream.alert_on_call
    # fmt: off
    # seed:
    run = await wait_for_run_completion(made.id)

    if run.status == "SUCCEEDED":
        # All data processed, trigger downstream processes on the mapped output.
        trigger_reporting_job(run.metadata["target_locations"]["mapped"])

    elif run.status == "PARTIAL_FAILED":
        # Some data is ready. You might process the good data...
        trigger_reporting_job(run.metadata["target_locations"]["mapped"])

        # ...and send the rejected data to a separate workflow for manual review.
        notify_data_stewards(
            run_id=run.id,
            rejects_location=run.metadata["target_locations"]["rejects"]
        )

    elif run.status in ["FAILED", "CRASHED"]:
        # No data was processed. Alert the on-call engineer.
        alert_on_call(
            run_id=run.id,
            error_message=run.metadata.get("error_message")
        )
    # end of seed
    # fmt: on
    assert run.status == outcome
    assert downstream.calls == expected_calls(run)
    if outcome in ("FAILED", "CRASHED"):
        assert await run.results().collect() == []
