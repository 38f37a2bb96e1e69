"""What error trackers would read of a failed call: the locals of its frames.

Error trackers read the locals of every frame of a traceback: Sentry reprs them, Rollbar sends a
``str`` value as it is, and both drop a local named ``secret`` by its name only.
"""

from __future__ import annotations

import traceback
from collections.abc import Collection, Iterator, Mapping
from typing import Any

__all__ = ["SCRUBBED_NAMES", "holding"]

# Names error trackers scrub by default (Sentry's and Rollbar's lists share these).
SCRUBBED_NAMES = frozenset({"secret", "password", "api_key", "apikey", "token", "authorization"})


def _rendered(value: Any, depth: int = 0) -> Iterator[str]:
    """What a tracker makes of one local: ``repr``, and a ``str`` value (nested too) as is."""
    if depth > 6:
        return
    yield repr(value)
    if isinstance(value, str):
        yield str.__str__(value)
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
    elif isinstance(value, Mapping):
        for key, item in list(value.items())[:200]:
            yield from _rendered(key, depth + 1)
            yield from _rendered(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value[:200]:
            yield from _rendered(item, depth + 1)


def _frame_locals(exc: BaseException, skip: Collection[str]) -> Iterator[tuple[str, str, str]]:
    """(function, local name, text) for each local of each frame of ``exc`` and its chain
    outside the files in ``skip``, leaving out the locals that trackers scrub by their name."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for frame, _ in traceback.walk_tb(current.__traceback__):
            if frame.f_code.co_filename in skip:
                continue  # the test's own frames hold what they look for
            for name, value in frame.f_locals.items():
                if name.lower() in SCRUBBED_NAMES:
                    continue
                for text in _rendered(value):
                    yield frame.f_code.co_name, name, text
        pending += (current.__cause__, current.__context__)


def holding(exc: BaseException, *needles: str, skip: Collection[str]) -> list[str]:
    """``function.local`` for every frame local of ``exc`` (outside the files in ``skip``) whose
    text shows one of ``needles``."""
    return sorted(
        {
            f"{func}.{name}"
            for func, name, text in _frame_locals(exc, skip)
            if any(n in text for n in needles)
        }
    )
