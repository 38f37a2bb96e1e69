"""The aiohttp application: routes, the middleware and the service's start/stop hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .._clock import SYSTEM_CLOCK, Clock
from ._control import add_control_routes
from ._faults import FaultProfile
from ._http import SERVICE, middleware
from ._routes import add_routes
from ._service import Service

__all__ = ["create_app"]


def create_app(
    *,
    api_key: str | None = None,
    time_scale: float = 1.0,
    faults: FaultProfile | None = None,
    seed: int = 0,
    rate_limit: float | None = None,
    rate_burst: int | None = None,
    webhook_retry_base: float = 0.5,
    webhook_max_attempts: int = 6,
    service: Service | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> web.Application:
    """A standalone emulator app, e.g. for ``aiohttp.web.run_app`` or aiohttp's test client.

    The scheduler and the webhook session start and stop with the app; the service (state,
    clock, faults) is ``app[SERVICE]``.
    """
    if service is None:
        service = Service(
            api_key=api_key,
            time_scale=time_scale,
            faults=faults,
            seed=seed,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            webhook_retry_base=webhook_retry_base,
            webhook_max_attempts=webhook_max_attempts,
            clock=clock,
        )
    app = web.Application(middlewares=[middleware], client_max_size=64 * 1024 * 1024)
    app[SERVICE] = service
    add_routes(app)
    add_control_routes(app)
    app.on_shutdown.append(_drop_orphans)
    app.cleanup_ctx.append(_lifespan)
    return app


async def _drop_orphans(app: web.Application) -> None:
    """Before aiohttp waits for the answers in progress: end those whose client has gone, which
    it would wait for until its timeout, and then leave running."""
    await app[SERVICE].in_flight.drop(orphans_only=True)


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.start()
    yield
    await service.stop()
