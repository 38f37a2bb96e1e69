"""``LumeRunTrigger``: waits in the triggerer for one run, through the loop's shared client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from lume_async import (
    APIConnectionError,
    AsyncRun,
    LumeError,
    RateLimitError,
    RunTimeoutError,
    ServerError,
)

from ._outcome import event_of
from ._shared import SharedClient, shared_client
from ._validation import (
    check_bool,
    check_conn_id,
    check_poll_interval,
    check_run_id,
    check_timeout,
)

__all__ = ["LumeRunTrigger"]


class _OutOfTime(Exception):
    """The deadline passed while the service could not be asked about the run."""

    def __init__(self, error: LumeError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")


class LumeRunTrigger(BaseTrigger):
    """Fires one event when a Lume run is finished: ``{run_id, status, mapped_rows, ...}``.

    Every trigger of the same connection on the same event loop (the triggerer's) waits through
    one shared ``AsyncLume``, so all their runs are polled together, 100 per request; the
    client is closed when the last of them ends or is cancelled.

    ``timeout`` counts from when the trigger is made: its ``deadline`` (epoch seconds) is part of
    what it serializes, so a triggerer restart does not start the clock again. When time is up
    the event carries a ``message`` and the run goes on at the service. With
    ``cancel_on_kill``, a user's kill of the deferred task (mark failed, clear) cancels the run.
    """

    def __init__(
        self,
        run_id: str,
        lume_conn_id: str = "lume_default",
        poll_interval: float = 5.0,
        timeout: float | None = 3600,
        *,
        deadline: float | None = None,
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.run_id = check_run_id(run_id)
        self.lume_conn_id = check_conn_id(lume_conn_id)
        self.poll_interval = check_poll_interval(poll_interval)
        self.timeout = check_timeout(timeout)
        if deadline is None and self.timeout is not None:
            deadline = time.time() + self.timeout
        self.deadline = check_timeout(deadline, "deadline")
        self.cancel_on_kill = check_bool(cancel_on_kill, "cancel_on_kill")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and arguments, to remake it in the triggerer."""
        return (
            "lume_airflow.LumeRunTrigger",
            {
                "run_id": self.run_id,
                "lume_conn_id": self.lume_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the run, then fire one event with its summary (or a ``message``)."""
        # The client is given back before the event is yielded: a consumer that never resumes
        # this generator (or closes it late) cannot keep it open.
        payload = await self.wait()
        yield TriggerEvent(payload)

    async def wait(self) -> dict[str, Any]:
        """Wait for the run through the shared client; the event payload."""
        try:
            async with shared_client(self.lume_conn_id) as shared:
                run = await self._first_look(shared)
                try:
                    if not run.is_terminal:
                        await run.wait(timeout=self._remaining(), poll_interval=self.poll_interval)
                except RunTimeoutError:
                    return {**event_of(run, message=self._timed_out(run)), "timed_out": True}
                except LumeError as exc:
                    return event_of(run, message=f"{type(exc).__name__}: {exc}")
        except _OutOfTime as exc:
            message = f"could not be looked at before the trigger's {self._limit()} ({exc})"
            return {**self._failed_wait(exc), "message": message, "timed_out": True}
        except Exception as exc:
            # No key, a refused key, a run that does not exist, a connection that is not defined
            # or is malformed: an event all the same, so the task fails with the reason instead
            # of the trigger failing with a traceback.
            return self._failed_wait(exc)
        return event_of(run)

    async def on_kill(self) -> None:
        """The user killed the deferred task: cancel the run if this trigger was told to."""
        if not self.cancel_on_kill:
            return
        async with shared_client(self.lume_conn_id) as shared:
            run = await shared.client.runs.cancel(self.run_id)
        self.log.info("Cancelled Lume run %s: it is now %s", run.id, run.status.value)

    async def _first_look(self, shared: SharedClient) -> AsyncRun:
        """The run, asked for again while the service is unreachable or failing (as the wait
        itself does), until the deadline: then ``_OutOfTime``, as a wait that timed out."""
        pause = self.poll_interval
        while True:
            try:
                return await shared.get(self.run_id)
            except (ServerError, RateLimitError, APIConnectionError) as exc:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    raise _OutOfTime(exc) from exc
                wait = pause if remaining is None else min(pause, remaining)
                self.log.warning("Lume run %s: %s; asking again in %.1f s", self.run_id, exc, wait)
                await asyncio.sleep(wait)
                pause = min(pause * 2, 60.0)

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.time())

    def _limit(self) -> str:
        return "deadline" if self.timeout is None else f"timeout of {self.timeout:g} s"

    def _timed_out(self, run: AsyncRun) -> str:
        return (
            f"still {run.status.value} after the trigger's {self._limit()}; "
            "the run goes on at the service"
        )

    def _failed_wait(self, exc: Exception) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": None,
            "mapped_rows": None,
            "rejected_rows": None,
            "target_locations": None,
            "errors": [],
            "message": f"{type(exc).__name__}: {exc}",
        }
