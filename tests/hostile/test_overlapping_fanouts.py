"""Fan-outs that overlap themselves: one request given twice in one ``create_many`` call.

An item that repeats an earlier one (the same request, so the same idempotency key) is sent
once and shares its outcome: sent twice at once to a service that takes its time, one copy
would find the other's key in flight and could fail after its retries while its run exists.
The emulator runs on a virtual clock shared with the client, so slow answers take no real time.
"""

from __future__ import annotations

import anyio
import pytest

from lume_async import AsyncLume, RunRequest
from lume_async.testing import Emulator, FaultProfile

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
NS = "nightly-2026-11-28"
STUCK = 30
SLOW = FaultProfile(rate=1.0, kinds=("delay",), phase="before", delay=20)


def _path(i: int) -> RunRequest:
    return RunRequest(FLOW, source_path=f"s3://bucket/twice/{i:03d}")


@pytest.mark.parametrize("namespace", [None, NS], ids=["same-object", "same-namespace-key"])
async def test_a_request_given_twice_to_a_slow_service_gets_its_run_in_both_outcomes(
    vemu: Emulator, vlume: AsyncLume, namespace: str | None
) -> None:
    repeated = _path(0)
    # With a namespace, a request built twice (a line repeated in an input file) shares a key.
    again = _path(0) if namespace is not None else repeated
    requests = [repeated, _path(1), _path(2), again]
    vemu.set_faults(SLOW)  # every create is held 20 s, its key in flight
    with anyio.fail_after(STUCK):
        outcomes = await vlume.runs.create_many(
            requests, concurrency=8, idempotency_namespace=namespace
        )
    assert [o.error for o in outcomes] == [None] * 4
    first, last = outcomes[0].unwrap(), outcomes[3].unwrap()
    assert first.id == last.id and not first.reused and not last.reused
    assert first is not last  # a handle each, as for any two outcomes
    assert outcomes[0].idempotency_key == outcomes[3].idempotency_key
    stats = vemu.stats()
    assert stats["runs_created"] == 3
    assert stats["requests"]["POST /v1/runs"] == {"201": 3}  # sent once, no key in flight met


async def test_a_repeated_request_in_a_batched_fan_out_is_sent_once(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    requests = [_path(i) for i in range(20)]
    requests += requests[:5]
    seen: list[tuple[int, int, int]] = []
    with anyio.fail_after(STUCK):
        outcomes = await vlume.runs.create_many(
            requests, concurrency=4, on_progress=lambda *p: seen.append(p)
        )
    ids = [o.unwrap().id for o in outcomes]
    assert ids[20:] == ids[:5]
    assert len(set(ids)) == 20
    assert seen[-1] == (25, 25, 0) and len(seen) == 25
    stats = vemu.stats()
    assert (stats["runs_created"], stats["idempotent_replays"]) == (20, 0)
