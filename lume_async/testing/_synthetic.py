"""Run sources: inline rows mapped up front, and path sources whose rows are made on demand.

A path source never holds its rows: row ``i`` is derived from ``(seed, i)``, and whether it is
rejected follows a closed-form rule (row ``i`` is rejected iff ``floor((i+1)r + o) > floor(ir + o)``
for reject rate ``r`` and a seeded offset ``o``), so any page of results or rejects of a
million-row run costs O(page size + log rows).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._flows import FlowVersion

__all__ = ["InlineSource", "PathSource", "Source", "parse_source_path"]

MAX_ROWS = 1_000_000_000
DEFAULT_ROWS = 100
DEFAULT_PATH_SECONDS = 2.0
INLINE_SECONDS = 1.0
_FORCED = {"FAILED", "CRASHED"}
_MASK = (1 << 64) - 1
_COUNTRIES = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "NL")
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF")
_EPOCH = date(2020, 1, 1)


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def seed_of(*parts: object) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Source:
    """What a run reads: counts, validation summary and paged rows."""

    input_rows: int = 0
    mapped_rows: int = 0
    rejected_rows: int = 0
    failed_tests: int = 0
    describe: str = "inline"

    def top_errors(self) -> list[dict[str, Any]]:
        return []

    def inputs(self, offset: int, limit: int) -> list[Any]:
        return []

    def results(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return []

    def rejects(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return []


class InlineSource(Source):
    """``source_data`` given in the create request, mapped for real when the run is created."""

    def __init__(self, flow: FlowVersion, rows: list[Any]) -> None:
        self._rows = rows
        self._mapped: list[dict[str, Any]] = []
        self._rejects: list[dict[str, Any]] = []
        counts: Counter[tuple[str, str]] = Counter()
        for index, record in enumerate(rows):
            row, errors = flow.map_record(record)
            if row is not None:
                self._mapped.append(row)
            else:
                self._rejects.append({"index": index, "source_record": record, "errors": errors})
                counts.update((e["error_code"], e["field"]) for e in errors)
        self.input_rows = len(rows)
        self.mapped_rows = len(self._mapped)
        self.rejected_rows = len(self._rejects)
        self.failed_tests = sum(counts.values())
        self._top = [
            {"error_code": code, "field": field, "count": n}
            for (code, field), n in counts.most_common(5)
        ]

    def top_errors(self) -> list[dict[str, Any]]:
        return self._top

    def inputs(self, offset: int, limit: int) -> list[Any]:
        return self._rows[offset : offset + limit]

    def results(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._mapped[offset : offset + limit]

    def rejects(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._rejects[offset : offset + limit]


class PathSource(Source):
    """Rows of a ``source_path``, generated from ``(seed, index)`` whenever they are read."""

    def __init__(self, flow: FlowVersion, rows: int, reject_rate: float, seed: int, path: str):
        self.flow = flow
        self.input_rows = rows
        self.rate = reject_rate if flow.error_kinds else 0.0
        self.seed = seed
        self.describe = path
        self.offset = (seed % 1_000_003) / 1_000_003
        self.rejected_rows = self._rejected_before(rows)
        self.mapped_rows = rows - self.rejected_rows
        self.failed_tests = self.rejected_rows

    def _rejected_before(self, i: int) -> int:
        return math.floor(i * self.rate + self.offset) if self.rate else 0

    def _is_rejected(self, i: int) -> bool:
        return self._rejected_before(i + 1) > self._rejected_before(i)

    def _first(self, k: int, before: Any) -> int:
        """Smallest row index ``i`` with ``before(i + 1) >= k + 1`` (binary search)."""
        lo, hi = 0, self.input_rows
        while lo < hi:
            mid = (lo + hi) // 2
            if before(mid + 1) >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _kind(self, j: int) -> tuple[str, str]:
        kinds = self.flow.error_kinds
        return kinds[(j + self.seed) % len(kinds)]

    def top_errors(self) -> list[dict[str, Any]]:
        kinds = self.flow.error_kinds
        n, total = len(kinds), self.rejected_rows
        counts: Counter[tuple[str, str]] = Counter()
        for t in range(n):
            # Rejects j = 0..total-1 take kind (j + seed) % n: count those landing on t.
            first = (t - self.seed) % n
            counts[kinds[t]] += (total - first + n - 1) // n if total > first else 0
        return [
            {"error_code": code, "field": field, "count": c}
            for (field, code), c in counts.most_common(5)
            if c
        ]

    def record(self, i: int, bad: tuple[str, str] | None) -> dict[str, Any]:
        h = _mix(self.seed ^ _mix(i))
        field_bad = bad[0] if bad else None
        if self.flow.flow == "invoice_mapper":
            rec: dict[str, Any] = {
                "invoice_id": f"INV-{i:09d}",
                "amount": f"{(h % 10_000_000) / 100:.2f}",
                "currency": _CURRENCIES[h % len(_CURRENCIES)].lower(),
                "issued_at": (_EPOCH + timedelta(days=h % 1500)).isoformat() + "T12:00:00Z",
            }
            bad_values = {
                "invoice_id": "",
                "amount": -1.5,
                "currency": "EURO",
                "issued_at": "yesterday",
            }
        else:
            rec = {
                "name": f"  Customer {i}  ",
                "email": f"Customer.{i}@Example.COM",
                "age": str(18 + h % 70),
                "signup_date": (_EPOCH + timedelta(days=(h >> 8) % 1500)).isoformat(),
            }
            if self.flow.version != "v1":
                rec["country"] = _COUNTRIES[(h >> 16) % len(_COUNTRIES)].lower()
            bad_values = {
                "full_name": "   ",
                "email": f"customer{i}.example.com",
                "age": 200 + h % 50,
                "signup_date": "2024-13-45",
                "country": "Narnia",
            }
        if field_bad is not None:
            source_key = {"full_name": "name"}.get(field_bad, field_bad)
            rec[source_key] = bad_values[field_bad]
        return rec

    def inputs(self, offset: int, limit: int) -> list[Any]:
        out: list[Any] = []
        for i in range(offset, min(offset + max(limit, 0), self.input_rows)):
            bad = self._kind(self._rejected_before(i)) if self._is_rejected(i) else None
            out.append(self.record(i, bad))
        return out

    def results(self, offset: int, limit: int) -> list[dict[str, Any]]:
        if offset >= self.mapped_rows or limit <= 0:
            return []
        i = self._first(offset, lambda x: x - self._rejected_before(x))
        out: list[dict[str, Any]] = []
        while len(out) < limit and i < self.input_rows:
            if not self._is_rejected(i):
                row, _ = self.flow.map_record(self.record(i, None))
                if row is not None:
                    out.append(row)
            i += 1
        return out

    def rejects(self, offset: int, limit: int) -> list[dict[str, Any]]:
        if offset >= self.rejected_rows or limit <= 0:
            return []
        i = self._first(offset, self._rejected_before)
        out: list[dict[str, Any]] = []
        while len(out) < limit and i < self.input_rows:
            if self._is_rejected(i):
                j = self._rejected_before(i)
                record = self.record(i, self._kind(j))
                _, errors = self.flow.map_record(record)
                out.append({"index": i, "source_record": record, "errors": errors})
            i += 1
        return out


def _num(query: dict[str, list[str]], name: str, default: float, lo: float, hi: float) -> float:
    try:
        value = float(query[name][0])
    except (KeyError, IndexError, ValueError):
        return default
    if not math.isfinite(value):
        return default
    return min(max(value, lo), hi)


def parse_source_path(
    flow: FlowVersion, path: str, seed: int
) -> tuple[PathSource, float, str | None]:
    """A path's source, duration (virtual seconds) and forced outcome.

    ``synthetic://NAME?rows=N&duration=S&reject_rate=R&outcome=STATUS`` sets them; malformed or
    out-of-range parameters fall back to defaults or are clamped, so any string is a valid path.
    ``outcome`` forces FAILED or CRASHED; otherwise the rows decide (SUCCEEDED, PARTIAL_FAILED, or
    FAILED when every row is rejected).
    """
    rows, duration, rate, outcome = DEFAULT_ROWS, DEFAULT_PATH_SECONDS, 0.0, None
    if path.startswith("synthetic://"):
        query = parse_qs(urlsplit(path).query)
        rows = int(_num(query, "rows", DEFAULT_ROWS, 0, MAX_ROWS))
        duration = _num(query, "duration", DEFAULT_PATH_SECONDS, 0.0, 86_400.0 * 30)
        rate = _num(query, "reject_rate", 0.0, 0.0, 1.0)
        forced = query.get("outcome", [""])[0].upper()
        outcome = forced if forced in _FORCED else None
    return PathSource(flow, rows, rate, seed_of(seed, path), path), duration, outcome
