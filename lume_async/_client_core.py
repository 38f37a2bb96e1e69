"""``ClientCore``: what a client and every ``with_options`` view of it share.

The resolved settings, the clock, the connections (one transport), the shared poller, and the
runs core with the client's own per-call settings. Views differ only in their ``RequestOptions``.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._batch_get import PollingBatchGet
from ._clock import Clock
from ._config import ClientConfig
from ._http_log import configure_from_env
from ._listeners import listen_weakly
from ._runs_core import RunsCore, fetch_if_found
from ._transport import RequestOptions, Transport
from ._waiting import Waiting

if TYPE_CHECKING:
    from .webhooks import WebhookReceiver

__all__ = ["ClientCore"]


class ClientCore:
    """The shared half of a client: made once by ``AsyncLume(...)``, closed once."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        webhooks: WebhookReceiver | None,
    ) -> None:
        configure_from_env()
        self.config = config
        self.clock = clock
        self.transport = Transport(config, ssl_context=ssl_context, clock=clock)
        self.waiting = Waiting(
            PollingBatchGet(self.transport),
            confirm=functools.partial(fetch_if_found, self.transport),
            clock=clock,
        )
        self.runs = RunsCore(self.transport, waiting=self.waiting, clock=clock)
        self._unsubscribe: Callable[[], None] | None = None
        if webhooks is not None:
            # Held weakly: a client dropped without aclose() is not kept alive by its receiver,
            # and leaves its listeners when it is collected.
            self._unsubscribe = listen_weakly(webhooks.add_listener, self.waiting.on_event)
            self.waiting.enable_push()

    @property
    def default_options(self) -> RequestOptions:
        return self.transport.default_options

    def runs_with(self, options: RequestOptions | None) -> RunsCore:
        """The runs core for calls made with ``options`` (None: the client's own settings)."""
        return self.runs if options is None else self.runs.with_options(options)

    @property
    def closed(self) -> bool:
        return self.transport.closed

    async def aclose(self) -> None:
        """Stop listening for webhooks, end every wait, close the connections; idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        try:
            await self.waiting.aclose()
        finally:  # a close cancelled midway still closes the connections
            await self.transport.aclose()
