"""The one middleware: request ids, auth, rate limits, faults, idempotency and stats.

Keeping all cross-cutting work in a single middleware keeps the hot path short: one dict lookup
for the route key, one for the key's principal, and faults and idempotency only when armed or
asked for.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .._validation import is_loopback
from ._access import Principal
from ._errors import ApiError
from ._service import Service
from ._state import IdempotencyRecord, Tenant

__all__ = [
    "PRINCIPAL",
    "SERVICE",
    "answered",
    "bad_idempotency_key",
    "canonical_json",
    "error_response",
    "fingerprint_of",
    "json_response",
    "middleware",
    "remembered",
    "request_id",
]

SERVICE = web.AppKey("lume_service", Service)
PRINCIPAL = web.RequestKey("lume_principal", Principal)
FAULT_STATUS = web.RequestKey("lume_fault_status", str)
IDEMPOTENCY_TTL = 24 * 3600.0
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")
_JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Work = Callable[[], Awaitable[web.StreamResponse]]

# (method, route template) -> (stats key, kind); kind is "api", "open" or "control". Keyed by the
# template, not by the resource: each emulator's app has resources of its own, and a process may
# start thousands of emulators (one per test).
_ROUTES: dict[tuple[str, str], tuple[str, str]] = {}


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=_JSON, headers=headers)


def error_response(err: ApiError) -> web.Response:
    body: dict[str, Any] = {"detail": err.detail, "error_id": str(uuid.uuid4()), "code": err.code}
    body.update(err.extra)
    return json_response(err.status, body, err.headers or None)


# The longest wait an answer names: HTTP's cap on delta-seconds (RFC 9111, 1.2.2). A slower rate
# limit or a longer ``retry_after`` (up to infinity: a rate of 1e-320) still says "much later".
MAX_RETRY_AFTER = 2**31


def _retry_headers(seconds: float) -> dict[str, str]:
    seconds = min(seconds, MAX_RETRY_AFTER)
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


def _route(request: web.Request) -> tuple[str, str]:
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else None
    if template is not None:
        hit = _ROUTES.get((request.method, template))
        if hit is not None:
            return hit
    path = template or request.path
    kind = "control" if path.startswith("/_emulator/") else "api"
    if template == "/v1/openapi.json":
        kind = "open"
    hit = (f"{request.method} {template or '<unmatched>'}", kind)
    if template is not None:
        _ROUTES[(request.method, template)] = hit
    return hit


def request_id(request: web.Request) -> str:
    """The client's ``x-request-id`` when it can be sent back as it came, else a new one.

    A value that is not text (bytes that are not UTF-8) would go out as an empty header.
    """
    given = request.headers.get("x-request-id")
    if given and given.isprintable():
        return given
    return uuid.uuid4().hex


def _api_key(request: web.Request) -> str | None:
    headers = request.headers
    key = headers.get("lume-api-key")
    if key is None:
        auth = headers.get("Authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
    return key


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    svc = request.app[SERVICE]
    task = asyncio.current_task()  # aiohttp answers each request in a task of its own
    svc.in_flight.add(task, request)
    try:
        return await _answer(request, handler, svc)
    finally:
        svc.in_flight.discard(task)


async def _answer(request: web.Request, handler: Handler, svc: Service) -> web.StreamResponse:
    rid = request_id(request)
    route_key, kind = _route(request)
    http_exc = request.match_info.http_exception
    if http_exc is not None:
        resp: web.StreamResponse = _http_error(http_exc)
    elif kind == "api":
        resp = await _api(request, handler, svc)
    elif kind == "control" and not _is_loopback(request):
        resp = error_response(ApiError(403, "forbidden", "The control plane is loopback-only"))
    else:
        resp = await _invoke(request, handler)
    if not resp.prepared:
        resp.headers["x-request-id"] = rid
    status = request.get(FAULT_STATUS)
    svc.count(route_key, status if status is not None else str(resp.status))
    return resp


def _is_loopback(request: web.Request) -> bool:
    """Whether the request came from this machine: 127.0.0.0/8, ::1, or IPv4 loopback mapped
    into IPv6."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer or not isinstance(peer[0], str):  # a Unix socket has no address: not loopback
        return False
    address = peer[0].partition("%")[0]  # without an IPv6 scope
    return address != "localhost" and is_loopback(address)  # an address, never a name


