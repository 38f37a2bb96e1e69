"""``WebhookReceiver``: an aiohttp endpoint that verifies deliveries and hands events on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

from aiohttp import web

from .._clock import SYSTEM_CLOCK, Clock
from .._event_loop import running_loop
from .._exceptions import WebhookVerificationError
from .._listeners import listen_weakly
from .._validation import (
    check_clock,
    check_host,
    check_listener,
    check_max_queue,
    check_port,
    check_receiver_path,
    check_tolerance,
    check_ttl,
)
from ..models import WebhookEvent
from ._replay import ReplayGuard
from ._signatures import MalformedEventError, ReplayedDeliveryError, accept, signing_keys

__all__ = ["WebhookEventStream", "WebhookReceiver"]

logger = logging.getLogger("lume_async.webhooks")


class WebhookEventStream:
    """Events as they arrive, for ``async for``; made by ``WebhookReceiver.events()``.

    Subscribed from creation, so nothing is missed between creating and iterating. Bounded: when
    the consumer falls ``max_queue`` events behind, the oldest are dropped (with a warning).
    Close it (``aclose()`` or ``async with``) to unsubscribe. It may be read on another loop than
    the receiver's (one served from another thread): events are handed over to the reader's.
    """

    def __init__(self, receiver: WebhookReceiver, *, max_queue: int = 1000) -> None:
        self._queue: asyncio.Queue[WebhookEvent | None] = asyncio.Queue(
            maxsize=check_max_queue(max_queue)
        )
        self._loop = running_loop()  # the reader's, or its first __anext__'s if made outside one
        # Subscribed weakly: a stream dropped without aclose() is collected, and unsubscribed.
        self._unsubscribe = listen_weakly(receiver.add_listener, self._push)
        self._closed = False

    def _push(self, event: WebhookEvent | None) -> None:
        """Queue ``event`` on the reader's loop (from any thread): an asyncio queue filled from
        another loop's thread wakes no reader, and is not safe to touch from there."""
        loop = self._loop
        if loop is not None and running_loop() is not loop:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._put, event)
            return
        self._put(event)

    def _put(self, event: WebhookEvent | None) -> None:
        if self._queue.full():
            dropped = self._queue.get_nowait()
            if dropped is not None:
                logger.warning("webhook event stream is full; dropped event %s", dropped.id)
        self._queue.put_nowait(event)

    def __aiter__(self) -> WebhookEventStream:
        return self

    async def __anext__(self) -> WebhookEvent:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        # Closed: the events queued before still come, then the iteration ends (None marks it).
        event = None if self._closed and self._queue.empty() else await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop receiving events; an ``async for`` over the stream ends once it has the events
        received before."""
        self._unsubscribe()
        if not self._closed:
            self._closed = True
            # Wakes an iteration waiting for the next event, which only waits on an empty
            # queue: pushed into a full one, the marker would drop an event received before.
            if self._queue.empty():
                self._put(None)

    async def __aenter__(self) -> WebhookEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class WebhookReceiver:
    """An aiohttp endpoint that verifies deliveries and hands each new event to listeners.

    Mount ``handler`` in your own app, use ``app``, or run it alone with ``serve()``. Answers:

    * 200 ``{"status": "accepted"}`` for a new event, after handing it to the listeners;
    * 200 ``{"status": "duplicate"}`` for another delivery of an event already accepted, through
      either signature scheme (keyed on the event id inside the signed body), without calling
      the listeners again: a 2xx, so that a sender retrying a lost answer stops;
    * 401 when the signature does not verify or the delivery is not fresh (its signed time, the
      ``webhook-timestamp`` header or for the body-only scheme the event's ``created_at``, is
      more than ``tolerance`` seconds from now);
    * 400 when a signed body is not an event, or the body cannot be read (a broken encoding).

    Listeners run on the receiver's event loop and must not block; an exception in one is logged
    and does not affect the answer or the other listeners. ``clock`` is where "now" is read (the
    ``VirtualClock`` an emulator signs its deliveries with, in tests).
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        path: str = "/lume/webhooks",
        tolerance: float = 300,
        dedupe_ttl: float = 24 * 3600,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None:
            check_clock(clock)
        self._clock = clock or SYSTEM_CLOCK
        self._keys = signing_keys(secret)
        self._path = check_receiver_path(path)
        self._tolerance = check_tolerance(tolerance)
        self._delivered = ReplayGuard(ttl=check_ttl(dedupe_ttl, "dedupe_ttl"))
        self._listeners: list[Callable[[WebhookEvent], None]] = []
        self._app: web.Application | None = None

    @property
    def path(self) -> str:
        """The URL path the receiver's app answers on."""
        return self._path

    def add_listener(self, callback: Callable[[WebhookEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each new event; returns a function that unsubscribes."""
        check_listener(callback)
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def events(self, *, max_queue: int = 1000) -> WebhookEventStream:
        """An async iterator of the events received from now on."""
        return WebhookEventStream(self, max_queue=max_queue)

    async def handler(self, request: web.Request) -> web.Response:
        """The aiohttp handler: verify, deduplicate, notify listeners, answer."""
        try:
            body = await request.read()
        except (web.RequestPayloadError, ConnectionError) as exc:
            # A body that cannot be decoded (Content-Encoding), or a sender gone before its end:
            # the delivery's fault, not the receiver's (no 500, no traceback).
            logger.warning(
                "refused webhook delivery from %s: unreadable body: %s", request.remote, exc
            )
            return web.json_response({"error": "unreadable body"}, status=400)
        try:
            event = accept(
                body,
                request.headers,
                self._keys,
                tolerance=self._tolerance,
                now=self._clock.time(),
                seen=self._delivered,
            )
        except ReplayedDeliveryError:
            return web.json_response({"status": "duplicate"})
        except MalformedEventError as exc:
            logger.warning("refused webhook delivery from %s: %s", request.remote, exc)
            return web.json_response({"error": "malformed event"}, status=400)
        except WebhookVerificationError as exc:
            logger.warning("refused webhook delivery from %s: %s", request.remote, exc)
            return web.json_response({"error": "invalid signature"}, status=401)
        self._notify(event)
        return web.json_response({"status": "accepted"})

    def _notify(self, event: WebhookEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("webhook listener %r failed on event %s", listener, event.id)

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self._path, self.handler)
        return app

    @property
    def app(self) -> web.Application:
        """An ``aiohttp.web.Application`` serving the receiver at ``path``."""
        if self._app is None:
            self._app = self._make_app()
        return self._app

    @contextlib.asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Run the receiver on its own socket; yields the URL to register as the webhook URL."""
        check_host(host)
        check_port(port)
        runner = web.AppRunner(self._make_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            if ":" in bound_host:
                bound_host = f"[{bound_host}]"
            yield f"http://{bound_host}:{bound_port}{self._path}"
        finally:
            await runner.cleanup()
