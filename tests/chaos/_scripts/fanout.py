"""Fan out one slice of a deterministic batch, so that running it again is safe.

    python fanout.py URL API_KEY BATCH START STOP [--concurrency N] [--namespace NS] [--sink DIR]

Item ``i`` of batch ``BATCH`` is always the same request. Running a slice again, after a crash
or in another process at the same time, makes no second run: a source path still in flight
comes back as that run (``reused``), one already processed as ``DuplicateRunError``
(``existing_run_id``), which means "already done". With ``--namespace`` each item's key is derived
from the namespace and the request, so a repeat replays the first answer instead.

With ``--sink`` each run's rows are kept exactly once across processes and kills (``RowSink``);
without it they are only counted. Prints ``progress DONE TOTAL`` lines while creating, then one
JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from lume_async import AsyncLume, AsyncRun, DuplicateRunError, RetryPolicy, RunRequest

FLOW = "customer_cleaner:v1"
QUICK = RetryPolicy(
    max_retries=25,
    base_delay=0.005,
    rate_limit_base_delay=0.005,
    max_delay=0.05,
    deadline=300.0,
    budget_ratio=100.0,
    budget_floor=100.0,
)
"""Patient, quick retries: the emulator fails up to a third of requests in these scenarios."""

Progress = Callable[[str], None]
"""Called with ``"created"`` after each create and ``"kept"`` after each run's rows are kept."""


def rows_of(index: int) -> int:
    return 3 + index % 18


def request(batch: str, index: int) -> RunRequest:
    # Odd items run long (60 virtual seconds), so a resumed slice finds some still in flight.
    duration = 60 if index % 2 else 1
    return RunRequest(
        FLOW,
        source_path=f"synthetic://{batch}-{index:05d}?rows={rows_of(index)}&duration={duration}",
    )


class RowSink:
    """Each run's rows, kept once whatever processes read them and whenever they are killed.

    A reader takes the run's lock (``flock``, which the kernel drops when its holder dies), then
    keeps the rows only if no one has: written to a temporary file and renamed into place, so a
    kept file is whole. ``<run_id>.json`` records who read which rows.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "locks").mkdir(parents=True, exist_ok=True)

    def kept(self, run_id: str) -> bool:
        return (self.root / f"{run_id}.json").exists()

    async def keep(self, run: AsyncRun, *, wait: bool = True) -> bool | None:
        """Read and keep ``run``'s rows unless kept already; True if this call kept them.

        None, without ``wait``, when another process holds the run: come back to it later.
        """
        fd = os.open(self.root / "locks" / f"{run.id}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        return None
                    await anyio.sleep(0.01)  # another process is reading it: see what it keeps
            if self.kept(run.id):
                return False
            rows = await run.results(page_size=100).collect()
            record = {"run_id": run.id, "source_path": run.source_path, "pid": os.getpid()}
            record["rows"] = [row.get("full_name") for row in rows]
            partial = self.root / f"{run.id}.{os.getpid()}.partial"
            partial.write_text(json.dumps(record))
            partial.replace(self.root / f"{run.id}.json")
            return True
        finally:
            os.close(fd)  # and with it the lock


async def fan_out(
    url: str,
    api_key: str,
    batch: str,
    start: int,
    stop: int,
    *,
    concurrency: int = 8,
    namespace: str | None = None,
    sink: RowSink | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    requests = [request(batch, i) for i in range(start, stop)]

    def created(done: int, total: int, failed: int) -> None:
        if progress is not None:
            progress("created")

    summary: dict[str, Any] = {
        "started": 0,
        "reused": 0,
        "already_done": 0,
        "failed": [],
        "rows": 0,
        "kept": 0,
    }
    async with AsyncLume(api_key=api_key, base_url=url, retry=QUICK) as lume:
        outcomes = await lume.runs.create_many(
            requests, concurrency=concurrency, on_progress=created, idempotency_namespace=namespace
        )
        runs: list[AsyncRun] = []
        done_ids: list[str] = []
        for outcome in outcomes:
            if outcome.ok and outcome.value is not None:
                runs.append(outcome.value)
                summary["reused"] += outcome.value.reused
            elif isinstance(outcome.error, DuplicateRunError) and outcome.error.existing_run_id:
                done_ids.append(outcome.error.existing_run_id)
            else:
                summary["failed"].append(repr(outcome.error))
        summary["started"] = len(runs)
        summary["already_done"] = len(done_ids)
        for fetched in await lume.runs.get_many(done_ids):
            if fetched.ok and fetched.value is not None:
                runs.append(fetched.value)
            else:
                summary["failed"].append(repr(fetched.error))

        async def read(run: AsyncRun, *, wait: bool) -> bool:
            """Count or keep ``run``'s rows; False when another process holds it."""
            try:
                if sink is None:
                    rows = await run.results(page_size=100).collect()
                    summary["rows"] += len(rows)  # after the await: readers interleave
                    return True
                kept = await sink.keep(run, wait=wait)
                if kept is None:
                    return False
                if kept:
                    summary["kept"] += 1
                    if progress is not None:
                        progress("kept")
            except Exception as exc:
                summary["failed"].append(f"rows of {run.id}: {exc!r}")
            return True

        async def reader(finished: MemoryObjectReceiveStream[AsyncRun]) -> None:
            later = []  # runs another process was reading: see what it kept at the end
            with finished:
                async for run in finished:
                    if not await read(run, wait=False):
                        later.append(run)
            for run in later:
                await read(run, wait=True)

        # Rows are read as runs finish, by ``concurrency`` readers.
        send, receive = anyio.create_memory_object_stream[AsyncRun](max(1, len(runs)))
        async with anyio.create_task_group() as tg:
            with receive:
                for _ in range(concurrency):
                    tg.start_soon(reader, receive.clone())
            with send:
                async for run in lume.runs.as_completed(runs, timeout=120, poll_interval=0.05):
                    send.send_nowait(run)
    return summary


