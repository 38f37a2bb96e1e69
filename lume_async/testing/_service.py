"""The emulated service: tenants and runs, the completion scheduler, webhooks, limits and stats.

Everything here runs on the event loop that serves HTTP; the ``Emulator`` hops onto that loop for
its plain methods, so no lock is needed. One scheduler task keeps a heap of completion times and
notices terminal transitions without anyone reading the run (runs own no tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import secrets
from typing import Any

import orjson

from .._clock import SYSTEM_CLOCK, Clock, SystemClock
from ._access import Grants, Principal, denied, names_permissions, new_principal
from ._errors import ApiError
from ._faults import FaultInjector, FaultProfile
from ._flows import FLOW_VERSIONS
from ._inflight import InFlight
from ._lifecycle import Plan, RunClock
from ._run import Run
from ._state import Tenant, UlidFactory, Webhook
from ._synthetic import INLINE_SECONDS, InlineSource, Source, parse_source_path
from ._webhooks import Deliverer

__all__ = ["EVENT_TYPES", "Service"]

_WROTE_DATA = ("SUCCEEDED", "PARTIAL_FAILED")
EVENT_TYPES = ("run.succeeded", "run.partial_failed", "run.failed", "run.crashed", "run.canceled")


def new_api_key() -> str:
    return "lume_test_" + secrets.token_urlsafe(24)


class Service:
    """All mutable emulator state, plus the two background activities (scheduler, deliveries)."""

    def __init__(
        self,
        *,
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
        if not isinstance(clock, Clock):
            raise TypeError("clock must have monotonic(), time() and async sleep()")
        self.clock = RunClock(clock, time_scale)
        self.seed = seed
        self._rng = random.Random(seed)
        self.ulids = UlidFactory(self._rng)
        self.api_key = api_key or new_api_key()
        self.keys: dict[str, Principal] = {}
        self.tenants: dict[str, Tenant] = {}
        self._add_key(self.api_key)
        self.faults = FaultInjector()
        self.faults.set(faults)
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        self._buckets: dict[str, list[float]] = {}
        self.in_flight = InFlight()
        self._heap: list[tuple[float, int, Run]] = []
        self._seq = 0
        self._last_created_us = 0
        self._wake: asyncio.Event | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self.deliverer = Deliverer(
            retry_base=webhook_retry_base,
            max_attempts=webhook_max_attempts,
            real_delay=self.clock.real_delay,
            clock=clock,
            on_attempt=self._count_delivery,
        )
        self._reset_stats()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        await self.deliverer.start()
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule())

    async def stop(self) -> None:
        await self.in_flight.drop()
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
            self._scheduler = None
        await self.deliverer.stop()

    # -- tenants, limits, stats ------------------------------------------------------------------

    def _add_key(self, key: str) -> str:
        """A new tenant whose first key, ``key``, is its admin."""
        tenant = Tenant(f"tenant_{len(self.tenants) + 1}")
        name = f"admin@{tenant.name.replace('_', '-')}.example"
        self.keys[key] = Principal(name, tenant, admin=True)
        self.tenants[tenant.name] = tenant
        return key

    def add_tenant(self, api_key: str | None = None) -> str:
        if api_key is not None and api_key in self.keys:
            raise ValueError(
                "api_key is already in use by this emulator; pass another key, or None to "
                "have one made"
            )
        return self._add_key(api_key or new_api_key())

    def add_principal(
        self,
        principal: object,
        groups: object = (),
        admin: object = False,
        tenant_key: object = None,
    ) -> str:
        """A new API key acting as ``principal`` in the tenant of ``tenant_key`` (default: the
        emulator's own key). TypeError or ValueError, naming the argument, when malformed."""
        if tenant_key is None:
            tenant_key = self.api_key
        if not isinstance(tenant_key, str):
            raise TypeError(f"tenant_key must be a str or None, not {type(tenant_key).__name__}")
        owner = self.keys.get(tenant_key)
        if owner is None:
            raise ValueError("tenant_key must be an API key of this emulator")
        key = new_api_key()
        self.keys[key] = new_principal(owner.tenant, principal, groups, admin)
        return key

    def _reset_stats(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.runs_created = 0
        self.duplicates_refused = 0
        self.replays = 0
        self.deliveries = {"attempted": 0, "succeeded": 0}

    def _count_delivery(self, ok: bool) -> None:
        self.deliveries["attempted"] += 1
        if ok:
            self.deliveries["succeeded"] += 1

    def count(self, route: str, status: str) -> None:
        by_status = self.requests.get(route)
        if by_status is None:
            by_status = self.requests[route] = {}
        by_status[status] = by_status.get(status, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": {route: dict(v) for route, v in self.requests.items()},
            "runs_created": self.runs_created,
            "duplicate_creates_refused": self.duplicates_refused,
            "idempotent_replays": self.replays,
            "webhook_deliveries": dict(self.deliveries),
        }

    def reset(self) -> None:
        """Drop runs, webhooks, idempotency records, stats, faults and the requests still being
        answered (their connections close without an answer); keep the tenants' keys."""
        self.in_flight.cancel()
        for tenant in self.tenants.values():
            tenant.clear()
        self._heap.clear()
        self._buckets.clear()
        self.deliverer.cancel_all()
        self.faults.set(None)
        self.clock.compact()
        self._reset_stats()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        if self._wake is not None:
            self._wake.set()

    def set_rate_limit(self, rate_limit: float | None, burst: int | None) -> None:
        """A new limit (None: none), whose buckets start full."""
        self.rate_limit, self.rate_burst = rate_limit, burst
        self._buckets.clear()

    def rate_check(self, key: str) -> float | None:
        """Take a token from ``key``'s bucket; the seconds to wait when there is none."""
        rate = self.rate_limit
        if not rate:
            return None
        burst = float(self.rate_burst or max(1, int(rate)))
        now = self.clock.clock.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return (1.0 - tokens) / rate

    # -- runs ------------------------------------------------------------------------------------

    def get_run(self, who: Principal, run_id: str) -> Run:
        """A run ``who`` may read; any other is not found, whether it exists or not."""
        run = who.tenant.runs.get(run_id)
        if run is None or not (who.admin or run.grants.can_read(who)):
            raise ApiError(404, "not_found", f"Run {run_id} not found")
        return run

    def managed_run(self, who: Principal, run_id: str, operation: str) -> Run:
        """A run ``who`` may manage; 403 for one it may only read, 404 for one it may not."""
        run = self.get_run(who, run_id)
        if not run.grants.can_manage(who):
            raise denied(run_id, who, operation)
        return run

    def create_run(self, who: Principal, body: dict[str, Any]) -> tuple[int, Run]:
        """A new run (201), or the run of the same pair still in flight (200).

        A (flow_version, source_path) pair that SUCCEEDED or PARTIAL_FAILED wrote to the target,
        so repeating it needs ``force_rerun``; pairs whose runs all wrote nothing may run again.
        These rules are the tenant's, but an answer names an existing run only to a principal
        who may read it: anyone else gets a 409 that does not say which run it is.
        """
        tenant = who.tenant
        flow_version = body["flow_version"]
        flow = FLOW_VERSIONS.get(flow_version)
        if flow is None:
            raise ApiError(404, "not_found", f"Flow version {flow_version} not found")
        t = self.clock.now()
        path = body.get("source_path")
        source: Source
        if path is not None:
            prior = tenant.by_pair.get((flow_version, path), ())
            for run in reversed(prior):
                if not run.is_terminal(t):
                    if run.grants.can_read(who):
                        return 200, run
                    self.duplicates_refused += 1
                    raise ApiError(
                        409,
                        "duplicate_source_path",
                        f"{flow_version} is already processing {path} in a run you may not "
                        "read; ask its owner, or wait until it ends",
                    )
            if not body.get("force_rerun"):
                # The newest run that wrote the pair's data and that the caller may read, else
                # the newest that wrote it (a 409 naming no run).
                named: Run | None = None
                for run in reversed(prior):
                    if run.status(t) in _WROTE_DATA:
                        named = named or run
                        if run.grants.can_read(who):
                            named = run
                            break
                if named is not None:
                    self.duplicates_refused += 1
                    raise _duplicate(who, named, flow_version, path, named.status(t))
            source, duration, forced = parse_source_path(flow, path, self.seed)
        else:
            source, duration, forced = InlineSource(flow, body["source_data"]), INLINE_SECONDS, None
        failure: str | None
        if forced == "FAILED":
            outcome, failure = "FAILED", "transform_failed"
        elif forced == "CRASHED":
            outcome, failure = "CRASHED", "worker_crashed"
        elif source.input_rows and not source.mapped_rows:
            outcome, failure = "FAILED", "all_rows_rejected"
        else:
            outcome = "PARTIAL_FAILED" if source.rejected_rows else "SUCCEEDED"
            failure = None
        # Never before the last run's, even if the wall clock stepped back: listings are keyset
        # on (created_at, id), and ids only ascend.
        created_us = max(int(self.clock.wall(t) * 1_000_000), self._last_created_us)
        self._last_created_us = created_us
        run = Run(
            id="run_" + self.ulids.new(created_us // 1000),
            tenant=tenant.name,
            flow_version=flow_version,
            source_path=path,
            label=body.get("label"),
            tags=list(body.get("tags") or ()),
            run_metadata=body.get("run_metadata"),
            plan=Plan(t, duration, outcome),
            source=source,
            tests_per_row=flow.fields_checked,
            created_us=created_us,
            failure=failure,
            grants=Grants(who.name, body),
        )
        tenant.runs[run.id] = run
        tenant.order.append(run.id)
        if path is not None:
            tenant.by_pair.setdefault((flow_version, path), []).append(run)
        self.runs_created += 1
        self._schedule_completion(run)
        return 201, run

    def cancel_run(self, who: Principal, run_id: str) -> Run:
        """Cancel a run in flight; a CANCELED run answers as it is, any other ended run is 409."""
        run = self.managed_run(who, run_id, "cancel")
        t = self.clock.now()
        if not run.is_terminal(t):
            run.change(self.clock, t, self.clock.wall_us(t))
            run.canceled = t
            run.invalidate()
            self._notify(run, t)
            return run
        status = run.status(t)
        if status == "CANCELED":
            return run
        raise ApiError(
            409,
            "run_already_finished",
            f"Run {run.id} already ended {status}; nothing was canceled",
            extra={"status": status},
        )

    def patch_run(self, who: Principal, run_id: str, body: dict[str, Any]) -> Run:
        operation = "update_permissions" if names_permissions(body) else "update"
        run = self.managed_run(who, run_id, operation)
        run.grants.change(body)
        if "label" in body:
            run.label = body["label"]
        if "tags" in body:
            run.tags = list(body["tags"] or ())
        run.change(self.clock, self.clock.now(), int(self.clock.clock.time() * 1_000_000))
        return run

    # -- completion scheduler and webhooks ---------------------------------------------------------

    def _schedule_completion(self, run: Run) -> None:
        self._seq += 1
        entry = (run.plan.end, self._seq, run)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry and self._wake is not None:
            self._wake.set()

    async def _schedule(self) -> None:
        wake = self._wake
        assert wake is not None
        heap = self._heap
        clock = self.clock.clock
        system = isinstance(clock, SystemClock)
        loop = asyncio.get_running_loop()
        while True:
            t = self.clock.now()
            while heap and heap[0][0] <= t:
                _, _, run = heapq.heappop(heap)
                self._notify(run, t)
            wake.clear()
            if not heap:
                await wake.wait()
                continue
            # Until the next completion, or until woken (a sooner run, advance()).
            delay = self.clock.real_delay(heap[0][0] - t)
            if system:  # the common case, without a task per wait: completions can be many
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
                continue
            sleeper = loop.create_task(clock.sleep(delay))
            waiter = loop.create_task(wake.wait())
            try:
                await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waiter.cancel()
                await asyncio.gather(sleeper, waiter, return_exceptions=True)

    def _notify(self, run: Run, t: float) -> None:
        """Send the terminal event of ``run`` to its tenant's webhooks, once."""
        tenant = self.tenants[run.tenant]
        if run.notified or not run.is_terminal(t) or tenant.runs.get(run.id) is not run:
            return
        run.notified = True
        status = run.status(t)
        event_type = "run." + status.lower()
        grants = run.grants
        hooks = [
            h
            for h in tenant.webhooks.values()
            if event_type in h.events and grants.can_read(h.owner)
        ]
        if not hooks:
            return
        event_id = "evt_" + self.ulids.new(self.clock.wall_ms())
        body = orjson.dumps(
            {
                "id": event_id,
                "type": event_type,
                "created_at": self.clock.iso(run.finished_at()),
                "data": {
                    "run_id": run.id,
                    "status": status,
                    "flow_version": run.flow_version,
                    "source_path": run.source_path,
                    "run_metadata": run.run_metadata,
                },
            }
        )
        for hook in hooks:
            self.deliverer.submit(hook.url, hook.secret, event_id, body)

    def add_webhook(self, who: Principal, url: str, events: list[str], secret: str) -> Webhook:
        """A webhook of ``who``: it hears of the runs ``who`` may read when they end."""
        hook = Webhook("wh_" + self.ulids.new(self.clock.wall_ms()), url, events, secret, who)
        who.tenant.webhooks[hook.id] = hook
        return hook


def _duplicate(who: Principal, run: Run, flow_version: str, path: str, status: str) -> ApiError:
    """409 for a pair already processed; the run is named only to those who may read it."""
    if run.grants.can_read(who):
        return ApiError(
            409,
            "duplicate_source_path",
            f"{flow_version} already processed {path} (run {run.id}, {status}); "
            "pass force_rerun to run it again",
            extra={"existing_run_id": run.id},
        )
    return ApiError(
        409,
        "duplicate_source_path",
        f"{flow_version} already processed {path} in a run you may not read; "
        "pass force_rerun to run it again",
    )
