"""Checks of the testing tools' options: the emulator, its fault profiles, the virtual clock."""

from __future__ import annotations

from typing import Any

from ._base import bad_value, check_int, check_seconds, wrong_type
from ._settings import check_header_token

__all__ = [
    "FAULT_KINDS",
    "check_emulator_key",
    "check_faults",
    "FAULT_PHASES",
    "check_fault_kinds",
    "check_fault_phase",
    "check_fault_rate",
    "check_rate_limit",
    "check_seed",
    "check_time_scale",
    "finite_seconds",
    "whole_at_least_one",
]

FAULT_KINDS = ("500", "502", "503", "429", "reset", "delay", "truncate")
FAULT_PHASES = ("before", "after", "both")


def check_time_scale(value: object) -> float:
    """How much faster than real time runs progress: a finite number > 0."""
    seconds = check_seconds(value, "time_scale", allow_none=False, allow_zero=False)
    assert seconds is not None
    return float(seconds)


def check_seed(value: object, name: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "an int", value)
    return value


def check_rate_limit(rate: object, burst: object, burst_name: str = "rate_burst") -> None:
    """Requests per second per key (a finite number > 0, or None) and the bucket's size."""
    check_seconds(rate, "rate_limit", allow_zero=False)
    if burst is not None:
        check_int(burst, burst_name, minimum=1)


def finite_seconds(value: object, name: str) -> float:
    """A finite number of seconds >= 0, as a float."""
    seconds = check_seconds(value, name, allow_none=False)
    assert seconds is not None
    return float(seconds)


def whole_at_least_one(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def check_fault_rate(value: object) -> float:
    """The share of requests hit by a fault: a number from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type("rate", "a number from 0 to 1", value)
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise bad_value("rate", "between 0 and 1", value)
    return float(value)


def check_fault_kinds(value: object) -> tuple[str, ...]:
    """Some of the fault kinds, at least one (a list of them: not one string)."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise wrong_type("kinds", f"a list of some of {FAULT_KINDS}", value)
    kinds: list[Any] = list(value)
    for i, kind in enumerate(kinds):
        if not isinstance(kind, str):
            raise wrong_type(f"kinds[{i}]", "a str", kind)
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise bad_value("kinds", f"a non-empty list of some of {FAULT_KINDS}", value)
    if isinstance(value, set | frozenset):  # no order of its own: the same one in every process
        kinds.sort(key=FAULT_KINDS.index)
    return tuple(kinds)


def check_fault_phase(value: object) -> str:
    if not isinstance(value, str):
        raise wrong_type("phase", "a str", value)
    if value not in FAULT_PHASES:
        raise bad_value("phase", "'before', 'after' or 'both'", value)
    return value


def check_emulator_key(api_key: object) -> None:
    """An API key for the emulator to accept: None (one is made), or a usable header value."""
    if api_key is None:
        return
    if not isinstance(api_key, str):
        raise wrong_type("api_key", "a str or None", api_key)
    if not api_key:
        raise ValueError("api_key must not be empty (a str); pass None to have one made")
    check_header_token(api_key, "api_key")


def check_faults(faults: object, profile_cls: type[Any]) -> None:
    """A fault profile (an instance of ``profile_cls``), or None for no faults."""
    if faults is not None and not isinstance(faults, profile_cls):
        raise wrong_type("faults", "a FaultProfile or None", faults)