def _http_error(exc: web.HTTPException) -> web.Response:
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        err = ApiError(405, "method_not_allowed", "Method not allowed", headers=headers)
    elif exc.status == 404:
        err = ApiError(404, "not_found", "No such route")
    elif exc.status == 413:  # a body over the app's client_max_size
        err = ApiError(413, "payload_too_large", exc.text or "Request body too large")
    else:
        err = ApiError(exc.status, "http_error", exc.reason)
    return error_response(err)


async def _invoke(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await answered(functools.partial(handler, request))


async def answered(work: Work) -> web.StreamResponse:
    """The answer of ``work``: its response, or its error in the documented shape."""
    try:
        return await work()
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:  # aiohttp's own refusal, e.g. a body over the size limit
        return _http_error(exc)
    except Exception as exc:  # a bug in the emulator: still answer in the documented shape
        return error_response(ApiError(500, "internal", f"{type(exc).__name__}: {exc}"))


async def _api(request: web.Request, handler: Handler, svc: Service) -> web.StreamResponse:
    key = _api_key(request)
    principal = svc.keys.get(key) if key is not None else None
    if principal is None or key is None:
        return error_response(ApiError(401, "unauthorized", "Missing or invalid API key"))
    if svc.rate_limit:
        wait = svc.rate_check(key)
        if wait is not None:
            return error_response(
                ApiError(429, "rate_limited", "Rate limit exceeded", headers=_retry_headers(wait))
            )
    request[PRINCIPAL] = principal
    fault = svc.faults.draw() if svc.faults.profile is not None else None
    if fault is None:
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            return await _idempotent(request, handler, svc, principal, None)
        return await _invoke(request, handler)
    kind, phase = fault
    if phase == "before" and kind != "delay":
        return await _fault(request, svc, kind, None)
    if request.method == "POST" and "Idempotency-Key" in request.headers:
        resp = await _idempotent(request, handler, svc, principal, fault)
    else:
        resp = await _work(request, handler, svc, fault)
    if phase == "after" and kind != "delay":
        return await _fault(request, svc, kind, resp)
    return resp


async def _work(
    request: web.Request, handler: Handler, svc: Service, fault: tuple[str, str] | None
) -> web.StreamResponse:
    """Run the handler; a ``delay`` fault makes it late before or after the work."""
    delay = _delay(svc)
    if fault == ("delay", "before"):
        await svc.clock.clock.sleep(delay)
    resp = await _invoke(request, handler)
    if fault == ("delay", "after"):
        await svc.clock.clock.sleep(delay)
    return resp


def _delay(svc: Service) -> float:
    return svc.faults.profile.delay if svc.faults.profile is not None else 0.0


def canonical_json(value: Any) -> bytes:
    """The JSON of ``value`` with sorted keys: the same for any spelling of the same value."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def fingerprint_of(principal: str, route: str, canonical: bytes) -> bytes:
    """What makes a request the same request: its principal, method, path and JSON body.

    Keys are the tenant's, but another principal's request is another request (a 422), so a
    replay never shows a run to someone who may not read it. ``principal`` is what decides
    what it may read (``Principal.rights``): a key of the same name with other groups, or not
    an admin, is another principal here. ``route`` is ``"METHOD /path"``;
    a ``POST /v1/runs/batch-create`` item is the ``POST /v1/runs`` of its ``run``.
    """
    return f"{principal}\n{route}\n".encode() + canonical


def _fingerprint(request: web.Request, body: bytes, principal: str) -> bytes:
    try:
        canonical = canonical_json(orjson.loads(body))
    except orjson.JSONDecodeError:
        canonical = body
    return fingerprint_of(principal, f"{request.method} {request.path}", canonical)


def bad_idempotency_key(key: str, loc: list[str | int], name: str) -> ApiError | None:
    """The 422 of a malformed idempotency key (``name`` as the caller spelled it), if it is."""
    if _IDEMPOTENCY_KEY.fullmatch(key):
        return None
    return ApiError(
        422,
        "validation_error",
        [
            {
                "loc": loc,
                "msg": f"{name} must be 1 to 255 printable ASCII characters without spaces",
                "type": "pattern_mismatch",
            }
        ],
    )


async def _idempotent(
    request: web.Request,
    handler: Handler,
    svc: Service,
    principal: Principal,
    fault: tuple[str, str] | None,
) -> web.StreamResponse:
    """A POST with an ``Idempotency-Key`` header: the key checked, the request remembered."""
    key = request.headers["Idempotency-Key"]
    bad = bad_idempotency_key(key, ["header", "Idempotency-Key"], "Idempotency-Key")
    if bad is not None:
        return error_response(bad)
    try:
        body = await request.read()
    except web.HTTPException as exc:  # a body over the size limit: refused, not remembered
        return _http_error(exc)
    fingerprint = _fingerprint(request, body, principal.rights())
    # An answer held after the work is held after it was done: the key stays in flight until the
    # answer is out, and a stop or a reset that cuts the wait short still finds it remembered.
    held = fault == ("delay", "after")
    resp, _ = await remembered(
        svc,
        principal.tenant,
        key,
        fingerprint,
        lambda: _work(request, handler, svc, None if held else fault),
        functools.partial(svc.clock.clock.sleep, _delay(svc)) if held else None,
    )
    return resp


async def remembered(
    svc: Service,
    tenant: Tenant,
    key: str,
    fingerprint: bytes,
    work: Work,
    late: Callable[[], Awaitable[None]] | None = None,
) -> tuple[web.StreamResponse, bool]:
    """Replay the first answer to a key; refuse reuse with another body or while in flight.

    Otherwise do ``work`` and remember its answer, unless it is one to try again (a 5xx, 401,
    422 or 429); ``late`` holds the answer after the work, the key still in flight, and the
    answer is remembered even if that wait is cancelled. The second value says whether the
    answer is a replay (it then carries the ``idempotent-replayed: true`` header).
    """
    now = svc.clock.clock.monotonic()
    record = tenant.idempotency_record(key, now, IDEMPOTENCY_TTL)
    if record is not None:
        if record.fingerprint != fingerprint:
            err = ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request",
            )
            return error_response(err), False
        if record.status == 0:
            err = ApiError(
                409,
                "idempotency_in_flight",
                "A request with this Idempotency-Key is still being processed",
            )
            return error_response(err), False
        svc.replays += 1
        replay = web.Response(
            status=record.status,
            body=record.body,
            content_type=_JSON,
            headers={"idempotent-replayed": "true"},
        )
        return replay, True
    record = IdempotencyRecord(fingerprint, now)
    tenant.remember(key, record, now, IDEMPOTENCY_TTL)
    try:
        resp = await work()
    except BaseException:  # not done (cancelled, say): nothing to remember
        if tenant.idempotency.get(key) is record:
            del tenant.idempotency[key]
        raise
    try:
        if late is not None:
            await late()
    finally:
        body = resp.body if isinstance(resp, web.Response) else None
        replayable = resp.status < 500 and resp.status not in (401, 422, 429)
        if replayable and isinstance(body, bytes):
            record.status, record.body = resp.status, body
        elif tenant.idempotency.get(key) is record:
            del tenant.idempotency[key]
    return resp, False


async def _fault(
    request: web.Request, svc: Service, kind: str, resp: web.StreamResponse | None
) -> web.StreamResponse:
    """The answer a fault leaves: an error status, a reset connection or a truncated body."""
    profile = svc.faults.profile
    retry_after = profile.retry_after if profile is not None else 1.0
    if kind == "reset":
        request[FAULT_STATUS] = "reset"
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    if kind == "truncate":
        request[FAULT_STATUS] = "truncate"
        status = resp.status if resp is not None else 200
        if request.method == "HEAD" or status in (204, 304):
            # An answer without a body: cut its head instead, or the client would get it whole.
            if request.transport is not None:
                request.transport.write(f"HTTP/1.1 {status} ".encode())
                request.transport.close()
            return web.Response(status=500)
        full = resp.body if isinstance(resp, web.Response) else None
        body = full if isinstance(full, bytes) and full else b'{"detail": "truncated", "code": "x"}'
        out = web.StreamResponse(status=status)
        out.content_type = _JSON
        out.content_length = len(body) + 64
        out.headers["x-request-id"] = request_id(request)
        await out.prepare(request)
        await out.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        return out
    if kind == "429":
        err = ApiError(429, "rate_limited", "Injected fault", headers=_retry_headers(retry_after))
    elif kind == "503":
        err = ApiError(503, "unavailable", "Injected fault", headers=_retry_headers(retry_after))
    elif kind == "502":
        err = ApiError(502, "bad_gateway", "Injected fault")
    else:
        err = ApiError(500, "internal", "Injected fault")
    return error_response(err)
