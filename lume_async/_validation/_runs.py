"""Checks of what runs and flows are asked with: ids, run requests, pages, filters, batches."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from .._status import RunStatus
from ._base import (
    bad_value,
    check_bool,
    check_callable,
    check_finite_json,
    check_int,
    check_items,
    check_iterable,
    check_nonempty_str,
    check_str_list,
    check_text,
    describe,
    in_stable_order,
    wrong_type,
)

__all__ = [
    "MAX_NAMESPACE",
    "MAX_PAGE_SIZE",
    "check_batch_call",
    "check_batch_ids",
    "check_batch_items",
    "check_concurrency",
    "check_cursor",
    "check_flow_name",
    "check_flow_version",
    "check_handles",
    "check_idempotency_key",
    "check_idempotency_namespace",
    "check_key_choice",
    "check_label",
    "check_list_filters",
    "check_page",
    "check_page_size",
    "check_run_id",
    "check_run_request",
    "check_run_metadata",
    "check_source",
    "check_statuses",
    "check_tags",
    "check_timestamp",
    "check_update",
]

# The service's own limits (its OpenAPI document): a value past them is refused before sending.
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000_000
MAX_SOURCE_PATH = 2048
MAX_SOURCE_ROWS = 10_000
MAX_LABEL = 256
MAX_TAGS = 50
MAX_TAG = 64
_RUN_ID = re.compile(r"run_[A-Za-z0-9]{1,60}")
# Run ids one per line: a whole batch checked by one match (no run id can hold a newline).
_RUN_ID_LINES = re.compile(r"(?:run_[A-Za-z0-9]{1,60}\n)*run_[A-Za-z0-9]{1,60}")
_FLOW_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}:v[0-9]{1,9}")
_FLOW_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")  # printable ASCII, no spaces: an HTTP header value
MAX_NAMESPACE = 190
"""The longest ``idempotency_namespace``: its keys add ``:`` and 64 hex digits, up to 255."""


# --- one run --------------------------------------------------------------------------------------


def check_run_id(run_id: object, name: str = "run_id") -> str:
    """A run id, ``run_`` and a ULID; it goes into URL paths, so nothing else gets through."""
    if not isinstance(run_id, str):
        raise wrong_type(name, "a str", run_id)
    run_id = str.__str__(run_id)  # a str subclass's own __str__ or __format__ never reaches a URL
    if not _RUN_ID.fullmatch(run_id):
        raise bad_value(name, "a run id such as 'run_01HY...'", run_id)
    return run_id


def check_flow_version(value: object) -> str:
    """``name:vN``, e.g. ``customer_cleaner:v1``."""
    if not isinstance(value, str):
        raise wrong_type("flow_version", "a str", value)
    if not value:
        raise bad_value("flow_version", "a non-empty 'name:vN' string", value)
    if not _FLOW_VERSION.fullmatch(value):
        raise bad_value("flow_version", "of the form 'name:vN', e.g. 'customer_cleaner:v1'", value)
    return value


def check_flow_name(name: object) -> str:
    """A flow's name (``customer_cleaner``); a ``name:vN`` version string names its flow."""
    if not isinstance(name, str):
        raise wrong_type("name", "a str", name)
    name = str.__str__(name)  # a str subclass's own methods never reach a URL
    base = name.split(":", 1)[0]
    if not (_FLOW_VERSION if ":" in name else _FLOW_NAME).fullmatch(name):
        # A version part that is not ``vN`` is refused, not dropped: it says the caller meant
        # something this call cannot give.
        raise bad_value(
            "name",
            "a flow name such as 'customer_cleaner', or a version such as 'customer_cleaner:v1'",
            name,
        )
    return base


def _json_error(name: str, value: object, exc: Exception) -> TypeError:
    return TypeError(f"{name} must be JSON-serialisable, got {type(value).__name__}: {exc}")


def _check_json(value: object, name: str) -> None:
    """``value`` is JSON as sent: serialisable, and without NaN or infinity anywhere."""
    try:
        encoded = orjson.dumps(value)
    except TypeError as exc:
        raise _json_error(name, value, exc) from None
    check_finite_json(value, name, encoded)


def check_source(
    source_path: object, source_data: object
) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Exactly one of a ``source_path`` and inline ``source_data`` rows (mappings).

    Returns the path, or the rows as plain dicts; that they hold JSON is checked by encoding
    them (``encode_with_rows``).
    """
    if (source_path is None) == (source_data is None):
        raise ValueError("give exactly one of source_path and source_data")
    if source_path is not None:
        if not isinstance(source_path, str):
            raise wrong_type("source_path", "a str", source_path)
        if not source_path.strip():
            raise bad_value("source_path", "a non-blank str", source_path)
        check_text(source_path, "source_path", max_len=MAX_SOURCE_PATH)
        return source_path, None
    if isinstance(source_data, str | bytes | Mapping) or not isinstance(source_data, Sequence):
        raise wrong_type("source_data", "a sequence of dicts (JSON objects)", source_data)
    rows: list[Any] = list(source_data)
    if len(rows) > MAX_SOURCE_ROWS:
        raise ValueError(
            f"source_data must hold at most {MAX_SOURCE_ROWS:,} rows, got {len(rows):,} "
            f"({type(source_data).__name__}); pass larger data as a source_path"
        )
    if set(map(type, rows)) - {dict}:  # some row is not a plain dict: look at each
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise wrong_type(f"source_data[{i}]", "a dict (a JSON object)", row)
            if not isinstance(row, dict):
                rows[i] = dict(row)
    return None, rows


def check_run_metadata(value: object) -> None:
    """Free-form JSON metadata: a dict (JSON object), or None."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise wrong_type("run_metadata", "a dict", value)
    _check_json(dict(value), "run_metadata")


