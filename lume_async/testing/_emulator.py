"""``Emulator``: the Lume service on a local port, in the caller's loop or a background thread.

``async with Emulator() as emu`` serves on the running loop; ``with Emulator() as emu`` starts a
private loop in a daemon thread and blocks until it listens. The plain methods (``set_faults``,
``stats``, ``add_tenant``, ``add_principal``, ``reset``, ``advance``) hop onto the serving loop,
so they are safe from any thread in both modes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from .._clock import SYSTEM_CLOCK, Clock
from .._validation import (
    check_clock,
    check_emulator_key,
    check_faults,
    check_host,
    check_port,
    check_rate_limit,
    check_seed,
    check_time_scale,
    finite_seconds,
    whole_at_least_one,
)
from ._app import create_app
from ._faults import FaultProfile
from ._protocol import JsonErrorRunner
from ._service import Service

__all__ = ["Emulator"]

T = TypeVar("T")


class Emulator:
    """A faithful, stateful stand-in for the Lume API, for tests and local development.

    ``url``, ``port`` and ``api_key`` are set once it is started. Runs progress on run time:
    ``time_scale`` speeds it up (100 makes a 5 s run end in 50 ms) and ``advance()`` skips it
    outright; only durations and stage timings are scaled, timestamps stay wall-clock time. All
    time is read from ``clock`` (anything with ``monotonic()``, ``time()`` and ``async sleep()``,
    such as a ``VirtualClock``), so a test can hand it a virtual clock: run progress, timestamps,
    the 24 h idempotency window, cursor lifetimes and webhook retry backoff all follow it.

    Flow versions ``customer_cleaner:v1``, ``customer_cleaner:v2`` and ``invoice_mapper:v1``
    exist. A ``synthetic://name?rows=N&reject_rate=R&duration=S&outcome=FAILED|CRASHED`` source
    path makes a run of that shape; any other path reads 100 seeded rows in 2 s of run time.

    Examples:
        >>> with Emulator(time_scale=100) as emu:  # on a background thread
        ...     emu.stats()["runs_created"]
        0
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        time_scale: float = 1.0,
        faults: FaultProfile | None = None,
        seed: int = 0,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
        webhook_retry_base: float = 0.5,
        webhook_max_attempts: int = 6,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        check_host(host)
        check_port(port)
        check_emulator_key(api_key)
        check_time_scale(time_scale)
        check_faults(faults, FaultProfile)
        check_seed(seed)
        check_rate_limit(rate_limit, rate_burst)
        finite_seconds(webhook_retry_base, "webhook_retry_base")
        whole_at_least_one(webhook_max_attempts, "webhook_max_attempts")
        check_clock(clock)
        self._service = Service(
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
        self.app: web.Application = create_app(service=self._service)
        self.host = host
        self.port = port
        self.api_key: str = self._service.api_key
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give a client, ``http://127.0.0.1:<port>`` (set once started); an
        emulator bound to every interface (``0.0.0.0``, ``::``) is reached on loopback."""
        host = self.host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:  # bound to every interface
                host = "::1" if ":" in host else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r})"

    # -- serving ---------------------------------------------------------------------------------

    async def _astart(self) -> None:
        if self._runner is not None:
            raise RuntimeError("this Emulator is already running")
        if self.app.frozen:  # served before, perhaps on another loop: serve a fresh app
            self.app = create_app(service=self._service)
        runner = JsonErrorRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def _astop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._loop = None
        self._loop_thread = None

    async def __aenter__(self) -> Emulator:
        await self._astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._astop()

    def __enter__(self) -> Emulator:
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("this Emulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve_in_thread, args=(ready, failure), name="lume-emulator", daemon=True
        )
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None

    def _serve_in_thread(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()
            loop.run_until_complete(self._astop())
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    # -- plain controls, safe from any thread ------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def set_faults(self, faults: FaultProfile | None) -> None:
        """Arm (or, with None or rate 0, disarm) fault injection on ``/v1`` requests."""
        check_faults(faults, FaultProfile)
        self._call(self._service.faults.set, faults)

    def stats(self) -> dict[str, Any]:
        """The same JSON as ``GET /_emulator/stats``."""
        return self._call(self._service.stats)

    def add_tenant(self, api_key: str | None = None) -> str:
        """Create another tenant and return its API key (runs are isolated per key)."""
        check_emulator_key(api_key)
        return self._call(self._service.add_tenant, api_key)

    def add_principal(
        self,
        principal: str,
        groups: Iterable[str] = (),
        admin: bool = False,
        tenant_key: str | None = None,
    ) -> str:
        """Another API key of a tenant (by default this emulator's own), acting as ``principal``.

        ``principal`` is an email-like id; a run it creates is its own, and it reads and manages
        the runs whose permission lists name it or one of its ``groups``. An ``admin`` sees and
        manages every run of the tenant, as the emulator's default key does.
        """
        return self._call(self._service.add_principal, principal, groups, admin, tenant_key)

    def reset(self) -> None:
        """Drop runs, webhooks, idempotency records, stats and faults; keep the tenants.

        Requests still being answered (held by a ``delay`` fault, say) are dropped too: they do
        nothing after the reset, and their clients see the connection closed without an answer
        (a client that retries, as the SDK's do, sends the request again, into the reset state).
        """
        self._call(self._service.reset)

    def advance(self, seconds: float) -> None:
        """Skip ``seconds`` of run time: runs progress at once, timestamps stay wall-clock time.

        A step that would take run time past about 272 years is refused with a ValueError.
        """
        finite_seconds(seconds, "seconds")
        self._call(self._service.advance, seconds)

    def set_rate_limit(self, rate_limit: float | None, burst: int | None = None) -> None:
        """Limit each key to ``rate_limit`` requests/s (token bucket; None turns it off).

        Every key's bucket starts full under the new limit: ``burst`` requests at once.
        """
        check_rate_limit(rate_limit, burst, "burst")
        self._call(self._service.set_rate_limit, rate_limit, burst)


# How long (real seconds) a stop waits for the tasks it cancels on the emulator's own loop.
_CANCEL_WAIT = 1.0


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """End the tasks still pending on the emulator's own loop before it closes, as
    ``asyncio.run`` does: a task left pending would be destroyed, never finished. One that
    ignores its cancellation is left after ``_CANCEL_WAIT``, not waited for forever."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        done, _ = loop.run_until_complete(asyncio.wait(tasks, timeout=_CANCEL_WAIT))
        for task in done:
            if not task.cancelled():
                task.exception()  # seen: it ended, whatever it raised
