"""Listing filters that would select nothing or everything by accident, the jitter drawn on a
``Retry-After`` near the retry deadline, and a malformed ``--header`` kept out of the usage error.

``status=[]`` used to send no status filter, so it listed every run where it asks for none; a
blank ``source_path`` filter was sent although no run has one. The up to 25 % drawn above a
``Retry-After`` could carry a retry past the deadline at random when the wait the server asked
for fitted.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from lume_async import AsyncLume, RetryPolicy, ServerError
from lume_async.testing import VirtualClock

from ..cli.conftest import lume as lume_cli
from ._scripted import RUN_ID, Answer, ScriptedServer, run_json

pytestmark = pytest.mark.anyio
STUCK = 20


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as server:
        yield server


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [[], (), set(), iter(())], ids=["list", "tuple", "set", "iter"])
async def test_an_empty_status_filter_is_refused_before_any_request(
    scripted: ScriptedServer, status: Any
) -> None:
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(ValueError, match=r"status=\[\] would match no run"):
            lume.runs.list(status=status)
    assert scripted.seen == []


@pytest.mark.parametrize("path", [" ", "  \t", "\n"])
async def test_a_blank_source_path_filter_is_refused_as_create_refuses_it(
    scripted: ScriptedServer, path: str
) -> None:
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(ValueError, match="source_path"):
            lume.runs.list(source_path=path)
        with pytest.raises(ValueError, match="source_path"):
            await lume.runs.create("customer_cleaner:v1", path)
    assert scripted.seen == []


async def test_filters_that_select_something_still_go_out(scripted: ScriptedServer) -> None:
    listed = {**run_json(status="SUCCEEDED"), "source_path": " s3://b/x "}
    scripted.default = Answer(200, {"items": [listed], "next_cursor": None})
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with anyio.fail_after(STUCK):
            runs = [
                run async for run in lume.runs.list(status=["SUCCEEDED"], source_path=" s3://b/x ")
            ]
    assert [run.id for run in runs] == [RUN_ID]
    [seen] = scripted.seen
    assert "status=SUCCEEDED" in seen.path and "source_path=%20s3" in seen.path


# -- Retry-After near the deadline -------------------------------------------------------------


class _Highest(random.Random):
    """Draws the top of every range: the most jitter there is."""

    def uniform(self, a: float, b: float) -> float:
        return max(a, b)


async def test_a_retry_after_that_fits_the_deadline_is_retried_whatever_the_jitter(
    scripted: ScriptedServer,
) -> None:
    scripted.then(Answer(503, {"detail": "busy", "code": "unavailable"}, {"Retry-After": "10"}))
    scripted.default = Answer(200, run_json())
    policy = RetryPolicy(max_retries=2, deadline=11.0, max_retry_after=60)
    clock = VirtualClock()
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        lume._core.transport._rng = _Highest()  # 10 s asked, 12.5 s drawn: over the deadline
        with anyio.fail_after(STUCK):
            run = await lume.runs.get(RUN_ID)
    assert run.id == RUN_ID
    assert len(scripted.seen) == 2
    assert 10.0 <= clock.monotonic() < 11.0  # waited what was asked, within the deadline


async def test_a_retry_after_past_the_deadline_is_still_not_waited_for(
    scripted: ScriptedServer,
) -> None:
    scripted.then(Answer(503, {"detail": "busy", "code": "unavailable"}, {"Retry-After": "12"}))
    policy = RetryPolicy(max_retries=2, deadline=11.0, max_retry_after=60)
    clock = VirtualClock()
    async with AsyncLume(api_key="k", base_url=scripted.url, retry=policy, clock=clock) as lume:
        with anyio.fail_after(STUCK), pytest.raises(ServerError) as caught:
            await lume.runs.get(RUN_ID)
    assert any("deadline" in note for note in caught.value.__notes__)
    assert len(scripted.seen) == 1
    assert clock.monotonic() < 1.0


# -- the command line --------------------------------------------------------------------------


def test_a_header_without_a_colon_is_not_echoed_in_the_usage_error() -> None:
    done = lume_cli("--header", "X-Token=s3cr3t-value", "flows", "list")
    assert done.status == 2
    assert "s3cr3t" not in done.stdout + done.stderr
    assert "NAME: VALUE" in done.error_line()
