"""Argument checks shared by the resources: bad input fails here, before any request is sent."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from ._status import RunStatus

__all__ = [
    "check_id",
    "check_interval",
    "check_nonempty_str",
    "check_page",
    "check_page_size",
    "check_run_id",
    "check_statuses",
    "check_tags",
    "check_timestamp",
    "check_timeout",
]

_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
MAX_PAGE_SIZE = 100


def check_id(value: object, name: str, what: str, example: str) -> str:
    """An id that goes into a URL path: a short token of letters, digits, ``_`` and ``-``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not _ID.fullmatch(value):
        raise ValueError(f"{name} {value!r} is not {what} (expected e.g. {example!r})")
    return value


def check_run_id(run_id: object) -> None:
    check_id(run_id, "run_id", "a run id", "run_01HY...")


def check_page_size(page_size: object) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, not {type(page_size).__name__}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def check_page(page: object) -> None:
    if isinstance(page, bool) or not isinstance(page, int):
        raise TypeError(f"page must be an int, not {type(page).__name__}")
    if page < 1:
        raise ValueError(f"page numbers start at 1, got {page}")


def check_timeout(timeout: object, name: str = "timeout") -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {timeout!r}")


def check_interval(value: object, name: str = "poll_interval") -> None:
    check_timeout(value, name)
    if value is None or value == 0 or value == math.inf:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")


def check_tags(tags: object) -> list[str]:
    if isinstance(tags, str | bytes):
        raise TypeError("tags must be a list of strings, not a single string")
    if not isinstance(tags, Iterable):
        raise TypeError(f"tags must be a list of strings, not {type(tags).__name__}")
    out = list(tags)
    for i, tag in enumerate(out):
        if not isinstance(tag, str):
            raise TypeError(f"tags[{i}] must be a str, not {type(tag).__name__}")
    return out


def check_nonempty_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


def check_statuses(status: object) -> list[str]:
    if status is None:
        return []
    if not isinstance(status, str | Iterable):
        raise TypeError(
            f"status must be a RunStatus, a str or a list of them, not {type(status).__name__}"
        )
    values = [status] if isinstance(status, str) else list(status)
    out = []
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"status must be a RunStatus or str, got {value!r}")
        parsed = RunStatus(value)
        if not parsed.is_known:
            known = ", ".join(s.value for s in RunStatus)
            raise ValueError(f"unknown status {value!r}; expected one of {known}")
        out.append(parsed.value)
    return out


def check_timestamp(name: str, value: object) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ORDER_BY = ("created_at", "updated_at")


def check_list_filters(
    *,
    flow_version: object,
    status: object,
    label: object,
    tags: object,
    created_after: object,
    created_before: object,
    order_by: object,
    descending: object,
    page_size: object,
) -> list[tuple[str, str | int]]:
    """The query of ``runs.list(...)``, every filter checked."""
    size = check_page_size(page_size)
    if order_by not in _ORDER_BY:
        raise ValueError(f"order_by must be one of {', '.join(_ORDER_BY)}, got {order_by!r}")
    params: list[tuple[str, str | int]] = [
        ("order_by", str(order_by)),
        ("order", "desc" if descending else "asc"),
        ("size", size),
    ]
    if flow_version is not None:
        params.append(("flow_version", check_nonempty_str("flow_version", flow_version)))
    for value in check_statuses(status):
        params.append(("status", value))
    if label is not None:
        params.append(("label", check_nonempty_str("label", label)))
    if tags is not None:
        params.extend(("tag", tag) for tag in check_tags(tags))
    if created_after is not None:
        params.append(("created_after", check_timestamp("created_after", created_after)))
    if created_before is not None:
        params.append(("created_before", check_timestamp("created_before", created_before)))
    return params


def check_update(*, label: object, tags: object) -> dict[str, object]:
    """The body of a run update: a label and/or tags, at least one of them."""
    body: dict[str, object] = {}
    if label is not None:
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, not {type(label).__name__}")
        body["label"] = label
    if tags is not None:
        body["tags"] = check_tags(tags)
    if not body:
        raise ValueError("update() needs label=... and/or tags=...")
    return body


def check_batch_ids(run_ids: object, most: int) -> None:
    """Ids for one ``batch-get`` request: 1 to ``most`` run ids."""
    if isinstance(run_ids, str | bytes) or not isinstance(run_ids, Sequence):
        raise TypeError(f"run_ids must be a sequence of run ids, not {type(run_ids).__name__}")
    if not 1 <= len(run_ids) <= most:
        raise ValueError(f"batch_get takes 1 to {most} ids, got {len(run_ids)}")
    for run_id in run_ids:
        check_run_id(run_id)
