"""One emulated run: its plan and source, and the JSON, rows and logs derived from them on read.

What a run reports follows from how it ended. SUCCEEDED and PARTIAL_FAILED runs delivered every
row, mapped or rejected. A FAILED run whose every row was rejected delivered its rejects (and no
mapped row). A run that FAILED in its transform, CRASHED, or was CANCELED delivered nothing. So
``mapped_rows + rejected_rows == input_rows`` always holds, where ``input_rows`` counts the rows
delivered; the logs still say how many rows were read. Counts and validation figures are null
until the run ends.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._lifecycle import TERMINAL, Plan, RunClock, iso, iso_us, log_entries
from ._synthetic import Source

if TYPE_CHECKING:
    from ._access import Grants

__all__ = ["FAILURES", "Run"]

# Why a run that does not succeed ends as it does: (error code, stage, message).
FAILURES = {
    "transform_failed": ("transform", "The transformation failed"),
    "worker_crashed": ("sync_target", "The worker running this run crashed; no rows were written"),
}


class Run:
    """One run of one tenant. Everything time-dependent is derived from ``plan`` on read."""

    __slots__ = (
        "_cache",
        "canceled",
        "changed",
        "created_iso",
        "created_us",
        "failure",
        "flow_version",
        "grants",
        "id",
        "label",
        "notified",
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
        created_us: int,
        failure: str | None,
        grants: Grants,
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
        self.created_us = created_us
        self.created_iso = iso(created_us / 1_000_000)
        self.failure = failure
        self.grants = grants  # who may read and manage it (see _access)
        self.canceled: float | None = None  # run time of the cancel
        # The last cancel or PATCH: its run time, updated_at before it and after it (Unix us).
        self.changed: tuple[float, int, int] | None = None
        self.notified = False
        self._cache: dict[str, Any] | None = None

    # -- state ----------------------------------------------------------------------------------

    def status(self, t: float) -> str:
        return self.plan.status(t, self.canceled)

    def finished_at(self) -> float:
        return self.plan.finished_at(self.canceled)

    def is_terminal(self, t: float) -> bool:
        return t >= self.plan.finished_at(self.canceled)

    def updated_us(self, clock: RunClock, t: float) -> int:
        """``updated_at`` at ``t``, in Unix microseconds: the instant of the last change."""
        return self._updated(clock, t)[0]

    def updated_shared(self, clock: RunClock, t: float) -> bool:
        """Whether an earlier state of the run had its current ``updated_at`` (see ``_updated``)."""
        return self._updated(clock, t)[1]

    def _updated(self, clock: RunClock, t: float) -> tuple[int, bool]:
        """``updated_at`` in Unix microseconds, and whether an earlier state had it too.

        Changes at one instant of the clock (a virtual clock that did not move, several
        ``advance()`` calls at one wall-clock instant) share it, and timestamps are never in
        the future, so ``updated_at`` alone cannot tell such states apart: ``batch-get`` then
        sends the run rather than call it unchanged. States one ``advance()`` skipped through
        together are no earlier state: no read could see them.
        """
        change = self.changed
        if change is None:
            since, before, us = -math.inf, -1, self.created_us
        else:
            since, before, us = change
        last: float | None = None
        for at in self.plan.transitions(t, self.canceled):
            if at <= since:
                continue
            if last is None or not clock.together(last, at):
                before = us  # the state so far could be read
            us = max(us, clock.wall_us(at))
            last = at
        return us, before == us

    def change(self, clock: RunClock, t: float, wall_us: int) -> None:
        """Note a cancel or PATCH at run time ``t`` and Unix microseconds ``wall_us``."""
        before = self.updated_us(clock, t)
        self.changed = (t, before, max(before, wall_us))
        self._cache = None

    def invalidate(self) -> None:
        self._cache = None

    def delivered(self, status: str) -> tuple[int, int, int]:
        """``(input, mapped, rejected)`` rows a run that ended with ``status`` delivered."""
        src = self.source
        if status == "SUCCEEDED" or status == "PARTIAL_FAILED":
            return src.input_rows, src.mapped_rows, src.rejected_rows
        if status == "FAILED" and self.failure == "all_rows_rejected":
            return src.input_rows, 0, src.rejected_rows
        return 0, 0, 0

    def rows_served(self, t: float) -> tuple[int, int]:
        """How many results and rejects can be paged (0 until the run ends)."""
        status = self.status(t)
        if status not in TERMINAL:
            return 0, 0
        _, mapped, rejected = self.delivered(status)
        return mapped, rejected

    def input_readable(self, t: float) -> bool:
        """Inline rows are the run's from the start; a path's once its source was read."""
        if self.source_path is None:
            return True
        read = self.plan.bounds[3]
        return t >= read and self.finished_at() >= read

    # -- JSON -----------------------------------------------------------------------------------

    def updated_iso(self, clock: RunClock, t: float) -> str:
        """``updated_at`` as the run's JSON says it at ``t``."""
        cached = self._cache
        if cached is not None:
            return str(cached["updated_at"])
        return iso_us(self.updated_us(clock, t))

    def to_json(self, clock: RunClock, t: float) -> dict[str, Any]:
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
            "created_at": self.created_iso,
            "updated_at": iso_us(self.updated_us(clock, t)),
            "metadata": self._metadata(clock, t, status),
            "error": self._error(status),
            **self.grants.to_json(),
        }
        if status in TERMINAL:
            self._cache = body
        return body

    def _failure_info(self) -> tuple[str, str, str]:
        """``(code, stage, message)`` of a FAILED or CRASHED run."""
        code = self.failure or "transform_failed"
        if code == "all_rows_rejected":
            return code, "transform", self._all_rejected_message()
        stage, message = FAILURES[code]
        return code, stage, message

    def _all_rejected_message(self) -> str:
        src = self.source
        top = src.top_errors()
        reasons = ", ".join(f"{e['error_code']} on {e['field']} ({e['count']})" for e in top[:3])
        return f"All {src.rejected_rows} rows failed validation" + (
            f"; most common: {reasons}" if reasons else ""
        )

    def _error(self, status: str) -> dict[str, str] | None:
        if status != "FAILED" and status != "CRASHED":
            return None
        code, _, message = self._failure_info()
        return {"code": code, "message": message}

    def _metadata(self, clock: RunClock, t: float, status: str) -> dict[str, Any]:
        plan, src = self.plan, self.source
        terminal = status in TERMINAL
        stop = self.finished_at()
        started = plan.bounds[2]
        stages = plan.stage_seconds(t, self.canceled)
        results: dict[str, Any]
        validation: dict[str, Any]
        if terminal:
            rows, mapped, rejected = self.delivered(status)
            executed = rows * self.tests_per_row
            failed = src.failed_tests if rows else 0
            base = f"lume://runs/{self.id}"
            locations: dict[str, str | None] | None = None
            if status == "SUCCEEDED" or status == "PARTIAL_FAILED":
                locations = {"mapped": f"{base}/mapped", "rejects": f"{base}/rejects"}
            elif rejected:
                locations = {"mapped": None, "rejects": f"{base}/rejects"}
            results = {
                "input_rows": rows,
                "mapped_rows": mapped,
                "rejected_rows": rejected,
                "target_locations": locations,
            }
            validation = {
                "tests_executed": executed,
                "tests_failed": failed,
                "error_rate": failed / executed if executed else 0.0,
                "top_errors": src.top_errors() if rows else [],
            }
        else:
            results = {
                "input_rows": None,
                "mapped_rows": None,
                "rejected_rows": None,
                "target_locations": None,
            }
            validation = {
                "tests_executed": None,
                "tests_failed": None,
                "error_rate": None,
                "top_errors": [],
            }
        errors: list[dict[str, str]] = []
        if status == "FAILED" or status == "CRASHED":
            code, stage, message = self._failure_info()
            errors.append({"stage": stage, "error_code": code, "message": message})
        finished = clock.iso(stop) if terminal else None
        return {
            "run": {
                "run_id": self.id,
                "flow_version": self.flow_version,
                "source_path": self.source_path,
                "status": status,
                "started_at": clock.iso(started) if t >= started and stop >= started else None,
                "finished_at": finished,
            },
            "pipeline": {
                "created_at": self.created_iso,
                "completed_at": finished,
                "duration_seconds": plan.duration_seconds(self.canceled) if terminal else None,
                "stages": {
                    "sync_source_seconds": stages[0],
                    "transform_seconds": stages[1],
                    "sync_target_seconds": stages[2],
                },
            },
            "results": results,
            "validation": validation,
            "errors": errors,
        }

    # -- rows and logs --------------------------------------------------------------------------

    def logs(self, clock: RunClock, t: float) -> list[dict[str, Any]]:
        src = self.source
        failed = self.plan.outcome in ("FAILED", "CRASHED")
        transform_failed = self.plan.outcome == "FAILED" and self.failure != "all_rows_rejected"
        info: dict[str, Any] = {
            "input_rows": src.input_rows,
            "mapped_rows": src.mapped_rows,
            "rejected_rows": 0 if transform_failed else src.rejected_rows,
            "source": self.source_path or "inline",
            "flow_version": self.flow_version,
            "error": self._failure_info()[2] if failed else "",
        }
        return [
            {"time": clock.iso(at), "level": level, "code": code, "message": msg, "details": det}
            for at, level, code, msg, det in log_entries(self.plan, t, self.canceled, info)
        ]
