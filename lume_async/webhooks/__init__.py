"""Verify Lume's webhook deliveries, and receive them with a small aiohttp app.

The service signs every delivery twice; ``verify`` accepts either scheme:

* Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64>``,
  the HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``. The header may carry several space-separated
  signatures (during key rotation); one match is enough. The timestamp must be within
  ``tolerance`` seconds of now, in either direction, which bounds how long a captured delivery
  can be replayed; a ``ReplayGuard`` closes that window too.
* ``X-Lume-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the body alone (bare hex accepted).
  Its headers carry no time, so the signed body's own ``created_at`` is held to the same
  tolerance: a delivery without one, or with one that does not parse, is refused.

A delivery carrying both is checked by the Standard Webhooks scheme. Replay protection
(``ReplayGuard``, ``WebhookReceiver``) is keyed on the event id inside the signed body, so one
event is accepted once, whichever scheme or schemes carry its deliveries.

Keys: a secret of the form ``whsec_<base64>`` is used, as the Standard Webhooks specification
says, as the base64-decoded bytes for that scheme; any other secret is used as its UTF-8 bytes.
The ``X-Lume-Signature-256`` key is always the secret's UTF-8 bytes. Several secrets may be
given while one is being rotated out: any of them verifies.

Every failure raises ``WebhookVerificationError`` with the reason; reasons never quote a secret.
"""

from __future__ import annotations

from .._exceptions import WebhookVerificationError
from ..models import WebhookEvent
from ._receiver import WebhookEventStream, WebhookReceiver
from ._replay import ReplayGuard
from ._signatures import new_secret, sign, verify

__all__ = [
    "ReplayGuard",
    "WebhookEvent",
    "WebhookEventStream",
    "WebhookReceiver",
    "WebhookVerificationError",
    "new_secret",
    "sign",
    "verify",
]