def check_idempotency_key(key: object) -> str | None:
    """Sent as a header: 1 to 255 printable ASCII characters without spaces, or None."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise wrong_type("idempotency_key", "a str or None", key)
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise bad_value(
            "idempotency_key", "1 to 255 printable ASCII characters without spaces", key
        )
    return key


def check_label(label: object, name: str = "label") -> str | None:
    """A run's label: up to 256 characters, or None."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise wrong_type(name, "a str or None", label)
    return check_text(label, name, max_len=MAX_LABEL)


def check_idempotency_namespace(namespace: object) -> str | None:
    """What deterministic keys are derived from: 1 to 190 printable ASCII characters, no spaces."""
    if namespace is None:
        return None
    if not isinstance(namespace, str):
        raise wrong_type("idempotency_namespace", "a str or None", namespace)
    if not _IDEMPOTENCY_KEY.fullmatch(namespace) or len(namespace) > MAX_NAMESPACE:
        raise bad_value(
            "idempotency_namespace",
            f"1 to {MAX_NAMESPACE} printable ASCII characters without spaces",
            namespace,
        )
    return namespace


def check_key_choice(key: object, namespace: object) -> None:
    """An explicit ``idempotency_key`` or an ``idempotency_namespace`` to derive one, not both."""
    check_idempotency_key(key)
    check_idempotency_namespace(namespace)
    if key is not None and namespace is not None:
        raise ValueError(
            "give idempotency_key or idempotency_namespace, not both: an explicit key is "
            "used as it is, a namespace derives the key from the request"
        )


def check_tags(tags: object) -> list[str]:
    """A run's tags: up to 50 strings of 1 to 64 characters (not one single string); a set's
    sorted."""
    return in_stable_order(tags, check_str_list(tags, "tags", max_items=MAX_TAGS, max_len=MAX_TAG))


