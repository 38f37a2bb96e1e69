"""Answers from the service: read within bounds, and turned into typed errors when they fail.

Whatever a server sends, the client reads at most ``max_response_bytes`` of an answer (counted
after decompression, checked while the body streams in) and at most ``MAX_ERROR_READ`` of an
error's, so it holds at most about twice that per answer in flight (the chunks, then the body
joined from them); it keeps at most ``MAX_ERROR_BODY`` of an error's body, and puts at most
``MAX_MESSAGE`` characters into an error's message.
"""

from __future__ import annotations

import datetime
import email.utils
import itertools
import math
import re
from typing import Any, Final, TypeVar

import aiohttp
import attrs
import orjson
from multidict import CIMultiDictProxy

from . import _converter
from ._exceptions import (
    APIError,
    AuthenticationError,
    DuplicateRunError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
    cut,
)
from ._http1_head import gather
from ._http_types import Answer

__all__ = [
    "MAX_ERROR_BODY",
    "MAX_ERROR_READ",
    "Response",
    "answer_too_large",
    "error_from_response",
    "read_body",
    "read_error_body",
    "retry_after",
    "too_large",
]

MAX_ERROR_READ: Final = 8 * 1024 * 1024
"""The most of an error answer's body that is read (less if ``max_response_bytes`` is less): a
real error says what it has to in far less; the rest is dropped with the connection."""
MAX_ERROR_BODY: Final = 64 * 1024
"""The largest error body (as JSON) an ``APIError.body`` keeps; a larger one is shortened."""

T = TypeVar("T")

