"""Request logging: one line per HTTP attempt on the ``lume_async.http`` logger, and LUME_LOG.

At INFO each attempt logs its method, route template, status (or why it failed), duration,
attempt number and request id: ``POST /v1/runs 201 12.4 ms attempt=1 request_id=req_...``.
DEBUG adds the query and the size of the answer. Lines never carry the API key: the route is the
template (``/v1/runs/{run_id}``), and error texts never hold the key. The same fields ride on
each record (``http_method``, ``http_route``, ``http_status``, ``duration_ms``, ``attempt``,
``request_id``) for structured handlers.

``LUME_LOG=info`` (or ``debug``) attaches a stderr handler to the ``lume_async`` logger when the
first client is made, for a quick look without configuring ``logging``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence

from ._log_text import MAX_ID, escape, printable

__all__ = ["ENV_LOG", "configure_from_env", "log_attempt", "logger"]

ENV_LOG = "LUME_LOG"
logger = logging.getLogger("lume_async.http")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_lock = threading.Lock()
_configured = False


def configure_from_env() -> None:
    """Honour ``LUME_LOG`` once per process: a stderr handler on the ``lume_async`` logger."""
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
        value = os.environ.get(ENV_LOG, "").strip().lower()
        if not value:
            return
        level = _LEVELS.get(value)
        if level is None:
            warnings.warn(
                f"{ENV_LOG}={value!r} is not one of {', '.join(_LEVELS)}; ignored",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package = logging.getLogger("lume_async")
        package.addHandler(handler)
        package.setLevel(level)


def log_attempt(
    method: str,
    route: str,
    *,
    attempt: int,
    started: float,
    status: int | None = None,
    request_id: str | None = None,
    error: BaseException | None = None,
    params: Mapping[str, str | int] | Sequence[tuple[str, str | int]] | None = None,
    size: int | None = None,
) -> None:
    """Log one attempt (``started`` from ``time.perf_counter()``); cheap when logging is off."""
    if not logger.isEnabledFor(logging.INFO):
        return
    millis = (time.perf_counter() - started) * 1000
    outcome = str(status) if status is not None else "failed"
    # The request id and an error's text come from the server: escaped and cut, as the line.
    request_id = None if request_id is None else printable(request_id, MAX_ID)
    text = f"{method} {route} {outcome} {millis:.1f} ms attempt={attempt}"
    if request_id is not None:
        text += f" request_id={request_id}"
    if error is not None and status is None:
        text += f": {type(error).__name__}: {printable(str(error))}"
    debug = logger.isEnabledFor(logging.DEBUG)
    if debug:
        if params:
            pairs = params.items() if isinstance(params, Mapping) else params
            text += " query=" + "&".join(f"{k}={v}" for k, v in pairs)
        if size is not None:
            text += f" bytes={size}"
    text = escape(text)  # a query value from the caller: one line all the same
    fields = {
        "http_method": method,
        "http_route": route,
        "http_status": status,
        "duration_ms": round(millis, 3),
        "attempt": attempt,
        "request_id": request_id,
    }
    logger.info(text, extra=fields)
