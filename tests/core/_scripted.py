"""A tiny real HTTP server that answers from a script and records what it was sent.

For the few behaviours the emulator cannot be asked for on demand: exact Retry-After values, a
malformed body, a 403, headers seen on each retry, listings that lie. ``respond``, when set,
answers each request from what was sent once the script has run out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs
import orjson
from aiohttp import web


@attrs.frozen
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@attrs.frozen
class Answer:
    status: int = 200
    body: bytes | Any = b"{}"
    headers: dict[str, str] = attrs.Factory(dict)


RUN_ID = "run_01HY0000000000000000000000"


def run_json(run_id: str = RUN_ID, status: str = "PENDING") -> dict[str, Any]:
    return {
        "id": run_id,
        "status": status,
        "flow_version": "customer_cleaner:v1",
        "source_path": "s3://bucket/batch_001",
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "metadata": None,
        "error": None,
    }


class ScriptedServer:
    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.default = Answer(200, run_json())
        self.respond: Callable[[Seen], Answer] | None = None
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def then(self, *answers: Answer) -> None:
        self.script.extend(answers)

    async def _handle(self, request: web.Request) -> web.Response:
        seen = Seen(request.method, request.path_qs, dict(request.headers), await request.read())
        self.seen.append(seen)
        if self.script:
            answer = self.script.popleft()
        else:
            answer = self.respond(seen) if self.respond is not None else self.default
        body = answer.body if isinstance(answer.body, bytes) else orjson.dumps(answer.body)
        return web.Response(
            status=answer.status,
            body=body,
            headers={
                "Content-Type": "application/json",
                "x-request-id": "req_test",
                **answer.headers,
            },
        )

    async def __aenter__(self) -> ScriptedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def posts(server: ScriptedServer, path: str) -> list[Seen]:
    """The POSTs ``server`` was sent to ``path``, in order."""
    return [seen for seen in server.seen if seen.method == "POST" and seen.path == path]
