"""Query parsing and keyset pagination of ``GET /v1/runs``.

Cursors are ``[c|u][a|d]<13-digit ms><run id>``: the sort key (``created_at`` or ``updated_at``),
the direction, and the last item's key. Run ids are monotonic ULIDs, so ``created_at`` order is id
order and a page after a cursor is a binary search away; runs created meanwhile land after the
newest id and can neither be skipped nor repeated. Any string matching the documented pattern is
a valid cursor, and a cursor's order wins over ``order_by``/``order``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from ._errors import ApiError
from ._lifecycle import VirtualClock
from ._state import Run, Tenant

__all__ = ["int_param", "list_runs"]

STATUSES = frozenset(
    {
        "CREATED",
        "PENDING",
        "RUNNING",
        "SYNCING_SOURCE",
        "TRANSFORMING",
        "SYNCING_TARGET",
        "SUCCEEDED",
        "PARTIAL_FAILED",
        "FAILED",
        "CRASHED",
        "CANCELED",
    }
)
_CURSOR = re.compile(r"([cu])([ad])([0-9]{13})(run_[0-9A-HJKMNP-TV-Z]{26})")
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


def parse_datetime(name: str, raw: str) -> float:
    """RFC 3339 date-time to Unix seconds (a leap second reads as :59)."""
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
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).timestamp()
    except (ValueError, OverflowError) as exc:
        raise _invalid(name, "Input should be an RFC 3339 date-time", "datetime_parsing") from exc


def _matcher(request: web.Request, clock: VirtualClock, t: float) -> Callable[[Run], bool]:
    query = request.query
    flow_version = _str_param(request, "flow_version", 200)
    label = _str_param(request, "label", 256)
    statuses = set(query.getall("status", ()))
    unknown = statuses - STATUSES
    if unknown:
        raise _invalid("status", f"Input should be one of {sorted(STATUSES)}", "enum")
    tags = query.getall("tag", ())
    if any(len(tag) > 64 for tag in tags):
        raise _invalid("tag", "String should have at most 64 characters", "too_long")
    after = query.get("created_after")
    before = query.get("created_before")
    v_after = None if after is None else clock.from_wall(parse_datetime("created_after", after))
    v_before = None if before is None else clock.from_wall(parse_datetime("created_before", before))

    def match(run: Run) -> bool:
        if flow_version is not None and run.flow_version != flow_version:
            return False
        if label is not None and run.label != label:
            return False
        if tags and not all(tag in run.tags for tag in tags):
            return False
        created = run.plan.created
        if v_after is not None and created < v_after:
            return False
        if v_before is not None and created >= v_before:
            return False
        return not statuses or run.status(t) in statuses

    return match


def list_runs(request: web.Request, clock: VirtualClock, tenant: Tenant) -> dict[str, Any]:
    size = int_param(request, "size", 50, 1, 100)
    by = request.query.get("order_by", "created_at")
    if by not in ("created_at", "updated_at"):
        raise _invalid("order_by", "Input should be 'created_at' or 'updated_at'", "enum")
    direction = request.query.get("order", "desc")
    if direction not in ("asc", "desc"):
        raise _invalid("order", "Input should be 'asc' or 'desc'", "enum")
    raw_cursor = request.query.get("cursor")
    cursor = None
    if raw_cursor is not None:
        cursor = _CURSOR.fullmatch(raw_cursor)
        if cursor is None:
            raise _invalid("cursor", "Input should be a cursor from next_cursor", "cursor")
        by = "created_at" if cursor[1] == "c" else "updated_at"
        direction = "asc" if cursor[2] == "a" else "desc"
    t = clock.now()
    match = _matcher(request, clock, t)
    desc = direction == "desc"
    found: list[tuple[int, Run]] = []
    if by == "created_at":
        order, runs = tenant.order, tenant.runs
        if desc:
            i = bisect.bisect_left(order, cursor[4]) - 1 if cursor else len(order) - 1
            step = -1
        else:
            i = bisect.bisect_right(order, cursor[4]) if cursor else 0
            step = 1
        while 0 <= i < len(order) and len(found) <= size:
            run = runs[order[i]]
            if match(run):
                found.append((run.created_ms, run))
            i += step
    else:
        keyed = sorted(
            ((clock.ms(run.updated(t)), run.id, run) for run in tenant.runs.values() if match(run)),
            key=lambda item: (item[0], item[1]),
            reverse=desc,
        )
        if cursor:
            after = (int(cursor[3]), cursor[4])
            keyed = [k for k in keyed if ((k[0], k[1]) < after if desc else (k[0], k[1]) > after)]
        found = [(ms, run) for ms, _, run in keyed[: size + 1]]
    next_cursor = None
    if len(found) > size:
        ms, last = found[size - 1]
        next_cursor = f"{by[0]}{direction[0]}{ms:013d}{last.id}"
    return {"items": [run.to_json(clock, t) for _, run in found[:size]], "next_cursor": next_cursor}