def check_update(
    *, label: object, tags: object, permissions: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The body of a run update: a label, tags and/or the (already checked) ``permissions``
    fields of ``check_permission_update``; at least one of them."""
    body: dict[str, object] = {}
    if label is not None:
        body["label"] = check_label(label)
    if tags is not None:
        body["tags"] = check_tags(tags)
    body.update(permissions or {})
    if not body:
        raise ValueError(
            "update() needs label=..., tags=..., run_owner=... and/or a permission list "
            "(monitoring_by, monitoring_groups, managing_by, managing_groups)"
        )
    return body


def check_run_request(
    *,
    flow_version: object,
    source_path: object,
    source_data: object,
    run_metadata: object,
    force_rerun: object,
    label: object,
    idempotency_key: object,
) -> list[dict[str, Any]] | None:
    """Every field of a ``RunRequest`` but its tags; the inline rows, as plain dicts."""
    check_flow_version(flow_version)
    _, rows = check_source(source_path, source_data)
    check_run_metadata(run_metadata)
    check_bool(force_rerun, "force_rerun")
    check_label(label)
    check_idempotency_key(idempotency_key)
    return rows


# --- pages and listings ---------------------------------------------------------------------------


def check_page_size(page_size: object) -> int:
    return check_int(page_size, "page_size", minimum=1, maximum=MAX_PAGE_SIZE)


def check_page(page: object) -> int:
    """A page number, from 1."""
    return check_int(page, "page", minimum=1, maximum=MAX_PAGE)


def check_statuses(status: object) -> list[str]:
    """A status filter: one ``RunStatus`` (or its name), several, or None."""
    if status is None:
        return []
    if isinstance(status, str):
        values: list[object] = [status]
    elif isinstance(status, Iterable) and not isinstance(status, bytes | Mapping):
        values = list(status)
    else:
        raise wrong_type("status", "a RunStatus, a str, or a list of them", status)
    if not values:
        raise ValueError(
            "status=[] would match no run; give at least one status, or None for runs of every "
            "status"
        )
    out: dict[str, None] = {}  # in order, each once
    for value in values:
        if not isinstance(value, str):
            raise wrong_type("status", "a RunStatus or str", value)
        parsed = RunStatus(value) if value else None
        if parsed is None or not parsed.is_known:
            known = ", ".join(s.value for s in RunStatus)
            raise bad_value("status", f"one of {known}", value)
        out[parsed.value] = None
    return list(out)


def check_timestamp(name: str, value: object) -> str:
    """An aware datetime, as the UTC ISO-8601 text the API filters on."""
    if not isinstance(value, datetime):
        raise wrong_type(name, "a datetime", value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise bad_value(name, "timezone-aware (e.g. datetime.now(UTC))", value)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. year 1 at +05:00: before 0001-01-01 in UTC
        raise bad_value(name, "a time between the years 1 and 9999 in UTC", value) from None
    # To the microsecond, as the service keeps created_at: a rounded bound selects other runs.
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_cursor(cursor: object) -> str | None:
    """A saved ``next_cursor`` of a run listing, or None."""
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise wrong_type("cursor", "a str (a page's next_cursor) or None", cursor)
    if not cursor or len(cursor) > 4096 or not cursor.isascii() or not cursor.isprintable():
        raise bad_value("cursor", "a page's next_cursor, as it was given", cursor)
    return cursor


def check_list_filters(
    *,
    flow_version: object,
    source_path: object,
    status: object,
    label: object,
    tags: object,
    created_after: object,
    created_before: object,
    order_by: object,
    descending: object,
    page_size: object,
    cursor: object,
) -> list[tuple[str, str | int]]:
    """The query of ``runs.list(...)``, every filter checked.

    With a ``cursor`` the order is the cursor's own, so it is not sent; filters given with one
    are sent, for the service to check that they are the cursor's.
    """
    size = check_page_size(page_size)
    if not isinstance(order_by, str):
        raise wrong_type("order_by", "a str", order_by)
    if order_by != "created_at":
        why = (
            ": updated_at changes while you iterate, so its pages would skip and repeat runs"
            if order_by == "updated_at"
            else ""
        )
        raise ValueError(f"order_by must be 'created_at', got {describe(order_by)}{why}")
    check_bool(descending, "descending")
    saved = check_cursor(cursor)
    params: list[tuple[str, str | int]] = [("size", size)]
    if saved is None:
        params += [("order_by", order_by), ("order", "desc" if descending else "asc")]
    else:
        params.append(("cursor", saved))
    if flow_version is not None:
        params.append(("flow_version", check_flow_version(flow_version)))
    if source_path is not None:
        if not check_nonempty_str(source_path, "source_path").strip():
            raise bad_value("source_path", "a non-blank str (no run has a blank one)", source_path)
        params.append(
            ("source_path", check_text(source_path, "source_path", max_len=MAX_SOURCE_PATH))
        )
    params.extend(("status", value) for value in check_statuses(status))
    if label is not None:
        params.append(("label", check_text(label, "label", min_len=1, max_len=MAX_LABEL)))
    if tags is not None:
        params.extend(("tag", tag) for tag in dict.fromkeys(check_tags(tags)))
    if created_after is not None:
        params.append(("created_after", check_timestamp("created_after", created_after)))
    if created_before is not None:
        params.append(("created_before", check_timestamp("created_before", created_before)))
    if (
        isinstance(created_after, datetime)
        and isinstance(created_before, datetime)
        and created_after >= created_before
    ):
        raise ValueError(
            "created_after must be before created_before (no run was created in between), got "
            f"{describe(created_after)} and {describe(created_before)}"
        )
    return params


# --- many runs ------------------------------------------------------------------------------------


def check_batch_ids(run_ids: object, most: int) -> list[str]:
    """Ids for one ``batch-get`` request: 1 to ``most`` run ids."""
    if isinstance(run_ids, str | bytes) or not isinstance(run_ids, Sequence):
        raise wrong_type("run_ids", "a sequence of run ids", run_ids)
    if not 1 <= len(run_ids) <= most:
        raise ValueError(
            f"run_ids must hold 1 to {most} ids for one batch_get, got "
            f"{len(run_ids)} ({type(run_ids).__name__})"
        )
    try:  # the poller's every request: all of them at once
        if _RUN_ID_LINES.fullmatch("\n".join(run_ids)):
            return list(run_ids)
    except TypeError:  # one is not a str: named below
        pass
    return [check_run_id(run_id, f"run_ids[{i}]") for i, run_id in enumerate(run_ids)]


def check_batch_items(value: object, name: str) -> list[Any]:
    """The items of a batch call: a list (any iterable) of them, never one string or mapping."""
    return check_iterable(value, name, f"an iterable of {name.replace('_', ' ')} (not one)")


def check_batch_call(
    items: object, name: str, *, concurrency: object, on_progress: object
) -> list[Any]:
    """A batch call's items (see ``check_batch_items``), concurrency and progress callback."""
    out = check_batch_items(items, name)
    check_concurrency(concurrency)
    check_callable(on_progress, "on_progress")
    return out


def check_handles(runs: object, handle_cls: type[Any]) -> list[Any]:
    """Run handles to wait on: ids are refused with a hint, since waiting updates handles."""
    hint = " (pass run handles: get them for ids with runs.get_many(ids))"
    return check_items(runs, "runs", handle_cls, "a run handle (AsyncRun)", hint)


def check_concurrency(concurrency: object) -> int:
    """How many requests of a batch may be in flight at once."""
    return check_int(concurrency, "concurrency", minimum=1)
