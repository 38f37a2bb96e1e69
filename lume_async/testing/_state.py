"""The emulator's state: tenants, their runs and webhooks, idempotency records, and ids."""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any

from ._run import Run

if TYPE_CHECKING:
    from ._access import Principal

__all__ = ["IdempotencyRecord", "Tenant", "UlidFactory", "Webhook"]

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


class Webhook:
    """A webhook endpoint; it hears of the runs its ``owner`` may read."""

    __slots__ = ("events", "id", "owner", "secret", "url")

    def __init__(self, id: str, url: str, events: list[str], secret: str, owner: Principal) -> None:
        self.id, self.url, self.events, self.secret = id, url, events, secret
        self.owner = owner

    def visible_to(self, who: Principal) -> bool:
        """Its owner and tenant admins see a webhook (its secret included); others do not."""
        return who.admin or who.name == self.owner.name

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

    __slots__ = ("_expiry", "by_pair", "idempotency", "name", "order", "runs", "webhooks")

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: dict[str, Run] = {}
        self.order: list[str] = []
        self.by_pair: dict[tuple[str, str], list[Run]] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self._expiry: deque[tuple[str, IdempotencyRecord]] = deque()

    def idempotency_record(self, key: str, now: float, ttl: float) -> IdempotencyRecord | None:
        """The live record of ``key``; one older than ``ttl`` is forgotten."""
        record = self.idempotency.get(key)
        if record is not None and now - record.created >= ttl:
            del self.idempotency[key]
            return None
        return record

    def remember(self, key: str, record: IdempotencyRecord, now: float, ttl: float) -> None:
        """Keep ``record`` for ``key``, and forget records older than ``ttl`` (oldest first)."""
        expiry, records = self._expiry, self.idempotency
        while expiry and now - expiry[0][1].created >= ttl:
            old_key, old = expiry.popleft()
            if records.get(old_key) is old:
                del records[old_key]
        records[key] = record
        expiry.append((key, record))

    def clear(self) -> None:
        self.runs.clear()
        self.order.clear()
        self.by_pair.clear()
        self.webhooks.clear()
        self.idempotency.clear()
        self._expiry.clear()
