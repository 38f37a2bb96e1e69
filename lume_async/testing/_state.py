"""The emulator's state: tenants, their runs and webhooks, and idempotency records.

A run is a plan plus its source; its JSON is rendered from the clock when read, and cached once the
run is terminal (a terminal run changes only through ``PATCH``, which drops the cache).
"""

from __future__ import annotations

import random
from typing import Any

from ._lifecycle import TERMINAL, Plan, VirtualClock, log_entries
from ._synthetic import Source

__all__ = ["IdempotencyRecord", "Run", "Tenant", "UlidFactory", "Webhook"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UlidFactory:
    """Monotonic ULIDs: 48-bit millisecond time + 80 random bits, Crockford base32, 26 chars."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last_ms = -1
        self._last_rand = 0

    def new(self, ms: int) -> str:
        if ms <= self._last_ms:
            ms = self._last_ms
            rand = self._last_rand + 1
        else:
            rand = self._rng.getrandbits(80)
        self._last_ms, self._last_rand = ms, rand
        value = (ms << 80) | (rand & ((1 << 80) - 1))
        chars = []
        for _ in range(26):
            chars.append(_CROCKFORD[value & 31])
            value >>= 5
        return "".join(reversed(chars))


class Run:
    """One run of one tenant. Everything time-dependent is derived from ``plan`` on read."""

    __slots__ = (
        "_cache",
        "canceled",
        "created_ms",
        "flow_version",
        "id",
        "label",
        "notified",
        "patched",
        "plan",
        "run_metadata",
        "source",
        "source_path",
        "tags",
        "tenant",
        "tests_per_row",
    )

    def __init__(
        self,
        *,
        id: str,
        tenant: str,
        flow_version: str,
        source_path: str | None,
        label: str | None,
        tags: list[str],
        run_metadata: dict[str, Any] | None,
        plan: Plan,
        source: Source,
        tests_per_row: int,
        created_ms: int,
    ) -> None:
        self.id = id
        self.tenant = tenant
        self.flow_version = flow_version
        self.source_path = source_path
        self.label = label
        self.tags = tags
        self.run_metadata = run_metadata
        self.plan = plan
        self.source = source
        self.tests_per_row = tests_per_row
        self.created_ms = created_ms
        self.canceled: float | None = None
        self.patched: float | None = None
        self.notified = False
        self._cache: dict[str, Any] | None = None

    def status(self, t: float) -> str:
        return self.plan.status(t, self.canceled)

    def finished_at(self) -> float:
        return self.plan.finished_at(self.canceled)

    def is_terminal(self, t: float) -> bool:
        return t >= self.plan.finished_at(self.canceled)

    def updated(self, t: float) -> float:
        last = self.plan.last_transition(t, self.canceled)
        return max(last, self.patched) if self.patched is not None else last

    def invalidate(self) -> None:
        self._cache = None

    def to_json(self, clock: VirtualClock, t: float) -> dict[str, Any]:
        cached = self._cache
        if cached is not None:
            return cached
        status = self.status(t)
        body = {
            "id": self.id,
            "status": status,
            "flow_version": self.flow_version,
            "source_path": self.source_path,
            "label": self.label,
            "tags": self.tags,
            "run_metadata": self.run_metadata,
            "created_at": clock.iso(self.plan.created),
            "updated_at": clock.iso(self.updated(t)),
            "metadata": self._metadata(clock, t, status),
            "error": self._error(status),
        }
        if status in TERMINAL:
            self._cache = body
        return body

    def _error(self, status: str) -> dict[str, str] | None:
        if status == "FAILED":
            return {"code": self._failure_code(), "message": self._failure_message()}
        if status == "CRASHED":
            return {"code": "worker_crashed", "message": "The worker running this run crashed"}
        return None

    def _failure_code(self) -> str:
        src = self.source
        return "all_rows_rejected" if src.input_rows and not src.mapped_rows else "transform_failed"

    def _failure_message(self) -> str:
        if self._failure_code() == "all_rows_rejected":
            return "Every source row failed validation"
        return "The transformation failed"

    def _metadata(self, clock: VirtualClock, t: float, status: str) -> dict[str, Any]:
        plan, src, canceled = self.plan, self.source, self.canceled
        terminal = status in TERMINAL
        stop = self.finished_at()
        b = plan.bounds
        read = t >= b[3] and stop >= b[3]
        transformed = t >= b[4] and stop >= b[4] and plan.outcome != "FAILED"
        success = terminal and status in ("SUCCEEDED", "PARTIAL_FAILED")
        stages = plan.stage_seconds(t, canceled)
        rows = src.input_rows if read else (0 if terminal else None)
        mapped = src.mapped_rows if transformed else (0 if terminal else None)
        rejected = src.rejected_rows if transformed else (0 if terminal else None)
        validation: dict[str, Any]
        if transformed:
            executed = src.input_rows * self.tests_per_row
            validation = {
                "tests_executed": executed,
                "tests_failed": getattr(src, "failed_tests", src.rejected_rows),
                "error_rate": round(src.rejected_rows / src.input_rows, 6)
                if src.input_rows
                else 0.0,
                "top_errors": src.top_errors(),
            }
        else:
            zero = 0 if terminal else None
            validation = {
                "tests_executed": zero,
                "tests_failed": zero,
                "error_rate": 0.0 if terminal else None,
                "top_errors": [],
            }
        errors: list[dict[str, str]] = []
        if status == "FAILED":
            errors.append(
                {
                    "stage": "transform",
                    "error_code": self._failure_code(),
                    "message": self._failure_message(),
                }
            )
        elif status == "CRASHED":
            errors.append(
                {"stage": "sync_target", "error_code": "worker_crashed", "message": "Worker lost"}
            )
        base = f"lume://runs/{self.id}"
        return {
            "run": {
                "run_id": self.id,
                "flow_version": self.flow_version,
                "source_path": self.source_path,
                "started_at": clock.iso(b[2]) if t >= b[2] and stop >= b[2] else None,
                "finished_at": clock.iso(stop) if terminal else None,
            },
            "pipeline": {
                "created_at": clock.iso(plan.created),
                "completed_at": clock.iso(stop) if terminal else None,
                "duration_seconds": round(stop - plan.created, 3) if terminal else None,
                "stages": {
                    "sync_source_seconds": stages[0],
                    "transform_seconds": stages[1],
                    "sync_target_seconds": stages[2],
                },
            },
            "results": {
                "input_rows": rows,
                "mapped_rows": mapped,
                "rejected_rows": rejected,
                "target_locations": (
                    {"mapped": f"{base}/mapped", "rejects": f"{base}/rejects"} if success else None
                ),
            },
            "validation": validation,
            "errors": errors,
        }

    def has_rows(self, t: float) -> bool:
        """Whether results and rejects are readable (a run that ended well)."""
        return self.status(t) in ("SUCCEEDED", "PARTIAL_FAILED")

    def logs(self, clock: VirtualClock, t: float) -> list[dict[str, Any]]:
        error = self._error("FAILED" if self.plan.outcome == "FAILED" else "CRASHED")
        info: dict[str, Any] = {
            "input_rows": self.source.input_rows,
            "mapped_rows": self.source.mapped_rows,
            "rejected_rows": self.source.rejected_rows,
            "source": self.source_path or "inline",
            "flow_version": self.flow_version,
            "error": error["message"] if error else "",
        }
        return [
            {"time": clock.iso(at), "level": level, "code": code, "message": msg, "details": det}
            for at, level, code, msg, det in log_entries(self.plan, t, self.canceled, info)
        ]


class Webhook:
    __slots__ = ("events", "id", "secret", "url")

    def __init__(self, id: str, url: str, events: list[str], secret: str) -> None:
        self.id, self.url, self.events, self.secret = id, url, events, secret

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": self.events, "secret": self.secret}


class IdempotencyRecord:
    """The first answer to a POST with an ``Idempotency-Key``; ``status`` 0 while in flight."""

    __slots__ = ("body", "created", "fingerprint", "status")

    def __init__(self, fingerprint: bytes, created: float) -> None:
        self.fingerprint = fingerprint
        self.created = created
        self.status = 0
        self.body = b""


class Tenant:
    """One API key's world: runs in creation order (ids ascend), webhooks, idempotency records."""

    __slots__ = ("by_pair", "idempotency", "name", "order", "runs", "webhooks")

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: dict[str, Run] = {}
        self.order: list[str] = []
        self.by_pair: dict[tuple[str, str], list[Run]] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}

    def clear(self) -> None:
        self.runs.clear()
        self.order.clear()
        self.by_pair.clear()
        self.webhooks.clear()
        self.idempotency.clear()
