"""The emulator's run clock and the stage plan of a run.

A run never owns a task: its status, ``updated_at``, metadata and logs are pure functions of its
plan and the clock, computed when read. Run time is the injected clock's monotonic seconds times
``time_scale``, plus whatever ``advance()`` skipped; timestamps are the wall-clock instants at
which run time reached each point, so they are never in the future.
"""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime
from typing import Any

from .._clock import Clock

__all__ = [
    "MAX_RUN_TIME",
    "TERMINAL",
    "Plan",
    "RunClock",
    "iso",
    "iso_us",
    "log_entries",
]

# The run time ``advance()`` may reach: about 272 years, below which floats still resolve a
# microsecond. Past it a run's stages would fall on one instant, and a new run end as it starts.
MAX_RUN_TIME = 2.0**33

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


class RunClock:
    """Run time (scaled, skippable) and the wall-clock instant at which it reached any point.

    ``now()`` is run time in seconds since the emulator started. Each ``advance()`` records an
    anchor: run time jumped at one wall-clock instant, so every point it skipped maps to that
    instant. Between anchors run time moves ``scale`` times as fast as the wall clock.
    """

    __slots__ = (
        "_froms",
        "_monotonic",
        "_offset",
        "_runs",
        "_start",
        "_time",
        "_walls",
        "clock",
        "scale",
    )

    def __init__(self, clock: Clock, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError("time_scale must be > 0")
        self.clock = clock
        self.scale = float(scale)
        self._monotonic = clock.monotonic
        self._time = clock.time
        self._start = clock.monotonic()
        self._offset = 0.0
        self._runs = [0.0]
        self._walls = [clock.time()]
        self._froms = [-math.inf]  # the run time each anchor's advance() jumped from

    def now(self) -> float:
        """The current run time."""
        return (self._monotonic() - self._start) * self.scale + self._offset

    def advance(self, seconds: float) -> None:
        """Skip ``seconds`` of run time at once (never backwards)."""
        if not seconds >= 0:
            raise ValueError("cannot advance the clock backwards")
        if seconds == 0:
            return
        at, wall = self.now(), self.clock.time()
        if not at + seconds < MAX_RUN_TIME:
            raise ValueError(
                f"seconds must keep the emulator's run time under {MAX_RUN_TIME:.0f} "
                f"(about 272 years), got {seconds!r} at run time {at:.0f}"
            )
        self._offset += seconds
        self._runs.append(at + seconds)
        self._walls.append(wall)
        self._froms.append(at)

    def compact(self) -> None:
        """Forget the anchors (after a reset, when no run needs the past any more)."""
        self._runs = [self.now()]
        self._walls = [self.clock.time()]
        self._froms = [-math.inf]

    def together(self, first: float, then: float) -> bool:
        """Whether run times ``first`` < ``then`` were skipped by one ``advance()``.

        No read can fall between two such points, so no one can see a run between them.
        """
        runs = self._runs
        i = bisect.bisect_left(runs, then)
        return 0 < i < len(runs) and self._froms[i] < first

    def real_delay(self, run_seconds: float) -> float:
        """How long to wait on the clock for ``run_seconds`` of run time to pass."""
        return max(0.0, run_seconds / self.scale)

    def wall(self, at: float) -> float:
        """Unix time at which run time reached ``at`` (never later than now)."""
        runs = self._runs
        if len(runs) == 1:  # never advanced
            wall = self._walls[0] + (at - runs[0]) / self.scale
        else:
            i = max(0, bisect.bisect_right(runs, at) - 1)
            wall = self._walls[i] + (at - runs[i]) / self.scale
            if i + 1 < len(runs):
                wall = min(wall, self._walls[i + 1])
        now = self._time()
        return wall if wall < now else now

    def iso(self, at: float) -> str:
        """``wall(at)`` as an ISO-8601 timestamp."""
        return iso(self.wall(at))

    def wall_us(self, at: float) -> int:
        """``wall(at)`` in whole microseconds (as ``iso`` writes it)."""
        return int(self.wall(at) * 1_000_000)

    def wall_ms(self) -> int:
        """The current wall-clock time in whole milliseconds."""
        return int(self._time() * 1000)


_second: tuple[int, str] = (-1, "")  # the last whole second formatted (swapped whole: threads)


def iso(unix: float) -> str:
    """ISO-8601 UTC with microsecond precision (truncated) and a ``Z``."""
    return iso_us(int(unix * 1_000_000))


def iso_us(us: int) -> str:
    """``iso`` of a time given in whole Unix microseconds."""
    global _second
    second, fraction = divmod(us, 1_000_000)
    cached = _second
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
        _second = cached
    return f"{cached[1]}{fraction:06d}Z"


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
        if t >= b[1]:
            return "PENDING"
        return "CREATED"

    def finished_at(self, canceled: float | None) -> float:
        """The run time at which the run became (or will become) terminal."""
        if canceled is not None and canceled < self.end:
            return canceled
        return self.end

    def transitions(self, t: float, canceled: float | None) -> list[float]:
        """The run times of the status changes made by ``t``, in order (a cancel aside)."""
        stop = self.finished_at(canceled)
        out = [b for b in self.bounds[1:] if b <= t and b < stop]
        if canceled is None and t >= self.end:
            out.append(self.end)
        return out

    def _ms(self, at: float) -> int:
        """Whole milliseconds from the run's creation to run time ``at``.

        The duration and every stage timing are differences of these, rather than each rounded
        on its own: rounded apart, stages of a run of a few milliseconds added up past it.
        """
        return round((at - self.created) * 1000)

    def duration_seconds(self, canceled: float | None) -> float:
        """Seconds from creation to the end (the cancel, if it came first), to the millisecond."""
        return self._ms(self.finished_at(canceled)) / 1000

    def stage_seconds(self, t: float, canceled: float | None) -> tuple[float | None, ...]:
        """Seconds spent in each of the three stages, None while a stage has not finished.

        To the millisecond, and never adding up to more than ``duration_seconds``.
        """
        stop = min(t, self.finished_at(canceled))
        terminal = t >= self.finished_at(canceled)
        b = self.bounds
        out: list[float | None] = []
        for start, end in ((b[2], b[3]), (b[3], b[4]), (b[4], b[0] + self.duration)):
            if stop >= end:
                out.append((self._ms(end) - self._ms(start)) / 1000)
            elif terminal:
                out.append(max(0, self._ms(stop) - self._ms(start)) / 1000)
            else:
                out.append(None)
        return tuple(out)


def log_entries(
    plan: Plan, t: float, canceled: float | None, info: dict[str, Any]
) -> list[tuple[float, str, str, str, dict[str, Any]]]:
    """The log lines a run has written by run time ``t`` (a few per state transition)."""
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
        if rejected:
            entries.append(
                (
                    plan.end,
                    "WARNING",
                    "validation.rejects",
                    f"{rejected} rows failed validation",
                    {"rejected_rows": rejected},
                )
            )
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
