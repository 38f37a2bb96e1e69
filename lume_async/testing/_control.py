"""The control plane under ``/_emulator/`` (loopback only): reset, faults, stats, clock, config,
principals."""

from __future__ import annotations

import math
from typing import Any

import orjson
from aiohttp import web

from ._errors import validation_error
from ._faults import FaultProfile
from ._http import SERVICE, json_response

__all__ = ["add_control_routes"]


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(["body"], f"Invalid JSON: {exc}", "json_invalid") from exc


def _refuse_extra(body: Any, allowed: set[str]) -> None:
    """A 422 naming the first key of ``body`` that is not ``allowed`` (a misspelt setting)."""
    unknown = sorted(set(body) - allowed) if isinstance(body, dict) else []
    if unknown:
        raise validation_error(["body", unknown[0]], "Extra inputs are not permitted", "extra")


async def reset(request: web.Request) -> web.Response:
    request.app[SERVICE].reset()
    return json_response(200, {"ok": True})


async def faults(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    if request.method == "GET":
        profile = svc.faults.profile
        return json_response(200, profile.to_json() if profile else {"rate": 0.0})
    try:
        profile = FaultProfile.from_json(await _json(request))
    except (TypeError, ValueError) as exc:
        raise validation_error(["body"], str(exc), "fault_profile") from exc
    svc.faults.set(profile)
    return json_response(200, profile.to_json())


async def stats(request: web.Request) -> web.Response:
    return json_response(200, request.app[SERVICE].stats())


async def advance(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    body = await _json(request)
    _refuse_extra(body, {"seconds"})
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise validation_error(["body", "seconds"], "seconds must be a number >= 0", "advance")
    try:
        svc.advance(float(seconds))
    except ValueError as exc:  # a step past the run time the emulator can keep
        raise validation_error(["body", "seconds"], str(exc), "advance") from exc
    return json_response(200, {"now": svc.clock.iso(svc.clock.now())})


async def config(request: web.Request) -> web.Response:
    """Change the rate limit (requests/s per key; null turns it off) and its burst."""
    svc = request.app[SERVICE]
    body = await _json(request)
    if not isinstance(body, dict):
        raise validation_error(["body"], "a JSON object is required", "type_error")
    _refuse_extra(body, {"rate_limit", "rate_burst"})
    # Both values are checked before either is applied: a refused body changes nothing.
    rate, burst = body.get("rate_limit", svc.rate_limit), body.get("rate_burst", svc.rate_burst)
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
    ):
        raise validation_error(["body", "rate_limit"], "must be > 0 or null", "config")
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
        raise validation_error(["body", "rate_burst"], "must be an integer >= 1", "config")
    svc.set_rate_limit(float(rate) if rate else None, burst)
    return json_response(200, {"rate_limit": svc.rate_limit, "rate_burst": svc.rate_burst})


async def principals(request: web.Request) -> web.Response:
    """A new API key for a principal: ``{tenant_key?, principal, groups?, admin?}`` -> 201."""
    svc = request.app[SERVICE]
    body = await _json(request)
    if not isinstance(body, dict):
        raise validation_error(["body"], "a JSON object is required", "type_error")
    unknown = sorted(set(body) - {"tenant_key", "principal", "groups", "admin"})
    if unknown:
        raise validation_error(["body", unknown[0]], "Extra inputs are not permitted", "extra")
    if "principal" not in body:
        raise validation_error(["body", "principal"], "Field required", "missing")
    try:
        key = svc.add_principal(
            body["principal"],
            groups=body.get("groups", ()),
            admin=body.get("admin", False),
            tenant_key=body.get("tenant_key"),
        )
    except (TypeError, ValueError) as exc:
        name = str(exc).split(" ", 1)[0].split("[", 1)[0]
        raise validation_error(["body", name], str(exc), "principal") from exc
    return json_response(201, {"api_key": key})


def add_control_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/_emulator/reset", reset)
    r.add_post("/_emulator/faults", faults)
    r.add_get("/_emulator/faults", faults)
    r.add_get("/_emulator/stats", stats)
    r.add_post("/_emulator/advance", advance)
    r.add_post("/_emulator/config", config)
    r.add_post("/_emulator/principals", principals)
