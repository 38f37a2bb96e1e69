"""What webhook deliveries carry, and the endpoints they are sent to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._status import RunStatus

__all__ = ["WebhookEndpoint", "WebhookEvent", "WebhookRunData"]


@attrs.frozen(kw_only=True)
class WebhookEndpoint:
    """A URL the service sends run completion events to; ``secret`` signs them (never shown)."""

    id: str
    url: str
    events: tuple[str, ...] = ()
    secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class WebhookRunData:
    """The run a webhook event is about, as it stood when the event was sent."""

    run_id: str
    status: RunStatus
    flow_version: str | None = None
    source_path: str | None = None
    run_metadata: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook delivery; ``type`` is e.g. ``run.succeeded``; ``id`` survives retries."""

    id: str
    type: str
    created_at: datetime
    data: WebhookRunData
