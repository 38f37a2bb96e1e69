"""``RunStatus``: where a run is in its lifecycle, and which statuses are final or failed."""

from __future__ import annotations

import enum
import threading
from typing import cast

__all__ = ["RunStatus", "behind"]

# Unknown statuses are kept as pseudo-members; past this many distinct ones they are no longer
# cached, so a misbehaving server cannot grow the enum's lookup table without bound.
_MAX_CACHED_UNKNOWN_STATUSES = 64
_unknown_status_lock = threading.Lock()


class RunStatus(enum.StrEnum):
    """Where a run is in its lifecycle.

    The legacy wire value ``INCOMPLETE`` reads as ``PARTIAL_FAILED``, and ``RunStatus.INCOMPLETE``
    (the TypeScript SDK's word) is that same member. A value this client does not know (a status
    added to the service later) never fails parsing: it becomes a pseudo-member whose ``value``
    and ``str()`` are the wire string in upper case, and which is not terminal, so waiting goes
    on. Statuses are read case-insensitively, known or not: ``"archived"`` and ``"ARCHIVED"``
    are the same status, as ``"succeeded"`` and ``"SUCCEEDED"`` are.
    """

    CREATED = "CREATED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SYNCING_SOURCE = "SYNCING_SOURCE"
    TRANSFORMING = "TRANSFORMING"
    SYNCING_TARGET = "SYNCING_TARGET"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL_FAILED = "PARTIAL_FAILED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELED = "CANCELED"
    # An alias of PARTIAL_FAILED, not a member of its own: iterating the enum skips it.
    INCOMPLETE = "PARTIAL_FAILED"

    @property
    def is_terminal(self) -> bool:
        """True for SUCCEEDED, PARTIAL_FAILED, FAILED, CRASHED and CANCELED: no more changes."""
        return self in _TERMINAL_STATUSES

    @property
    def is_failure(self) -> bool:
        """True for FAILED, CRASHED and CANCELED: the run ended without its results.

        PARTIAL_FAILED is not a failure: the run finished, and rejected some rows.
        """
        return self in _FAILURE_STATUSES

    @property
    def is_known(self) -> bool:
        """False for a status this version of the SDK does not know."""
        return self._name_ in type(self).__members__

    @classmethod
    def _missing_(cls, value: object) -> RunStatus | None:
        if not isinstance(value, str) or not value:
            return None
        canonical = value.upper()
        if canonical == "INCOMPLETE":
            return cls.PARTIAL_FAILED
        known = cls.__members__.get(canonical)
        if known is not None:
            return known
        with _unknown_status_lock:
            cached = cls._value2member_map_.get(canonical)
            if cached is not None:
                return cast(RunStatus, cached)
            pseudo = str.__new__(cls, canonical)
            pseudo._name_ = canonical
            pseudo._value_ = canonical
            if len(cls._value2member_map_) < len(cls.__members__) + _MAX_CACHED_UNKNOWN_STATUSES:
                cls._value2member_map_[canonical] = pseudo
            return pseudo


_FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELED})
_TERMINAL_STATUSES = _FAILURE_STATUSES | {RunStatus.SUCCEEDED, RunStatus.PARTIAL_FAILED}
# The stages a run goes through in order before it ends (RUNNING, the TypeScript SDK's word for
# the middle three, and statuses this SDK does not know have no place in it).
_STAGES = {
    status: n
    for n, status in enumerate(
        (
            RunStatus.CREATED,
            RunStatus.PENDING,
            RunStatus.SYNCING_SOURCE,
            RunStatus.TRANSFORMING,
            RunStatus.SYNCING_TARGET,
        )
    )
}


def behind(said: RunStatus, held: RunStatus) -> bool:
    """True if ``said`` is older news than ``held``: an answer at ``said`` about a run already
    seen at ``held`` is late (a lagging replica). Only a terminal status follows a terminal one,
    and a stage never follows a later one; any other order is taken as it comes."""
    if said in _TERMINAL_STATUSES:
        return False
    if held in _TERMINAL_STATUSES:
        return True
    was = _STAGES.get(held)
    return was is not None and _STAGES.get(said, was) < was
