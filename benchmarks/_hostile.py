"""The hostile-server scenario of ``reliability.py``: what a server can make the client hold.

Each shape is served by ``tests/hostile/_servers.py``'s raw server (in this process) to a client
in a fresh process (``python benchmarks/_hostile.py SHAPE URL``), which makes one call with the
default settings (``max_retries=0`` so each figure is one answer; ``Timeout(read=2)`` so the
dribbled body ends), and reports what the call did and how far its peak RSS rose above what it
was once the SDK was imported. Listings are cut off by the worker after ``_CAP`` items, so a
client that would loop for ever shows up as "looped" instead of hanging the report.

    python benchmarks/reliability.py --scenario hostile
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the hostile shapes live in the test suite

from lume_async import AsyncLume, LumeError, Timeout  # noqa: E402
from tests.hostile._servers import (  # noqa: E402
    SHAPES,
    RawServer,
    Shape,
    bomb,
    compressed,
    json_answer,
    slowloris,
)

RUN_ID = "run_01HY0000000000000000000000"
NOW = "2026-01-01T00:00:00Z"
RUN = {
    "id": RUN_ID,
    "status": "SUCCEEDED",
    "flow_version": "f:v1",
    "created_at": NOW,
    "updated_at": NOW,
}
ROWS = [{"row": i} for i in range(100)]
_CAP = 10_000  # items a listing may yield before the worker calls it a loop
_GIB = 1 << 30

# name -> (what the server sends, which call meets it)
CASES: dict[str, tuple[Callable[[], Shape], str]] = {
    "gzip bomb (1 GiB from 1 MB)": (lambda: _bomb("gzip"), "get"),
    "deflate bomb (1 GiB from 1 MB)": (lambda: _bomb("deflate"), "get"),
    "endless chunked body": (lambda: SHAPES["endless chunked body"], "get"),
    "endless body until close": (lambda: SHAPES["endless body until close"], "get"),
    "Content-Length of 1 TB": (lambda: SHAPES["Content-Length too large"], "get"),
    "40 MiB past a Content-Length of 2": (
        lambda: SHAPES["body longer than its Content-Length"],
        "get",
    ),
    "endless error body (500)": (lambda: SHAPES["endless error body"], "get"),
    "error detail of 5 MB (422)": (
        lambda: json_answer({"detail": "d" * 5_000_000, "code": "validation_error"}, 422),
        "get",
    ),
    "body dribbled a byte per 5 s": (lambda: slowloris(5.0), "get"),
    "cursor cycle (next_cursor repeats)": (
        lambda: json_answer({"items": [RUN], "next_cursor": "c1"}),
        "list runs",
    ),
    "page= ignored (page 1 each time)": (
        lambda: json_answer({"items": ROWS, "total": 1000, "page": 1, "size": 100, "pages": 10}),
        "results",
    ),
    "envelope without pages (total 1000)": (
        lambda: json_answer({"items": ROWS, "total": 1000, "page": 1, "size": 100}),
        "results",
    ),
}


def _bomb(encoding: str) -> Shape:
    bomb(_GIB, encoding)  # compressed here, before the client starts waiting (seconds of work)
    return compressed(encoding, _GIB)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _count(items: Any) -> str:
    seen = 0
    distinct = set()
    async for item in items:
        seen += 1
        distinct.add(json.dumps(item, sort_keys=True) if isinstance(item, dict) else item.id)
        if seen >= _CAP:
            return f"looped: cut off by the benchmark after {seen:,} items"
    return f"returned {seen:,} items ({len(distinct):,} distinct)"


async def _call(lume: AsyncLume, call: str) -> str:
    calls: dict[str, Callable[[], Awaitable[str]]] = {
        "get": lambda: _one(lume),
        "list runs": lambda: _count(lume.runs.list()),
        "results": lambda: _count(lume.runs.results(RUN_ID)),
    }
    try:
        return await calls[call]()
    except LumeError as exc:
        return f"{type(exc).__name__} ({len(str(exc)):,}-char message)"


async def _one(lume: AsyncLume) -> str:
    await lume.runs.get(RUN_ID)
    return "returned"


def worker(name: str, url: str) -> dict[str, Any]:
    """One call against the shape ``name`` at ``url``, in this (fresh) process."""
    call = CASES[name][1]

    async def main() -> str:
        timeout = Timeout(total=120, read=2)
        async with AsyncLume(api_key="k" * 24, base_url=url, max_retries=0, timeout=timeout) as c:
            return await _call(c, call)

    before = _peak_rss_mib()
    start = time.perf_counter()
    outcome = asyncio.run(main())
    return {
        "shape": name,
        "call": call,
        "outcome": outcome,
        "peak_rss_growth_mib": round(_peak_rss_mib() - before, 1),
        "wall_s": round(time.perf_counter() - start, 2),
    }


async def _measure(name: str) -> dict[str, Any]:
    shape = CASES[name][0]()
    async with RawServer(shape) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            name,
            server.url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
    row: dict[str, Any] = json.loads(out)
    # 64 MiB: twice the default max_response_bytes of 32 MiB, and then some for the process.
    row["bounded"] = row["peak_rss_growth_mib"] < 96 and not row["outcome"].startswith("looped")
    return row


def report() -> list[dict[str, Any]]:
    rows = []
    for name in CASES:
        row = asyncio.run(_measure(name))
        print(f"hostile {name}: {row}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| shape | call | outcome | peak RSS growth (MiB) | wall s |",
        "|---|---|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['shape']} | {row['call']} | {row['outcome']} | "
            f"{row['peak_rss_growth_mib']} | {row['wall_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], sys.argv[2])))