_MAX_STRING: Final = 2000
_OBJECT_START: Final = re.compile(rb"[ \t\r\n]*\{")
_STATUS_ERRORS: Final[dict[int, type[APIError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


@attrs.frozen
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any:
        try:
            return _converter.loads(self.body)
        except ResponseValidationError as exc:
            raise ResponseValidationError(str(exc), request_id=self.request_id) from exc

    def structure(self, cls: type[T], *, what: str) -> T:
        """The answer's JSON as ``cls``; a ResponseValidationError names this answer's request."""
        try:
            return _converter.structure(self.json(), cls, what=what)
        except ResponseValidationError as exc:
            if exc.request_id is None:
                exc.request_id = self.request_id
            raise


# --- reading --------------------------------------------------------------------------------------


async def read_body(resp: aiohttp.ClientResponse, limit: int, method: str, route: str) -> bytes:
    """The whole body of a success answer; ResponseTooLargeError past ``limit`` bytes.

    An answer of known length, not encoded, within the limit is read in one call (the common
    case, as fast as it gets); any other is counted chunk by chunk as aiohttp decompresses it, so
    neither a compression bomb, nor an endless body, nor a lying ``Content-Length`` can make the
    client hold more than ``limit`` bytes.
    """
    length = resp.content_length
    if "Content-Encoding" not in resp.headers and length is not None:
        if length <= limit:
            return await resp.read()
        raise too_large(
            resp.status, resp.headers, limit, f"{method} {route}", f"its Content-Length is {length}"
        )
    chunks: list[bytes | bytearray] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large(
                resp.status, resp.headers, limit, f"{method} {route}", "reading stopped there"
            )
        gather(chunks, chunk)
    return b"".join(chunks)


async def read_error_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to ``limit`` (and ``MAX_ERROR_READ``) bytes of an error answer's body; the rest is
    dropped with the connection (the status says more than a body cut short, so this is not an
    error of its own)."""
    limit = min(limit, MAX_ERROR_READ)
    chunks: list[bytes | bytearray] = []
    size = 0
    async for chunk in resp.content.iter_any():
        kept = chunk[: limit - size]
        gather(chunks, kept)
        size += len(kept)
        if size >= limit:
            break
    return b"".join(chunks)


def answer_too_large(answer: Answer, limit: int, where: str) -> ResponseTooLargeError:
    """The error for an answer of the client's own connections past ``limit`` bytes."""
    length = answer.length
    declared = length is not None and length > limit
    detail = (
        f"its Content-Length is {length}"
        if declared and "Content-Encoding" not in answer.headers
        else "reading stopped there"
    )
    return too_large(answer.status, answer.headers, limit, where, detail)


def too_large(
    status: int, headers: CIMultiDictProxy[str], limit: int, where: str, detail: str
) -> ResponseTooLargeError:
    """The error for a success answer past ``limit`` bytes (``detail`` says how it was seen)."""
    return ResponseTooLargeError(
        f"{where}: the answer is larger than max_response_bytes ({limit:,} bytes; {detail})",
        limit=limit,
        status_code=status,
        request_id=headers.get("x-request-id"),
    )


# --- Retry-After ----------------------------------------------------------------------------------


def retry_after(headers: CIMultiDictProxy[str], now: float) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms`` when sent (finer), else
    ``Retry-After`` as seconds or as an HTTP date (RFC 9110), measured from ``now`` (epoch s)."""
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("Retry-After")
    seconds = _seconds(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)  # asctime dates carry no zone: GMT (RFC 9110)
    return max(0.0, when.timestamp() - now)


#: The longest delta-seconds a Retry-After is read as: a longer one (too large even for a float)
#: means "not for a long while", never "no hint" (RFC 9111 caps delta-seconds likewise).
_LONGEST_RETRY_AFTER: Final = float(2**31)


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), _LONGEST_RETRY_AFTER)


# --- errors ---------------------------------------------------------------------------------------


def error_from_response(
    response: Response,
    *,
    now: float,
    not_found: type[NotFoundError] = NotFoundError,
    operation: str | None = None,
) -> APIError:
    """Build the typed error for a 4xx/5xx answer, whatever its body looks like.

    ``now`` is the wall-clock time (epoch seconds) a ``Retry-After`` date is measured from;
    ``operation`` is what the request meant to do: a 403 names it unless the body says better.
    """
    status = response.status
    body = _json_object(response.body)
    detail: Any = body.get("detail") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    error_id = body.get("error_id") if isinstance(body, dict) else None
    if isinstance(detail, list):
        issues = (_describe_issue(item) for item in itertools.islice(detail, 20))
        message = "; ".join(issues) or "invalid request"
        if len(detail) > 20:
            message += f"; and {len(detail) - 20} more"
    elif isinstance(detail, str) and detail:
        message = detail
    else:
        text = response.body[:200].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status}"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code if isinstance(code, str) else None,
        "error_id": error_id if isinstance(error_id, str) else None,
        "request_id": response.request_id,
        "body": _kept(body, len(response.body)),
        "retry_after": retry_after(response.headers, now),
    }
    if status == 409 and kwargs["code"] == "duplicate_source_path":
        existing = body.get("existing_run_id") if isinstance(body, dict) else None
        existing = cut(existing, 200) if isinstance(existing, str) else None
        return DuplicateRunError(message, existing_run_id=existing, **kwargs)
    if status == 404:
        return not_found(message, **kwargs)
    if status == 403:
        said = body.get("operation") if isinstance(body, dict) else None
        refused = cut(said, 200) if isinstance(said, str) and said else operation
        return PermissionDeniedError(message, operation=refused, **kwargs)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, **kwargs)


def _json_object(data: bytes) -> Any:
    """An error body that is a JSON object, parsed; None for anything else.

    Only what starts like an object is handed to the parser: a failed parse holds the whole
    document, and an error body may be megabytes of anything.
    """
    if not _OBJECT_START.match(data):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _describe_issue(item: Any) -> str:
    if not isinstance(item, dict):
        return _text(item)
    loc = item.get("loc")
    where = ".".join(_text(p) for p in itertools.islice(loc, 10)) if isinstance(loc, list) else ""
    msg = _text(item.get("msg", "invalid"))
    return f"{cut(where, 200)}: {msg}" if where else msg


def _text(value: Any) -> str:
    """At most 200 characters of any JSON value: trimmed first, since ``str`` of a value nested
    hundreds deep (the parser reads up to 1024) would raise RecursionError."""
    return cut(value if isinstance(value, str) else str(_shrink(value, [400], 0)), 200)


def _kept(body: Any, size: int) -> Any:
    """The error body as ``APIError.body`` keeps it: whole when small, else shortened."""
    if size <= MAX_ERROR_BODY:
        return body
    budget = [MAX_ERROR_BODY // 2]
    kept = _shrink(body, budget, 0)
    # The estimate above counts characters; make sure of the bound in bytes.
    if len(orjson.dumps(kept)) > MAX_ERROR_BODY:
        return None
    return kept


def _shrink(value: Any, budget: list[int], depth: int) -> Any:
    """A copy of a JSON value with long strings cut and long or deep containers trimmed, within
    ``budget[0]`` characters (spent as it goes)."""
    if isinstance(value, str):
        text = cut(value, max(0, min(_MAX_STRING, budget[0])))
        budget[0] -= len(text) + 2
        return text
    if isinstance(value, dict | list):
        budget[0] -= 2
        if depth >= 8 or budget[0] <= 0:
            return {} if isinstance(value, dict) else []
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                if budget[0] <= 0:
                    break
                out.append(_shrink(item, budget, depth + 1))
                budget[0] -= 1
            return out
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if budget[0] <= 0:
                break
            name = _shrink(str(key), budget, depth + 1)
            kept[name] = _shrink(item, budget, depth + 1)
        return kept
    budget[0] -= 24
    return value
