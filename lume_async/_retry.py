"""Retry decisions: backoff with full jitter, Retry-After, and the client-wide retry budget.

The transport is the only layer that retries; this module only decides *whether* and *how long*.
"""

from __future__ import annotations

import logging
import random
from typing import Final

import attrs

from ._clock import SYSTEM_CLOCK, Clock
from ._config import RetryPolicy
from ._exceptions import APIConnectionError, APIError, LumeError, RateLimitError, ServerError
from ._log_text import Printable

__all__ = ["RetryBudget", "RetryEvent"]

logger = logging.getLogger("lume_async.retry")

_MAX_DOUBLINGS: Final = 64


@attrs.frozen
class RetryEvent:
    """One retry about to happen: handed to ``RetryPolicy.on_retry`` and logged.

    Attributes:
        method: The HTTP method of the request (``GET``, ``POST``, ...).
        route: The route template, such as ``/v1/runs/{run_id}`` (no ids, no query).
        attempt: The attempt that just failed, from 1.
        wait: Seconds before the next attempt.
        cause: The error of the failed attempt.
    """

    method: str
    route: str
    attempt: int  # the attempt that just failed, from 1
    wait: float  # seconds before the next attempt
    cause: BaseException


def is_retryable(exc: BaseException) -> bool:
    # 408: the server stopped waiting for the request; a repeat does not get the same answer.
    # 501: the server does not do this at all; a repeat gets the same answer.
    if isinstance(exc, ServerError):
        return exc.status_code != 501
    return isinstance(exc, RateLimitError | APIConnectionError) or (
        isinstance(exc, APIError) and exc.status_code == 408
    )


def backoff(policy: RetryPolicy, retry_index: int, exc: LumeError, rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry_index`` (from 0) after ``exc``.

    Full jitter keeps many clients that failed together from retrying together.
    """
    if isinstance(exc, APIError) and exc.retry_after is not None:
        # Everyone told to come back in N seconds must not come back together: up to a quarter
        # more, drawn at random (never less than the server asked for), within max_retry_after.
        asked = exc.retry_after
        return min(asked * (1.0 + rng.uniform(0.0, 0.25)), max(asked, policy.max_retry_after))
    base = policy.rate_limit_base_delay if isinstance(exc, RateLimitError) else policy.base_delay
    # The doubling stops long before a float would overflow (max_retries has no upper bound).
    return rng.uniform(0.0, min(policy.max_delay, base * 2.0 ** min(retry_index, _MAX_DOUBLINGS)))


class RetryBudget:
    """A client-wide cap on retries: a share of recent requests plus a small floor.

    Each original request deposits ``ratio`` tokens into the current one-second slot of a ten-second
    window; each retry withdraws one; a retry that succeeds returns its token, so a flaky service
    keeps its retries while a dead one stops getting them. The balance is
    ``floor * window + ratio * deposits - withdrawals`` over the window.
    """

    __slots__ = (
        "_clock",
        "_deposits",
        "_floor",
        "_last_slot",
        "_ratio",
        "_window",
        "_withdrawals",
    )

    def __init__(
        self, ratio: float, floor: float, window: int = 10, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._clock = clock
        self._ratio = ratio
        self._floor = floor
        self._window = window
        self._deposits = [0] * window
        self._withdrawals = [0.0] * window
        self._last_slot = int(clock.monotonic())

    def _slot(self) -> int:
        now = int(self._clock.monotonic())
        if now != self._last_slot:
            stale = min(now - self._last_slot, self._window)
            for i in range(1, stale + 1):
                j = (self._last_slot + i) % self._window
                self._deposits[j] = 0
                self._withdrawals[j] = 0.0
            self._last_slot = now
        return now % self._window

    def deposit(self) -> None:
        self._deposits[self._slot()] += 1

    def balance(self) -> float:
        self._slot()
        return (
            self._floor * self._window + self._ratio * sum(self._deposits) - sum(self._withdrawals)
        )

    def try_withdraw(self) -> bool:
        if self.balance() < 1.0:
            return False
        self._withdrawals[self._slot()] += 1.0
        return True

    def withdrawn_at(self) -> int:
        """A mark of the current slot, for ``refund``: take it when withdrawing."""
        return int(self._clock.monotonic())

    def refund(self, withdrawn_at: int | None = None) -> None:
        """Give back a token withdrawn at ``withdrawn_at`` (default: now), into the slot it was
        taken from; one that has left the window is back already and is not given twice."""
        now = self._slot()
        if withdrawn_at is None:
            self._withdrawals[now] -= 1.0
            return
        if int(self._clock.monotonic()) - withdrawn_at >= self._window:
            return
        self._withdrawals[withdrawn_at % self._window] -= 1.0


def log_retry(event: RetryEvent, policy: RetryPolicy) -> None:
    logger.info(
        "retrying %s %s after attempt %d in %.3f s: %s",
        event.method,
        event.route,
        event.attempt,
        event.wait,
        Printable(event.cause),  # the server's words: one escaped, bounded line
    )
    if policy.on_retry is not None:
        try:
            policy.on_retry(event)
        except Exception:
            logger.exception("the on_retry hook raised; the retry goes on")
