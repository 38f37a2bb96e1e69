"""A lying service for tests and benchmarks: the emulator behind a proxy whose listings lie.

``LyingProxy`` forwards every request to an upstream emulator and, with probability ``rate``,
rewrites a listing's answer before handing it on: a page envelope claims another page number,
another size, another page count, loses its last row or repeats one; a run listing points its
``next_cursor`` back at a cursor the walk has followed already, or serves an empty page that
points on. Every lie is one a careful client can see through; a client that believes it loops,
drops rows or reads them twice. Decisions come from one ``random.Random(seed)``; ``told``
counts the lies.
"""

from __future__ import annotations

import random
from collections import Counter
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from lume_async import AsyncLume, ResponseValidationError

__all__ = ["LyingProxy", "walk_runs"]

_PAGE_LIES = ("page", "size", "pages", "short", "repeat_row")
_CURSOR_LIES = ("cursor_back", "empty_points_on")


class LyingProxy:
    """``async with LyingProxy(port, rate=0.2) as liar:`` then point a client at ``liar.url``."""

    def __init__(self, upstream_port: int, *, rate: float, seed: int = 0) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.rate = rate
        self.told: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._followed: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read(),
            headers=headers,
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
            kept = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() in ("content-type", "x-request-id", "retry-after")
            }
        if request.method == "GET" and status == 200 and self._rng.random() < self.rate:
            body = self._lie(request, body)
        return web.Response(status=status, body=body, headers=kept)

    def _lie(self, request: web.Request, body: bytes) -> bytes:
        doc: Any = orjson.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            return body
        if "next_cursor" in doc:
            lie = self._cursor_lie(request, doc)
        elif "total" in doc:
            lie = self._page_lie(doc)
        else:
            lie = None
        if lie is None:
            return body
        self.told[lie] += 1
        return orjson.dumps(doc)

    def _page_lie(self, doc: dict[str, Any]) -> str | None:
        items, size = doc["items"], doc["size"]
        lie = self._rng.choice(_PAGE_LIES)
        if lie == "page":
            doc["page"] += 1
        elif lie == "size":
            doc["size"] += 1
        elif lie == "pages":
            doc["pages"] += 1
        elif lie == "short" and items:
            items.pop()
        elif lie == "repeat_row" and items and len(items) < size:
            items.append(items[0])
        else:
            return None
        return lie

    def _cursor_lie(self, request: web.Request, doc: dict[str, Any]) -> str | None:
        given = request.query.get("cursor")
        if given is None:
            self._followed = []  # a walk starts over: one walk through the runs at a time
        else:
            self._followed.append(given)
        lie = self._rng.choice(_CURSOR_LIES)
        if lie == "cursor_back" and self._followed:
            # Back to a cursor this walk has followed: the same runs again, round and round.
            doc["next_cursor"] = self._rng.choice(self._followed)
            return lie
        if lie == "empty_points_on" and doc["next_cursor"] is not None:
            doc["items"] = []
            return lie
        return None

    async def __aenter__(self) -> LyingProxy:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


async def walk_runs(
    lume: AsyncLume, *, page_size: int = 100, attempts: int = 1000
) -> tuple[list[str], int]:
    """The ids of every run, walked through lies; returns them in order, and the refusals.

    After a refusal the walk goes on from the cursor of the last page trusted, read again (its
    own ``next_cursor`` may have been the lie), as a client resuming with ``cursor=`` would.
    """
    ids: list[str] = []
    refused = 0
    trusted: list[tuple[str | None, int]] = []  # (the cursor that fetched a page, ids before it)
    for _ in range(attempts):
        cursor, kept = trusted.pop() if trusted else (None, 0)
        del ids[kept:]
        try:
            async for page in lume.runs.list(page_size=page_size, cursor=cursor).pages():
                trusted.append((cursor, len(ids)))
                ids.extend(run.id for run in page.items)
                cursor = page.next_cursor
        except ResponseValidationError:
            refused += 1
        else:
            return ids, refused
    raise AssertionError(f"no honest walk through the runs in {attempts} attempts")
