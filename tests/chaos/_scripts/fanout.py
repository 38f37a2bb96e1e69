"""Fan out one slice of a deterministic batch, so that running it again is safe.

    python fanout.py URL API_KEY BATCH START STOP [--concurrency N] [--keys]

Item ``i`` of batch ``BATCH`` is always the same request. Running a slice again, after a crash
or on another machine at the same time, makes no second run: a source path still in flight
comes back as that run, one already SUCCEEDED as ``DuplicateRunError`` (``existing_run_id``),
which means "already done". With ``--keys`` each item also carries an idempotency key derived
from the batch and index, so a repeat replays the first answer instead.

Prints ``progress DONE TOTAL`` lines while creating, then one JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from lume_async import AsyncLume, AsyncRun, DuplicateRunError, RetryPolicy, RunRequest

FLOW = "customer_cleaner:v1"


def request(batch: str, index: int, *, keys: bool) -> RunRequest:
    # Odd items run long (60 virtual seconds), so a resumed slice finds some still in flight.
    duration = 60 if index % 2 else 1
    return RunRequest(
        FLOW,
        source_path=f"synthetic://{batch}-{index:05d}?rows={3 + index % 18}&duration={duration}",
        idempotency_key=f"{batch}-{index:05d}" if keys else None,
    )


async def fan_out(
    url: str,
    api_key: str,
    batch: str,
    start: int,
    stop: int,
    *,
    concurrency: int = 8,
    keys: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    requests = [request(batch, i, keys=keys) for i in range(start, stop)]

    def report(done: int, total: int, failed: int) -> None:
        print(f"progress {done} {total}", flush=True)

    summary: dict[str, Any] = {"started": 0, "already_done": 0, "failed": [], "rows": 0}
    async with AsyncLume(
        api_key=api_key, base_url=url, retry=RetryPolicy(max_retries=10, base_delay=0.05)
    ) as lume:
        outcomes = await lume.runs.create_many(
            requests, concurrency=concurrency, on_progress=report if progress else None
        )
        runs: list[AsyncRun] = []
        done_ids: list[str] = []
        for outcome in outcomes:
            if outcome.ok and outcome.value is not None:
                runs.append(outcome.value)
            elif isinstance(outcome.error, DuplicateRunError) and outcome.error.existing_run_id:
                done_ids.append(outcome.error.existing_run_id)
            else:
                summary["failed"].append(repr(outcome.error))
        summary["started"] = len(runs)
        summary["already_done"] = len(done_ids)
        await lume.runs.wait_all(runs, timeout=120, poll_interval=0.05)
        for fetched in await lume.runs.get_many(done_ids):
            if fetched.ok and fetched.value is not None:
                runs.append(fetched.value)
            else:
                summary["failed"].append(repr(fetched.error))
        for run in runs:
            summary["rows"] += len(await run.results(page_size=100).collect())
    return summary


def work(url: str, api_key: str, batch: str, start: int, stop: int) -> dict[str, Any]:
    """Entry point for a worker process (multiprocessing): one slice, its own client."""
    return asyncio.run(fan_out(url, api_key, batch, start, stop))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("api_key")
    parser.add_argument("batch")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keys", action="store_true")
    args = parser.parse_args(argv)
    summary = asyncio.run(
        fan_out(
            args.url,
            args.api_key,
            args.batch,
            args.start,
            args.stop,
            concurrency=args.concurrency,
            keys=args.keys,
            progress=True,
        )
    )
    print(json.dumps(summary), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
