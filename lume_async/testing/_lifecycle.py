"""The emulator's virtual clock and the stage plan of a run.

A run never owns a task: its status, ``updated_at``, metadata and logs are pure functions of its
plan and the clock, computed when read. The clock is real monotonic time multiplied by
``time_scale`` plus an offset that ``advance()`` moves forward, so tests can skip time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "TERMINAL",
    "VirtualClock",
    "iso",
]

TERMINAL = frozenset({"SUCCEEDED", "PARTIAL_FAILED", "FAILED", "CRASHED", "CANCELED"})

# Fractions of a run's duration at which it enters each state; the terminal state comes at 1.0
# (FAILED at the end of TRANSFORMING, CRASHED half-way through SYNCING_TARGET).
STAGES: tuple[tuple[str, float], ...] = (
    ("CREATED", 0.0),
    ("PENDING", 0.05),
    ("SYNCING_SOURCE", 0.1),
    ("TRANSFORMING", 0.4),
    ("SYNCING_TARGET", 0.8),
)
END_FRACTION = {"SUCCEEDED": 1.0, "PARTIAL_FAILED": 1.0, "FAILED": 0.8, "CRASHED": 0.9}


class VirtualClock:
    """Seconds of virtual time since the emulator started, and their wall-clock mapping."""

    __slots__ = ("_offset", "_start_mono", "_start_wall", "scale")

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.scale = scale
        self._start_mono = time.monotonic()
        self._start_wall = time.time()
        self._offset = 0.0

    def now(self) -> float:
        """The current virtual time, in seconds since the clock started."""
        return (time.monotonic() - self._start_mono) * self.scale + self._offset

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("cannot advance the clock backwards")
        self._offset += seconds

    def real_delay(self, virtual_seconds: float) -> float:
        """How long to really sleep for ``virtual_seconds`` of virtual time to pass."""
        return max(0.0, virtual_seconds / self.scale)

    def wall(self, v: float) -> float:
        """Unix time of virtual instant ``v``."""
        return self._start_wall + v

    def iso(self, v: float) -> str:
        return iso(self._start_wall + v)

    def ms(self, v: float) -> int:
        return int((self._start_wall + v) * 1000)

    def from_wall(self, unix: float) -> float:
        return unix - self._start_wall


def iso(unix: float) -> str:
    """ISO-8601 UTC with millisecond precision and a ``Z``."""
    dt = datetime.fromtimestamp(unix, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Plan:
    """When a run enters each state, given its creation time, duration and final outcome."""

    __slots__ = ("bounds", "created", "duration", "end", "outcome")

    def __init__(self, created: float, duration: float, outcome: str) -> None:
        self.created = created
        self.duration = duration
        self.outcome = outcome
        self.bounds = tuple(created + duration * f for _, f in STAGES)
        self.end = created + duration * END_FRACTION[outcome]

    def status(self, t: float, canceled: float | None) -> str:
        if canceled is not None and t >= canceled:
            return "CANCELED"
        if t >= self.end:
            return self.outcome
        b = self.bounds
        if t >= b[4]:
            return "SYNCING_TARGET"
        if t >= b[3]:
            return "TRANSFORMING"
        if t >= b[2]:
            return "SYNCING_SOURCE"
        if t > b[0]:
            return "PENDING"
        return "CREATED"

    def finished_at(self, canceled: float | None) -> float:
        """The virtual instant the run became (or will become) terminal."""
        if canceled is not None and canceled < self.end:
            return canceled
        return self.end

    def last_transition(self, t: float, canceled: float | None) -> float:
        stop = self.finished_at(canceled)
        if t >= stop:
            return stop
        last = self.created
        for b in self.bounds[1:]:
            if t >= b:
                last = b
        return last

    def stage_seconds(self, t: float, canceled: float | None) -> tuple[float | None, ...]:
        """Seconds spent in each of the three stages, None while a stage has not finished."""
        stop = min(t, self.finished_at(canceled))
        terminal = t >= self.finished_at(canceled)
        b = self.bounds
        out: list[float | None] = []
        for start, end in ((b[2], b[3]), (b[3], b[4]), (b[4], b[0] + self.duration)):
            if stop >= end:
                out.append(round(end - start, 3))
            elif terminal:
                out.append(round(max(0.0, stop - start), 3))
            else:
                out.append(None)
        return tuple(out)


def log_entries(
    plan: Plan, t: float, canceled: float | None, info: dict[str, Any]
) -> list[tuple[float, str, str, str, dict[str, Any]]]:
    """The log lines a run has written by virtual time ``t`` (a few per state transition)."""
    b = plan.bounds
    stop = plan.finished_at(canceled)
    rows, mapped, rejected = info["input_rows"], info["mapped_rows"], info["rejected_rows"]
    src = info["source"]
    entries: list[tuple[float, str, str, str, dict[str, Any]]] = [
        (b[0], "INFO", "run.created", "Run created", {"flow_version": info["flow_version"]}),
        (b[1], "INFO", "run.queued", "Run queued for a worker", {}),
        (b[2], "INFO", "source.sync_started", "Reading source data", {"source": src}),
        (b[3], "INFO", "source.sync_finished", f"Read {rows} rows", {"rows": rows}),
        (b[3], "INFO", "transform.started", "Mapping rows to the target schema", {}),
    ]
    if plan.outcome == "FAILED":
        entries.append((plan.end, "ERROR", "transform.failed", info["error"], {}))
    else:
        entries.append(
            (b[4], "INFO", "transform.finished", f"Mapped {mapped} rows", {"mapped_rows": mapped})
        )
        if rejected:
            entries.append(
                (
                    b[4],
                    "WARNING",
                    "validation.rejects",
                    f"{rejected} rows failed validation",
                    {"rejected_rows": rejected},
                )
            )
        entries.append((b[4], "INFO", "target.sync_started", "Writing mapped rows", {}))
        if plan.outcome == "CRASHED":
            entries.append((plan.end, "ERROR", "worker.crashed", info["error"], {}))
        else:
            entries.append(
                (plan.end, "INFO", "target.sync_finished", "Target written", {"rows": mapped})
            )
            entries.append(
                (plan.end, "INFO", f"run.{plan.outcome.lower()}", f"Run {plan.outcome}", {})
            )
    visible = [e for e in entries if e[0] <= t and e[0] <= stop]
    if canceled is not None and t >= canceled and canceled < plan.end:
        visible.append((canceled, "WARNING", "run.canceled", "Run canceled on request", {}))
    return visible
