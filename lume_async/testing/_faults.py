"""Fault injection: what can go wrong on a ``/v1`` request, and a seeded draw of it.

A :class:`FaultProfile` is a small frozen value; the injector draws from ``random.Random(seed)``
so a test that sends the same requests in the same order sees the same faults.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import attrs

from .._validation import (
    FAULT_KINDS,
    check_fault_kinds,
    check_fault_phase,
    check_fault_rate,
    check_seed,
    finite_seconds,
)

__all__ = ["FAULT_KINDS", "FaultInjector", "FaultProfile"]

Phase = Literal["before", "after", "both"]


def _delay(value: Any) -> float:
    return finite_seconds(value, "delay")


def _retry_after(value: Any) -> float:
    return finite_seconds(value, "retry_after")


@attrs.frozen(kw_only=True)
class FaultProfile:
    """Which faults to inject into ``/v1`` requests, and how often.

    ``rate`` is the probability that a request is hit; ``kinds`` are drawn uniformly; ``phase``
    ``before`` loses the request before the handler runs, ``after`` does the work and then loses
    the answer (as a proxy would), ``both`` picks one of the two per fault.

    Attributes:
        rate: The probability that a ``/v1`` request is hit, 0 to 1.
        kinds: The faults to draw from: ``500``, ``502``, ``503``, ``429``, ``reset`` (close the
            connection without answering), ``delay`` (answer late) and ``truncate`` (cut the body).
        phase: ``before`` the handler runs, ``after`` it (the work is done, the answer lost), or
            ``both``.
        seed: The seed of the draws: the same requests in the same order meet the same faults.
        delay: Seconds a ``delay`` fault holds the answer.
        retry_after: The ``Retry-After`` seconds of injected 429 and 503 answers.

    Raises:
        ValueError: ``rate`` is outside 0..1, a kind or the phase is unknown, or a delay is
            negative.

    Examples:
        >>> FaultProfile(rate=0.3, kinds=("503", "reset"), seed=7).kinds
        ('503', 'reset')
    """

    rate: float = attrs.field(default=0.0, converter=check_fault_rate)
    kinds: tuple[str, ...] = attrs.field(
        default=("500", "503", "429", "reset"), converter=check_fault_kinds
    )
    phase: Phase = attrs.field(default="both", converter=check_fault_phase)
    seed: int = attrs.field(default=0, converter=check_seed)
    delay: float = attrs.field(default=0.5, converter=_delay)
    retry_after: float = attrs.field(default=1.0, converter=_retry_after)

    @classmethod
    def from_json(cls, data: Any) -> FaultProfile:
        """Build a profile from the control plane's JSON body (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise TypeError("a fault profile must be a JSON object")
        allowed = {"rate", "kinds", "phase", "seed", "delay", "retry_after"}
        extra = set(data) - allowed
        if extra:
            raise ValueError(f"unknown fault profile fields: {sorted(extra)}")
        if "kinds" in data and not isinstance(data["kinds"], list | tuple):
            raise TypeError("kinds must be a list")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The profile as the control plane's JSON body (``POST /_emulator/faults``)."""
        return attrs.asdict(self)


class FaultInjector:
    """Draws, per request, either no fault or a ``(kind, phase)`` pair."""

    __slots__ = ("_rng", "profile")

    def __init__(self, profile: FaultProfile | None = None) -> None:
        self.profile = profile
        self._rng = random.Random(profile.seed if profile else 0)

    def set(self, profile: FaultProfile | None) -> None:
        self.profile = profile if profile is not None and profile.rate > 0 else None
        self._rng = random.Random(profile.seed if profile else 0)

    def draw(self) -> tuple[str, str] | None:
        profile = self.profile
        if profile is None:
            return None
        rng = self._rng
        if rng.random() >= profile.rate:
            return None
        kind = rng.choice(profile.kinds)
        phase = profile.phase if profile.phase != "both" else rng.choice(("before", "after"))
        return kind, phase
