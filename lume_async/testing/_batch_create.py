"""Creating runs: ``POST /v1/runs`` and its batch, ``POST /v1/runs/batch-create``.

Each item of a batch is the ``POST /v1/runs`` of its ``run`` with the header
``Idempotency-Key: <idempotency_key>``, sent by the batch's principal: the same validation, the
same run creation and the same idempotency record (the fingerprint is the single request's), so
an item and a single create with the same key and body replay each other. Items run in order,
one after another; the batch answers 200 with one result per item, each the status and the JSON
body the single create would have answered (``run`` when it made or found a run, ``error``
otherwise), and ``replayed: true`` when it is a replay.

Rate limits, faults, auth and a batch's own ``Idempotency-Key`` header apply to the batch
request as a whole, in the middleware, as to any ``POST``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from ._access import Principal
from ._errors import ApiError
from ._flows import FLOW_VERSIONS
from ._http import (
    PRINCIPAL,
    SERVICE,
    answered,
    bad_idempotency_key,
    canonical_json,
    error_response,
    fingerprint_of,
    json_response,
    remembered,
)
from ._schema import request_body, request_json, validated
from ._service import Service

__all__ = ["batch_create", "create_run"]

_FLOW_VERSION = re.compile(r"[A-Za-z0-9_.-]{1,100}:v[0-9]{1,9}")
_SINGLE = "POST /v1/runs"  # what a batch item is, for its idempotency fingerprint


def created(svc: Service, who: Principal, data: Any) -> web.Response:
    """The answer of ``POST /v1/runs`` with the JSON body ``data``; ApiError when it fails.

    A well-formed flow version that does not exist is a 404 before the body is validated.
    """
    flow_version = data.get("flow_version") if isinstance(data, dict) else None
    if (
        isinstance(flow_version, str)
        and flow_version not in FLOW_VERSIONS
        and _FLOW_VERSION.fullmatch(flow_version)
    ):
        raise ApiError(404, "not_found", f"Flow version {flow_version} not found")
    body = validated("RunCreate", data)
    status, run = svc.create_run(who, body)
    # A new run is answered as of its creation instant, so it reads CREATED.
    t = run.plan.created if status == 201 else svc.clock.now()
    return json_response(status, run.to_json(svc.clock, t))


async def create_run(request: web.Request) -> web.Response:
    return created(request.app[SERVICE], request[PRINCIPAL], await request_json(request))


async def batch_create(request: web.Request) -> web.Response:
    svc, who = request.app[SERVICE], request[PRINCIPAL]
    body = await request_body(request, "BatchCreateRequest")
    results = [
        await _item(svc, who, i, item["idempotency_key"], item["run"])
        for i, item in enumerate(body["items"])
    ]
    return json_response(200, {"results": results})


async def _item(
    svc: Service, who: Principal, i: int, key: str, run: dict[str, Any]
) -> dict[str, Any]:
    """One item's result: what ``POST /v1/runs`` with ``Idempotency-Key: key`` would answer."""
    bad = bad_idempotency_key(key, ["body", "items", i, "idempotency_key"], "idempotency_key")
    if bad is not None:
        return _result(error_response(bad), replayed=False)

    async def work() -> web.StreamResponse:
        return created(svc, who, run)

    fingerprint = fingerprint_of(who.rights(), _SINGLE, canonical_json(run))
    resp, replayed = await remembered(svc, who.tenant, key, fingerprint, lambda: answered(work))
    return _result(resp, replayed=replayed)


def _result(resp: web.StreamResponse, *, replayed: bool) -> dict[str, Any]:
    """``{"status", "run" | "error", "replayed"?}`` of an item's answer."""
    body = resp.body if isinstance(resp, web.Response) else None
    if not isinstance(body, bytes):  # every create answer is a JSON body
        raise TypeError(f"a create answered {type(body).__name__}, not JSON bytes")
    result: dict[str, Any] = {
        "status": resp.status,
        "run" if resp.status < 300 else "error": orjson.loads(body),
    }
    if replayed:
        result["replayed"] = True
    return result
