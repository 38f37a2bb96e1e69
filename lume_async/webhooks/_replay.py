"""``ReplayGuard``: remembers accepted webhook deliveries so a replay of one is refused."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from .._validation import check_int, check_now, check_replay_key, check_ttl

__all__ = ["ReplayGuard"]


class ReplayGuard:
    """Remembers accepted event ids for ``ttl`` seconds so a replay of one is refused.

    Bounded (the oldest ids go first past ``max_entries``) and safe to share between threads.
    ``verify(..., seen=guard)`` keys it on the event id inside the signed body, whichever scheme
    carried the delivery, and keeps each id at least until the event's signed times are out of
    the verification tolerance, however short ``ttl`` is.
    """

    def __init__(self, *, ttl: float = 600.0, max_entries: int = 100_000) -> None:
        self._ttl = check_ttl(ttl)
        self._max = check_int(max_entries, "max_entries", minimum=1)
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(
        self, key: str, *, now: float | None = None, keep_until: float | None = None
    ) -> bool:
        """Record ``key``; True if it was new, False if it was seen within ``ttl``.

        ``keep_until`` (Unix seconds) keeps it longer than ``ttl`` if need be.
        """
        check_replay_key(key)
        at = check_now(now)
        now = time.time() if at is None else at
        until = check_now(keep_until, "keep_until")
        with self._lock:
            self._purge(now)
            expires = self._expiry.get(key)
            if expires is not None and expires >= now:  # at its expiry, still fresh: a replay
                return False
            self._expiry[key] = max(now + self._ttl, until if until is not None else now)
            self._expiry.move_to_end(key)
            while len(self._expiry) > self._max:
                self._expiry.popitem(last=False)
            return True

    def _purge(self, now: float) -> None:
        # Entries are kept in insertion order, which is expiry order while ``now`` moves forward.
        # The guard trusts the clock it is given to move forward: one stepped back by more than
        # the tolerance makes fresh again an event forgotten here, and its replay is accepted.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires >= now:
                break
            del self._expiry[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            expires = self._expiry.get(key) if isinstance(key, str) else None
            return expires is not None and expires >= time.time()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def clear(self) -> None:
        """Forget every id."""
        with self._lock:
            self._expiry.clear()