def work(url: str, api_key: str, batch: str, start: int, stop: int) -> dict[str, Any]:
    """Entry point for a pool worker (multiprocessing): one slice, its own client."""
    return asyncio.run(fan_out(url, api_key, batch, start, stop))


def worker(
    url: str,
    api_key: str,
    batch: str,
    start: int,
    stop: int,
    namespace: str,
    sink: str,
    counters: Any,
    summary_path: str,
) -> None:
    """Entry point for a worker process that may be killed: counts its steps where its parent
    can see them (``counters[0]`` creates, ``counters[1]`` runs kept) and writes its summary."""

    def step(kind: str) -> None:
        counters[0 if kind == "created" else 1] += 1

    summary = asyncio.run(
        fan_out(
            url,
            api_key,
            batch,
            start,
            stop,
            namespace=namespace,
            sink=RowSink(Path(sink)),
            progress=step,
        )
    )
    Path(summary_path).write_text(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("api_key")
    parser.add_argument("batch")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--sink", type=Path, default=None)
    # Freeze (the whole event loop, requests in flight and all) once this many are created,
    # until killed: a kill then lands half-way however slowly its sender reads the progress.
    parser.add_argument("--freeze-at", type=int, default=None)
    args = parser.parse_args(argv)
    done = 0

    def report(kind: str) -> None:
        nonlocal done
        if kind == "created":
            done += 1
            print(f"progress {done} {args.stop - args.start}", flush=True)
            if args.freeze_at is not None and done >= args.freeze_at:
                threading.Event().wait()

    summary = asyncio.run(
        fan_out(
            args.url,
            args.api_key,
            args.batch,
            args.start,
            args.stop,
            concurrency=args.concurrency,
            namespace=args.namespace,
            sink=RowSink(args.sink) if args.sink is not None else None,
            progress=report,
        )
    )
    print(json.dumps(summary), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
