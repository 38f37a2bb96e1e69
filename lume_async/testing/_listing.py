"""Query parsing and keyset pagination of ``GET /v1/runs``.

Run ids are monotonic ULIDs, so ``created_at`` order is id order and the page after a cursor is a
binary search away; runs created meanwhile land after the newest id and are neither skipped nor
repeated. A cursor is opaque and self-contained: the filters and order it was issued for, the last
run id, and when it was issued, signed so a damaged one is refused. It resumes in any emulator
process for 24 h. A filter given along with a cursor must be the cursor's own (left out, the
cursor's applies). A cursor is at most ``MAX_CURSOR`` characters, as the document says: when the
filters are too long to carry, it carries their digest instead, and then the request gives them
again with it. Ordering by ``updated_at``, which changes while iterating, is refused.
Runs the caller may not read are skipped like runs that do not match a filter, so the keyset
stays stable under permissions too.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from aiohttp import web

from ._access import Principal
from ._errors import ApiError
from ._lifecycle import RunClock
from ._run import Run

__all__ = ["int_param", "list_runs"]

_STATUSES = (
    "CREATED",
    "PENDING",
    "SYNCING_SOURCE",
    "TRANSFORMING",
    "SYNCING_TARGET",
    "SUCCEEDED",
    "PARTIAL_FAILED",
    "FAILED",
    "CRASHED",
    "CANCELED",
)
# The TypeScript SDK's words: RUNNING is any of the three working states, INCOMPLETE is partial.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    **{status: (status,) for status in _STATUSES},
    "RUNNING": ("SYNCING_SOURCE", "TRANSFORMING", "SYNCING_TARGET"),
    "INCOMPLETE": ("PARTIAL_FAILED",),
}
CURSOR_TTL = 24 * 3600
MAX_CURSOR = 4096  # the maxLength of the ``cursor`` parameter in openapi.json
_CURSOR_KEY = b"lume-emulator-cursor-v1"  # integrity, not secrecy: any process can resume one
_RUN_ID = re.compile(r"run_[0-9A-HJKMNP-TV-Z]{26}")
_DEFAULTS: dict[str, Any] = {
    "flow_version": None,
    "source_path": None,
    "status": None,
    "label": None,
    "tag": None,
    "created_after": None,
    "created_before": None,
    "order": "desc",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def _invalid(name: str, msg: str, type_: str) -> ApiError:
    return ApiError(422, "validation_error", [{"loc": ["query", name], "msg": msg, "type": type_}])


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw):
        raise _invalid(name, "Input should be a valid integer", "int_parsing")
    value = int(raw)
    if not lo <= value <= hi:
        raise _invalid(name, f"Input should be between {lo} and {hi}", "range")
    return value


def _str_param(request: web.Request, name: str, max_len: int) -> str | None:
    raw = request.query.get(name)
    if raw is not None and len(raw) > max_len:
        raise _invalid(name, f"String should have at most {max_len} characters", "too_long")
    return raw


def parse_datetime(name: str, raw: str) -> int:
    """RFC 3339 date-time to Unix microseconds (a leap second reads as :59)."""
    m = _DATETIME.fullmatch(raw)
    try:
        if m is None:
            raise ValueError(raw)
        year, month, day, hour, minute, second = (int(m[i]) for i in range(1, 7))
        micro = int((m[7] or ".0")[1:7].ljust(6, "0"))
        if m[8]:
            tz = UTC
        else:
            off_h, off_m = int(m[10]), int(m[11])
            if off_h > 23 or off_m > 59:
                raise ValueError(raw)
            delta = timedelta(hours=off_h, minutes=off_m)
            tz = timezone(delta if m[9] == "+" else -delta)
        if second == 60:
            second = 59
        instant = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        return (instant - _EPOCH) // timedelta(microseconds=1)
    except (ValueError, OverflowError) as exc:
        raise _invalid(name, "Input should be an RFC 3339 date-time", "datetime_parsing") from exc


def _filters(request: web.Request) -> dict[str, Any]:
    """The filters (and order) this request gives, normalised; absent ones are left out."""
    query = request.query
    given: dict[str, Any] = {}
    for name, max_len in (("flow_version", 200), ("source_path", 2048), ("label", 256)):
        value = _str_param(request, name, max_len)
        if value is not None:
            given[name] = value
    if "status" in query:
        statuses: set[str] = set()
        values = query.getall("status")
        if len(values) > 12:
            raise _invalid("status", "List should have at most 12 items", "too_long")
        for value in values:
            expanded = STATUS_FILTERS.get(value)
            if expanded is None:
                raise _invalid("status", f"Input should be one of {sorted(STATUS_FILTERS)}", "enum")
            statuses.update(expanded)
        given["status"] = sorted(statuses)
    if "tag" in query:
        tags = query.getall("tag")
        if len(tags) > 50:
            raise _invalid("tag", "List should have at most 50 items", "too_long")
        if any(len(tag) > 64 for tag in tags):
            raise _invalid("tag", "String should have at most 64 characters", "too_long")
        given["tag"] = sorted(set(tags))
    for name in ("created_after", "created_before"):
        raw = query.get(name)
        if raw is not None:
            given[name] = parse_datetime(name, raw)
    order = query.get("order")
    if order is not None:
        if order not in ("asc", "desc"):
            raise _invalid("order", "Input should be 'asc' or 'desc'", "enum")
        given["order"] = order
    by = query.get("order_by")
    if by is not None and by != "created_at":
        if by == "updated_at":
            raise _invalid(
                "order_by",
                "updated_at changes while iterating, so pages would skip and repeat runs; "
                "order by created_at",
                "unstable_order",
            )
        raise _invalid("order_by", "Input should be 'created_at'", "enum")
    return given


def _sign(payload: bytes) -> bytes:
    return hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:12]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _filters_digest(filters: dict[str, Any]) -> str:
    return _b64(hashlib.sha256(orjson.dumps(filters, option=orjson.OPT_SORT_KEYS)).digest())


def encode_cursor(filters: dict[str, Any], last_id: str, issued: int) -> str:
    """A cursor carrying ``filters``, or their digest when they would make it too long."""
    payload = orjson.dumps({"f": filters, "k": last_id, "t": issued})
    cursor = _b64(payload) + "." + _b64(_sign(payload))
    if len(cursor) <= MAX_CURSOR:
        return cursor
    digest = {"order": filters["order"], "h": _filters_digest(filters)}
    payload = orjson.dumps({"f": digest, "k": last_id, "t": issued})
    return _b64(payload) + "." + _b64(_sign(payload))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_cursor(raw: str, now: float) -> tuple[dict[str, Any], str]:
    """The filters and last run id of a cursor from ``next_cursor``; 422 when not one."""
    try:
        body, _, sig = raw.partition(".")
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(sig), _sign(payload)):
            raise ValueError(raw)
        data = orjson.loads(payload)
        filters, last_id, issued = data["f"], data["k"], data["t"]
        if not (isinstance(filters, dict) and isinstance(last_id, str) and type(issued) is int):
            raise ValueError(raw)
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise _invalid("cursor", "Input should be a cursor from next_cursor", "cursor") from exc
    if int(now) - issued > CURSOR_TTL:  # ``issued`` is whole seconds: never expire early
        raise ApiError(
            422,
            "cursor_expired",
            [
                {
                    "loc": ["query", "cursor"],
                    "msg": "This cursor is more than 24 h old; list again from the start",
                    "type": "cursor_expired",
                }
            ],
        )
    return filters, last_id


def _matcher(f: dict[str, Any], t: float, who: Principal) -> Callable[[Run], bool]:
    flow_version, source_path, label = f["flow_version"], f["source_path"], f["label"]
    statuses = frozenset(f["status"]) if f["status"] is not None else None
    tags = f["tag"] or ()
    after, before = f["created_after"], f["created_before"]
    admin = who.admin

    def match(run: Run) -> bool:
        if not admin and not run.grants.can_read(who):
            return False
        if flow_version is not None and run.flow_version != flow_version:
            return False
        if source_path is not None and run.source_path != source_path:
            return False
        if label is not None and run.label != label:
            return False
        if tags and not all(tag in run.tags for tag in tags):
            return False
        if after is not None and run.created_us < after:
            return False
        if before is not None and run.created_us >= before:
            return False
        return statuses is None or run.status(t) in statuses

    return match


def _issued_for(filters: dict[str, Any]) -> dict[str, Any]:
    """What a cursor carries of ``filters``: those that are not the defaults, and the order."""
    return {k: v for k, v in filters.items() if v != _DEFAULTS[k] or k == "order"}


def _mismatch(names: list[str], by_digest: bool) -> ApiError:
    """422 for a cursor given with other filters (or, carrying a digest, without its own)."""
    msg = (
        "This cursor's filters were too long to carry in it; give the same filters with it"
        if by_digest
        else "This cursor was issued for other filters; leave them out or give the cursor's own"
    )
    return ApiError(
        422,
        "cursor_mismatch",
        [{"loc": ["query", name], "msg": msg, "type": "cursor_mismatch"} for name in names],
    )


def list_runs(request: web.Request, clock: RunClock, who: Principal) -> dict[str, Any]:
    """One page of the runs ``who`` may read that match the query, from its cursor."""
    size = int_param(request, "size", 100, 1, 100)
    given = _filters(request)
    raw_cursor = request.query.get("cursor")
    last_id: str | None = None
    if raw_cursor is None:
        filters = {**_DEFAULTS, **given}
    else:
        issued_for, last_id = decode_cursor(raw_cursor, clock.clock.time())
        digest = issued_for.pop("h", None)
        filters = {**_DEFAULTS, **issued_for}
        if digest is None:
            clash = sorted(name for name, value in given.items() if filters.get(name) != value)
        else:  # only the order is carried: the filters given must be the ones digested
            clash = ["order"] if given.get("order", filters["order"]) != filters["order"] else []
            filters.update(given)
            if not clash and _filters_digest(_issued_for(filters)) != digest:
                clash = ["cursor"]
        if clash:
            raise _mismatch(clash, digest is not None)
        if not _RUN_ID.fullmatch(last_id):
            raise _invalid("cursor", "Input should be a cursor from next_cursor", "cursor")
    t = clock.now()
    match = _matcher(filters, t, who)
    order, runs = who.tenant.order, who.tenant.runs
    if filters["order"] == "desc":
        i = bisect.bisect_left(order, last_id) - 1 if last_id else len(order) - 1
        step = -1
    else:
        i = bisect.bisect_right(order, last_id) if last_id else 0
        step = 1
    found: list[Run] = []
    while 0 <= i < len(order) and len(found) <= size:
        run = runs[order[i]]
        if match(run):
            found.append(run)
        i += step
    next_cursor = None
    if len(found) > size:
        issued = int(clock.clock.time())
        next_cursor = encode_cursor(_issued_for(filters), found[size - 1].id, issued)
    return {"items": [run.to_json(clock, t) for run in found[:size]], "next_cursor": next_cursor}
