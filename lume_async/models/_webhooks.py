"""What webhook deliveries carry, and the endpoints they are sent to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._status import RunStatus

__all__ = ["WebhookEndpoint", "WebhookEvent", "WebhookRunData"]


@attrs.frozen(kw_only=True)
class WebhookEndpoint:
    """A URL the service sends run completion events to; ``secret`` signs them (never shown).

    Attributes:
        id: The endpoint's id.
        url: Where the events are sent.
        events: The event types sent, such as ``run.succeeded``.
        secret: The signing secret; only in the answer to ``create``, and never in the repr.
    """

    id: str
    url: str
    events: tuple[str, ...] = ()
    secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class WebhookRunData:
    """The run a webhook event is about, as it stood when the event was sent.

    Attributes:
        run_id: The run's id.
        status: Its terminal status.
        flow_version: The flow version it applied.
        source_path: Where its source rows were read.
        run_metadata: Your own metadata, as given at create.
    """

    run_id: str
    status: RunStatus
    flow_version: str | None = None
    source_path: str | None = None
    run_metadata: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook delivery; ``type`` is e.g. ``run.succeeded``; ``id`` survives retries.

    Attributes:
        id: The event's id (``evt_...``): the same in every retried delivery, so deduplicate on it.
        type: ``run.succeeded``, ``run.partial_failed``, ``run.failed``, ``run.crashed`` or
            ``run.canceled``.
        created_at: When the service made the event (UTC).
        data: The run it is about.
    """

    id: str
    type: str
    created_at: datetime
    data: WebhookRunData
