"""Handlers of the ``/v1`` API. Auth, faults and idempotency happen in the middleware.

Creating runs (``POST /v1/runs`` and ``POST /v1/runs/batch-create``) is ``_batch_create``'s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ._access import Principal
from ._batch_create import batch_create, create_run
from ._errors import ApiError, validation_error
from ._flows import FLOWS, flow_json
from ._http import PRINCIPAL, SERVICE, json_response
from ._listing import int_param, list_runs
from ._schema import openapi_bytes, request_body
from ._service import EVENT_TYPES, Service
from ._state import Webhook
from ._webhooks import new_secret, secret_key

__all__ = ["add_routes"]


PAGE_SIZE = 100


def _ctx(request: web.Request) -> tuple[Service, Principal]:
    """The service, and the principal the request's API key acts as."""
    return request.app[SERVICE], request[PRINCIPAL]


def _page(request: web.Request, total: int) -> tuple[int, int, int, dict[str, Any]]:
    """Offset, limit, and the envelope without items, from ``page``/``size``."""
    page = int_param(request, "page", 1, 1, 1_000_000_000)
    size = int_param(request, "size", PAGE_SIZE, 1, 100)
    envelope = {"total": total, "page": page, "size": size, "pages": math.ceil(total / size)}
    return (page - 1) * size, size, total, envelope


def _paged(items: list[Any], envelope: dict[str, Any]) -> web.Response:
    return json_response(200, {"items": items, **envelope})


# -- runs --------------------------------------------------------------------------------------


