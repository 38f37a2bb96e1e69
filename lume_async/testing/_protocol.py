"""The emulator's connections: requests aiohttp cannot parse still get the documented JSON error.

aiohttp answers a request it cannot parse (an over-long request line or header, a malformed
message) itself, in plain text and without the middleware, so without ``x-request-id``. The
runner here makes connections whose error answer is the emulator's ``Error`` body instead, and
raises the line and header limits far above anything the OpenAPI document allows.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ._errors import ApiError
from ._http import error_response

__all__ = ["MAX_LINE", "JsonErrorRunner"]

MAX_LINE = 64 * 1024  # request line and each header; the document's longest URL is well below


class _JsonErrorHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already started; cannot send the error")
        code = "bad_request" if status == 400 else "internal" if status >= 500 else "http_error"
        detail = message or "The request could not be parsed"
        if status >= 500:
            detail = "Internal error"
        resp = error_response(ApiError(status, code, detail.splitlines()[0][:200]))
        resp.headers["x-request-id"] = uuid.uuid4().hex
        resp.force_close()
        return resp


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer unparseable requests with the ``Error`` JSON."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_LINE)
        kwargs.setdefault("max_field_size", MAX_LINE)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # the same server; only its connections differ
        return server
