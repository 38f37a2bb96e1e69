"""Webhook signing and delivery.

Each event is signed twice: the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`` where the key is the
base64-decoded part of the secret after ``whsec_``) and ``X-Lume-Signature-256: sha256=<hex
HMAC-SHA256(secret as UTF-8, body)>``. Deliveries retry with exponential backoff on one shared
client session, waiting on the emulator's clock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

import aiohttp

from .._clock import Clock

__all__ = ["Deliverer", "new_secret", "secret_key", "sign_headers"]

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


def secret_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key: the base64-decoded secret without its ``whsec_`` prefix."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be 'whsec_' followed by base64") from exc


def sign_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both signature schemes' headers for one delivery attempt."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    std = base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()
    lume = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{std}",
        "X-Lume-Signature-256": f"sha256={lume}",
    }


class Deliverer:
    """Sends events to webhook URLs in background tasks, retrying failures with backoff."""

    def __init__(
        self,
        *,
        retry_base: float,
        max_attempts: int,
        real_delay: Callable[[float], float],
        clock: Clock,
        on_attempt: Callable[[bool], None],
        timeout: float = 5.0,
    ) -> None:
        self._retry_base = retry_base
        self._max_attempts = max_attempts
        self._real_delay = real_delay
        self._clock = clock
        self._on_attempt = on_attempt
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                # At most 50 connections per receiver, none overall: a receiver that hangs
                # holds its own deliveries back, not other receivers' (or tenants').
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=50),
            )

    def submit(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(url, secret, event_id, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        for attempt in range(self._max_attempts):
            ok = await self._attempt(url, secret, event_id, body)
            self._on_attempt(ok)
            if ok:
                return
            if attempt + 1 < self._max_attempts:
                await self._clock.sleep(self._real_delay(self._retry_base * 2**attempt))

    async def _attempt(self, url: str, secret: str, event_id: str, body: bytes) -> bool:
        session = self._session
        if session is None:
            return False
        headers: dict[str, Any] = sign_headers(secret, event_id, int(self._clock.time()), body)
        headers["user-agent"] = "lume-emulator-webhooks/1"
        try:
            # A redirect is an answer that is not 2xx: followed, it would turn into a GET
            # without the event, and count as delivered.
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                # The status is the answer; the body is left unread (and the connection closed):
                # one that never ends would be held in memory until the timeout, and a 2xx
                # answer counted as a failure, and sent again.
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False