async def get_run(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    run = svc.get_run(who, request.match_info["run_id"])
    return json_response(200, run.to_json(svc.clock, svc.clock.now()))


async def get_runs(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    return json_response(200, list_runs(request, svc.clock, who))


async def batch_get(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    body = await request_body(request, "BatchGetRequest")
    ids = body["ids"]
    known: dict[str, str] = body.get("known") or {}
    t = svc.clock.now()
    items: list[dict[str, Any]] = []
    missing: list[str] = []
    unchanged: list[str] = []
    seen: set[str] = set()
    runs = who.tenant.runs
    admin = who.admin
    for run_id in ids:
        if run_id in seen:
            continue
        seen.add(run_id)
        run = runs.get(run_id)
        if run is None or not (admin or run.grants.can_read(who)):
            missing.append(run_id)
        elif (
            run_id in known
            and _same_instant(known[run_id], run.updated_iso(svc.clock, t))
            and not run.updated_shared(svc.clock, t)  # the caller may hold an earlier state
        ):
            unchanged.append(run_id)
        else:
            items.append(run.to_json(svc.clock, t))
    answer: dict[str, list[Any]] = {"items": items, "missing": missing}
    if "known" in body:
        answer["unchanged"] = unchanged
    return json_response(200, answer)


def _same_instant(given: str, updated: str) -> bool:
    """Whether ``given`` (any ISO-8601 timestamp; naive is UTC) is the instant ``updated`` names.

    Anything that is not a timestamp is simply not the same instant: the run is sent in full.
    """
    if given == updated:
        return True
    try:
        at = datetime.fromisoformat(given)
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that leaves year 1..9999
        return False
    return f"{at:%Y-%m-%dT%H:%M:%S.%f}Z" == updated


async def patch_run(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    body = await request_body(request, "RunPatch")
    run = svc.patch_run(who, request.match_info["run_id"], body)
    return json_response(200, run.to_json(svc.clock, svc.clock.now()))


async def cancel_run(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    run = svc.cancel_run(who, request.match_info["run_id"])
    return json_response(200, run.to_json(svc.clock, svc.clock.now()))


async def _rows(request: web.Request, kind: str) -> web.Response:
    svc, who = _ctx(request)
    run = svc.get_run(who, request.match_info["run_id"])
    t = svc.clock.now()
    if not run.is_terminal(t):
        raise ApiError(
            409, "run_not_finished", f"Run {run.id} is {run.status(t)}; rows exist once it ends"
        )
    mapped, rejected = run.rows_served(t)
    total = mapped if kind == "results" else rejected
    offset, limit, _, envelope = _page(request, total)
    if offset >= total:
        return _paged([], envelope)
    src = run.source
    rows = src.results(offset, limit) if kind == "results" else src.rejects(offset, limit)
    return _paged(rows, envelope)


async def get_results(request: web.Request) -> web.Response:
    return await _rows(request, "results")


async def get_rejects(request: web.Request) -> web.Response:
    return await _rows(request, "rejects")


async def get_input(request: web.Request) -> web.Response:
    """The source records a run read: inline rows at once, a path's once its source was read."""
    svc, who = _ctx(request)
    run = svc.get_run(who, request.match_info["run_id"])
    t = svc.clock.now()
    if not run.input_readable(t):
        status = run.status(t)
        why = "was canceled before" if status == "CANCELED" else f"is {status} and has not finished"
        raise ApiError(
            409,
            "input_not_read",
            f"Run {run.id} {why} reading its source",
            extra={"status": status},
        )
    total = run.source.input_rows
    offset, limit, _, envelope = _page(request, total)
    return _paged(run.source.inputs(offset, limit) if offset < total else [], envelope)


async def get_logs(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    run = svc.get_run(who, request.match_info["run_id"])
    logs = run.logs(svc.clock, svc.clock.now())
    offset, limit, _, envelope = _page(request, len(logs))
    return _paged(logs[offset : offset + limit], envelope)


# -- flows -------------------------------------------------------------------------------------


async def get_flows(request: web.Request) -> web.Response:
    flows = [flow_json(name) for name in FLOWS]
    offset, limit, _, envelope = _page(request, len(flows))
    return _paged(flows[offset : offset + limit], envelope)


async def get_flow(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FLOWS:
        raise ApiError(404, "not_found", f"Flow {name} not found")
    return json_response(200, flow_json(name))


# -- webhooks ----------------------------------------------------------------------------------


async def create_webhook(request: web.Request) -> web.Response:
    svc, who = _ctx(request)
    body = await request_body(request, "WebhookCreate")
    secret = body.get("secret") or new_secret()
    try:
        secret_key(secret)
    except ValueError as exc:
        raise validation_error(["body", "secret"], str(exc), "secret") from exc
    events = list(dict.fromkeys(body.get("events") or EVENT_TYPES))
    hook = svc.add_webhook(who, body["url"], events, secret)
    return json_response(201, hook.to_json())


async def get_webhooks(request: web.Request) -> web.Response:
    _, who = _ctx(request)
    hooks = [h.to_json() for h in who.tenant.webhooks.values() if h.visible_to(who)]
    offset, limit, _, envelope = _page(request, len(hooks))
    return _paged(hooks[offset : offset + limit], envelope)


def _webhook(request: web.Request) -> Webhook:
    """The webhook of the path, if the caller may see it (its owner, or a tenant admin)."""
    _, who = _ctx(request)
    hook_id = request.match_info["webhook_id"]
    hook = who.tenant.webhooks.get(hook_id)
    if hook is None or not hook.visible_to(who):
        raise ApiError(404, "not_found", f"Webhook {hook_id} not found")
    return hook


async def get_webhook(request: web.Request) -> web.Response:
    return json_response(200, _webhook(request).to_json())


async def delete_webhook(request: web.Request) -> web.Response:
    hook = _webhook(request)
    del request[PRINCIPAL].tenant.webhooks[hook.id]
    return web.Response(status=204)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_bytes(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/openapi.json", openapi)
    r.add_post("/v1/runs", create_run)
    r.add_get("/v1/runs", get_runs)
    r.add_post("/v1/runs/batch-get", batch_get)
    r.add_post("/v1/runs/batch-create", batch_create)
    r.add_get("/v1/runs/{run_id:run_[^/]+}", get_run)
    r.add_patch("/v1/runs/{run_id:run_[^/]+}", patch_run)
    r.add_post("/v1/runs/{run_id:run_[^/]+}/cancel", cancel_run)
    r.add_get("/v1/runs/{run_id:run_[^/]+}/results", get_results)
    r.add_get("/v1/runs/{run_id:run_[^/]+}/rejects", get_rejects)
    r.add_get("/v1/runs/{run_id:run_[^/]+}/logs", get_logs)
    r.add_get("/v1/runs/{run_id:run_[^/]+}/input", get_input)
    r.add_get("/v1/flows", get_flows)
    r.add_get("/v1/flows/{name}", get_flow)
    r.add_post("/v1/webhooks", create_webhook)
    r.add_get("/v1/webhooks", get_webhooks)
    r.add_get("/v1/webhooks/{webhook_id}", get_webhook)
    r.add_delete("/v1/webhooks/{webhook_id}", delete_webhook)
