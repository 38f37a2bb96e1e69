"""The client's own CPU per run at scale, HTTP left out: the part of ``scale.py`` that is not I/O.

``scale.py`` measures ``create_many`` then ``wait_all`` against the emulator in another process,
so its CPU per run includes every HTTP request and swings with the machine's load. This script
runs the same two calls in one process with the request path below ``Transport.request``
replaced, so what it measures is the SDK's own work per run:

- create: ``runs.create_many`` (concurrency 64) through a transport that answers each create
  (up to 100 per ``batch-create``) at once with the JSON of the runs just created (the
  transport's own request work is left out; the stand-in's cost is measured and taken off);
- wait: ``runs.wait_all``'s shared poller fed with ``batch-get`` answers encoded beforehand, in
  virtual time: every run moves through the lifecycle the emulator follows (CREATED,
  SYNCING_SOURCE, TRANSFORMING, SYNCING_TARGET, SUCCEEDED) over 8 polls, seen moving at 4 of
  them, its metadata filled in as the emulator fills it. Measured twice: answered as the
  emulator answers (the runs that did not move since the state the poll names are listed in
  ``unchanged``, not sent), and as a service that predates ``known`` answers (every run sent).

CPU is process time, the cyclic collector included (it is part of what a wait costs); the best
of ``--rounds`` rounds is reported, per run and, for the wait, per poll.

    python benchmarks/poller.py [--n 10000] [--rounds 3] [--quick]

Results go to ``benchmarks/results/poller.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from _common import ensure_sdk_importable, machine, machine_line, print_table, write_results

CONCURRENCY = 64
BATCH = 100
AT = "2026-11-28T15:40:42.677535Z"
# What each poll sees: (status, seconds after creation of updated_at); polls 1, 3, 6 and 8 see
# the run move, the others see it as it was.
LIFECYCLE = [
    ("CREATED", 0),
    ("SYNCING_SOURCE", 1),
    ("SYNCING_SOURCE", 1),
    ("TRANSFORMING", 3),
    ("TRANSFORMING", 3),
    ("TRANSFORMING", 3),
    ("SYNCING_TARGET", 6),
    ("SYNCING_TARGET", 6),
    ("SUCCEEDED", 8),
]
POLLS = len(LIFECYCLE) - 1


def run_json(n: int, step: int, flow_version: str = "customer_cleaner:v1") -> dict[str, Any]:
    """Run ``n`` at ``step`` of the lifecycle, as the emulator answers it."""
    run_id, path = f"run_01M8HD1PSNR84P57VF{n:08d}", f"synthetic://poller/{n}?rows=1&duration=9"
    status, after = LIFECYCLE[step]
    ended = status == "SUCCEEDED"
    updated = f"2026-11-28T15:40:{42 + after:02d}.677535Z"
    return {
        "id": run_id,
        "status": status,
        "flow_version": flow_version,
        "source_path": path,
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": AT,
        "updated_at": updated,
        "metadata": {
            "run": {
                "run_id": run_id,
                "flow_version": flow_version,
                "source_path": path,
                "status": status,
                "started_at": "2026-11-28T15:40:43.127535Z" if step else None,
                "finished_at": updated if ended else None,
            },
            "pipeline": {
                "created_at": AT,
                "completed_at": updated if ended else None,
                "duration_seconds": 8.0 if ended else None,
                "stages": {
                    "sync_source_seconds": 2.7 if step >= 3 else None,
                    "transform_seconds": 3.6 if step >= 6 else None,
                    "sync_target_seconds": 1.8 if ended else None,
                },
            },
            "results": {
                "input_rows": 1 if ended else None,
                "mapped_rows": 1 if ended else None,
                "rejected_rows": 0 if ended else None,
                "target_locations": (
                    {
                        "mapped": f"lume://runs/{run_id}/mapped",
                        "rejects": f"lume://runs/{run_id}/rejects",
                    }
                    if ended
                    else None
                ),
            },
            "validation": {
                "tests_executed": 3 if ended else None,
                "tests_failed": 0 if ended else None,
                "error_rate": 0.0 if ended else None,
                "top_errors": [],
            },
            "errors": [],
        },
        "error": None,
        "created_by": "admin@tenant-1.example",
        "run_owner": "admin@tenant-1.example",
        "monitoring_by": [],
        "monitoring_groups": [],
        "managing_by": [],
        "managing_groups": [],
    }


def _headers() -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy

    return CIMultiDictProxy(CIMultiDict({"x-request-id": "req_bench"}))


class _CreatingTransport:
    """Answers creates at once with the runs just created, alone or a batch at a time."""

    def __init__(self, bodies: list[bytes]) -> None:
        from lume_async._responses import Response

        self._response, self._bodies, self._headers = Response, bodies, _headers()
        self.calls = 0
        self.sent: list[tuple[str, bytes]] = []

    async def request(self, method: str, path: str, *, body: bytes = b"", **_: Any) -> Any:
        self.sent.append((path, body))
        if path == "/v1/runs":
            answer = self._bodies[self.calls]
            self.calls += 1
            return self._response(status=201, headers=self._headers, body=answer)
        count = body.count(b'{"idempotency_key":')
        runs = self._bodies[self.calls : self.calls + count]
        self.calls += count
        answer = b'{"results":[' + b",".join(b'{"status":201,"run":%s}' % run for run in runs)
        return self._response(status=200, headers=self._headers, body=answer + b"]}")


async def _create(n: int) -> tuple[float, int]:
    """CPU seconds of ``create_many`` of ``n`` runs, the stand-in transport's cost taken off,
    and the requests it took."""
    from lume_async import RunRequest
    from lume_async._clock import SYSTEM_CLOCK
    from lume_async._runs import AsyncRuns
    from lume_async._runs_core import RunsCore

    bodies = [orjson.dumps(run_json(i, 0)) for i in range(n)]
    requests = [
        RunRequest("customer_cleaner:v1", source_path=f"synthetic://poller/{i}?rows=1&duration=9")
        for i in range(n)
    ]
    transport = _CreatingTransport(bodies)
    runs = AsyncRuns(RunsCore(transport, waiting=None, clock=SYSTEM_CLOCK))
    cpu = time.process_time()
    outcomes = await runs.create_many(requests, concurrency=CONCURRENCY)
    cpu = time.process_time() - cpu
    assert all(outcome.ok for outcome in outcomes) and transport.calls == n
    stand_in = _CreatingTransport(bodies)
    own = time.process_time()
    for path, body in transport.sent:
        await stand_in.request("POST", path, body=body)
    return cpu - (time.process_time() - own), len(transport.sent)


async def _wait(n: int, every: bool) -> tuple[float, int]:
    """CPU seconds of ``wait_all`` of ``n`` runs, and the run ids the poller asked about.

    ``every``: answer as a service that ignores ``known`` does, with every run asked about.
    """
    from lume_async._batch_get import RunsAnswer
    from lume_async._converter import decode_run
    from lume_async._responses import Response
    from lume_async._runs_core import RunCell
    from lume_async._waiting import Waiting
    from lume_async.testing import VirtualClock

    headers = _headers()
    items = [[orjson.dumps(run_json(i, step)) for step in range(len(LIFECYCLE))] for i in range(n)]
    answers: dict[tuple[str, int], bytes] = {}
    cells = [RunCell(decode_run(items[i][0], compact=True)) for i in range(n)]
    for start in range(0, n, BATCH):
        for step in range(1, len(LIFECYCLE)):
            chunk = items[start : start + BATCH]
            if every or LIFECYCLE[step] != LIFECYCLE[step - 1]:
                body = b'{"items":[' + b",".join(run[step] for run in chunk) + b'],"missing":[]}'
            else:
                ids = [cell.data.id for cell in cells[start : start + BATCH]]
                body = orjson.dumps({"items": [], "missing": [], "unchanged": ids})
            answers[cells[start].data.id, step] = body
    del items
    step = 0

    async def fetch(ids: list[str], known: Mapping[str, Any] | None) -> RunsAnswer:
        assert every or (known is not None and len(known) == len(ids))
        response = Response(status=200, headers=headers, body=answers[ids[0], step])
        return RunsAnswer(response, response.request_id, known=known.keys() if known else ())

    async def sweep(ids: list[str]) -> bool:
        nonlocal step
        step += bool(ids)
        return await full_sweep(ids)

    waiting = Waiting(fetch, clock=VirtualClock(autojump=True))
    full_sweep, waiting._sweep = waiting._sweep, sweep
    cpu = time.process_time()
    done = 0
    async for _ in waiting.as_completed(cells, cell_of=_itself, timeout=None, poll_interval=1.0):
        done += 1
    cpu = time.process_time() - cpu
    assert done == n and step == POLLS
    return cpu, waiting.asked


def _itself(cell: Any) -> Any:
    return cell


def _round(n: int) -> dict[str, float]:
    gc.collect()
    create, create_requests = asyncio.run(_create(n))
    gc.collect()
    wait, asked = asyncio.run(_wait(n, every=False))
    gc.collect()
    wait_every, _ = asyncio.run(_wait(n, every=True))
    return {
        "create_us_per_run": create * 1e6 / n,
        "create_requests_per_run": create_requests / n,
        "wait_us_per_run": wait * 1e6 / n,
        "wait_us_per_poll": wait * 1e6 / asked,
        "wait_every_us_per_run": wait_every * 1e6 / n,
        "wait_every_us_per_poll": wait_every * 1e6 / asked,
        "polls_per_run": asked / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="runs (10000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, the best kept (3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=300, one round")
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    args = parser.parse_args(argv)
    ensure_sdk_importable()
    n = args.n or (300 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 3)
    info = machine()
    print(
        f"poller: create_many then wait_all of {n:,} runs in one process, HTTP left out,"
        f" {POLLS} polls per run, best of {rounds}\nmachine: {machine_line(info)}",
        flush=True,
    )
    measured = [_round(n) for _ in range(rounds)]
    best = {key: min(m[key] for m in measured) for key in measured[0]}
    print_table(
        [
            "N",
            "answers",
            "create µs/run",
            "creates/request",
            "wait µs/run",
            "wait µs/poll",
            "polls/run",
        ],
        [
            [
                n,
                "moved runs only",
                best["create_us_per_run"],
                1 / best["create_requests_per_run"],
                best["wait_us_per_run"],
                best["wait_us_per_poll"],
                best["polls_per_run"],
            ],
            [
                n,
                "every run",
                best["create_us_per_run"],
                1 / best["create_requests_per_run"],
                best["wait_every_us_per_run"],
                best["wait_every_us_per_poll"],
                best["polls_per_run"],
            ],
        ],
    )
    path = write_results(
        "poller",
        {"benchmark": "poller", "machine": info, "n": n, "rounds": measured, "best": best},
        args.output,
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
