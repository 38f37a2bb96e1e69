"""``LumeRunOperator``: start a run once per task instance, then wait for it, deferrably or not."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import lume_sync
from lume_async import InvalidRequestError, NotFoundError, RunRequest, RunTimeoutError

from ._hook import LumeHook
from ._outcome import FAILED, check_outcome, event_of
from ._trigger import LumeRunTrigger
from ._validation import check_bool, check_conn_id, check_poll_interval, check_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

__all__ = ["LumeRunOperator", "idempotency_namespace"]


def idempotency_namespace(ti: RuntimeTaskInstanceProtocol, *, after: str | None = None) -> str:
    """The namespace of the create's key: the same for every try of one task instance.

    Derived from the DAG id, task id, DAG run id and map index (never the try number); the SDK
    derives the key from it and the request's whole body (``RunRequest.with_namespace``), so a
    retry replays the first try's answer (the service keeps keys for 24 h) and a changed request
    is a new run. ``after`` names an earlier try's run that ended FAILED, CRASHED or CANCELED,
    so the retry gets its own run instead of that one again. The ids may hold any text, so they
    are hashed into a namespace the service accepts.
    """
    scope = "\x1f".join([ti.dag_id, ti.task_id, ti.run_id, str(ti.map_index), after or ""])
    return "airflow-" + hashlib.sha256(scope.encode()).hexdigest()


class LumeRunOperator(BaseOperator):
    """Start a Lume run of ``flow_version`` on ``source_path`` (or ``source_data``) and wait.

    A retry of the task finds the run its first try started rather than making another (the
    create's idempotency key is derived from the task instance and the request, see
    ``idempotency_namespace``), unless that run ended FAILED, CRASHED or CANCELED: then the retry
    starts a new one. With ``deferrable=True`` the wait happens in the triggerer
    (``LumeRunTrigger``), otherwise in the worker through ``lume_sync``; ``wait=False`` returns
    as soon as the run is created.

    Returns (XCom) ``{run_id, status, mapped_rows, rejected_rows, target_locations}``. A run that
    ends FAILED, CRASHED or CANCELED fails the task with the run's errors; PARTIAL_FAILED
    succeeds unless ``fail_on_partial``. Killing the task cancels the run. Map it over batches
    with ``LumeRunOperator.partial(task_id=..., flow_version=...).expand(source_path=[...])``.

    Templated: ``source_path``, ``label`` (kept as ``run_label``: ``label`` is the task's own
    display name in Airflow), ``tags`` and ``run_metadata``.
    """

    template_fields: Sequence[str] = ("source_path", "run_label", "tags", "run_metadata")
    template_fields_renderers: ClassVar[dict[str, str]] = {"run_metadata": "json"}
    ui_color = "#e8f4f0"

    def __init__(
        self,
        *,
        flow_version: str,
        source_path: str | None = None,
        source_data: Sequence[Mapping[str, Any]] | None = None,
        label: str | None = None,
        tags: Sequence[str] = (),
        run_metadata: Mapping[str, Any] | None = None,
        force_rerun: bool = False,
        wait: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5,
        timeout: float | None = 3600,
        fail_on_partial: bool = False,
        lume_conn_id: str = LumeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(flow_version, str):
            raise TypeError(f"flow_version must be a str, not {type(flow_version).__name__}")
        self.flow_version = flow_version
        self.source_path = source_path
        self.source_data = source_data
        self.run_label = label  # ``label`` is Airflow's own (the task's display name)
        self.tags = tags
        self.run_metadata = run_metadata
        self.force_rerun = check_bool(force_rerun, "force_rerun")
        self.wait = check_bool(wait, "wait")
        self.deferrable = check_bool(deferrable, "deferrable")
        self.poll_interval = check_poll_interval(poll_interval)
        self.timeout = check_timeout(timeout)
        self.fail_on_partial = check_bool(fail_on_partial, "fail_on_partial")
        self.lume_conn_id = check_conn_id(lume_conn_id)
        self.lume_run_id: str | None = None  # the run this try started or found (on_kill)

    @cached_property
    def hook(self) -> LumeHook:
        """The hook of this task's ``lume_conn_id`` connection."""
        return LumeHook(self.lume_conn_id)

    def request(self) -> RunRequest:
        """The run this task asks for, with its templates rendered (bad values raise here)."""
        tags = self.tags
        if isinstance(tags, str):
            raise TypeError("tags must be a list of strings, not a single string")
        return RunRequest(
            self.flow_version,
            source_path=self.source_path,
            source_data=self.source_data,
            run_metadata=self.run_metadata,
            force_rerun=self.force_rerun,
            label=self.run_label,
            tags=tuple(tags or ()),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Start (or find) the run, then wait for it here or defer to the triggerer.

        Raises:
            AirflowFailException: The service refused the run (a repeat of a source that
                already succeeded, a bad field): no retry would be accepted either. Also a run
                that ended PARTIAL_FAILED with ``fail_on_partial``: a retry finds that same run.
            AirflowException: The run ended FAILED, CRASHED or CANCELED, the wait timed out, or
                an earlier try's create of the same run is still being handled (a retry finds
                that run).
            LumeError: The service could not be reached, or failed, once retries were spent.
        """
        try:
            request = self.request()
        except (TypeError, ValueError) as exc:
            # The request itself is malformed: every try would build the same one.
            raise AirflowFailException(f"Bad Lume request: {exc}") from exc
        ti = context["ti"]
        with self.hook.get_client() as lume:
            try:
                run = self._start(lume, request, ti)
            except InvalidRequestError as exc:
                if exc.status_code == 409 and exc.code == "idempotency_in_flight":
                    # An earlier try's create of this key is still being handled: not a
                    # refusal, and a later try gets its answer (the run) replayed.
                    raise AirflowException(
                        f"The create of an earlier try is still being handled: {exc}"
                    ) from exc
                # The service refused the request itself (a repeat of a run that already
                # succeeded, a bad field): another try would be refused the same way.
                raise AirflowFailException(f"Lume refused the run: {exc}") from exc
            except NotFoundError as exc:  # an unknown flow version: refused the same way
                raise AirflowFailException(f"Lume refused the run: {exc}") from exc
            # A run found in flight (``reused``) was started by someone else: never cancel it.
            self.lume_run_id = None if run.reused else run.id
            ti.xcom_push(key="run_id", value=run.id)
            self.log.info(
                "Lume run %s is %s%s",
                run.id,
                run.status.value,
                " (the source was already in flight: that run is used)" if run.reused else "",
            )
            if not self.wait or run.is_terminal:
                return check_outcome(event_of(run), fail_on_partial=self.fail_on_partial)
            if self.deferrable:
                self.defer(
                    trigger=LumeRunTrigger(
                        run.id,
                        self.lume_conn_id,
                        self.poll_interval,
                        self.timeout,
                        cancel_on_kill=not run.reused,
                    ),
                    method_name="execute_complete",
                )
            try:
                run.wait(timeout=self.timeout, poll_interval=self.poll_interval)
            except RunTimeoutError as exc:
                raise AirflowException(
                    f"Lume run {run.id} is still {run.status.value} after {self.timeout:g} s; "
                    "the run goes on at the service"
                ) from exc
        self.log.info("Lume run %s ended %s", run.id, run.status.value)
        return check_outcome(event_of(run), fail_on_partial=self.fail_on_partial)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: the XCom summary, or the task fails with the run's errors."""
        self.log.info("Lume run %s ended %s", event.get("run_id"), event.get("status"))
        return check_outcome(event, fail_on_partial=self.fail_on_partial)

    def on_kill(self) -> None:
        """The task is being killed: cancel the run it started."""
        if self.lume_run_id is None:
            return
        with self.hook.get_client() as lume:
            run = lume.runs.cancel(self.lume_run_id)
        self.log.info("Cancelled Lume run %s: it is now %s", run.id, run.status.value)

    def _start(
        self, lume: lume_sync.Lume, request: RunRequest, ti: RuntimeTaskInstanceProtocol
    ) -> lume_sync.Run:
        """Create the run, or find the one an earlier try of this task instance created.

        Try ``n`` walks at most ``n`` links of the chain of runs earlier tries made, each link
        keyed after the failed run before it; the first link that is not FAILED, CRASHED or
        CANCELED (or a new run) is this try's run.
        """
        tries = max(1, ti.try_number)
        after: str | None = None
        for step in range(tries):
            run = lume.runs.create(
                request.flow_version,
                request.source_path,
                source_data=request.source_data,
                run_metadata=request.run_metadata,
                force_rerun=request.force_rerun,
                label=request.label,
                tags=request.tags,
                idempotency_namespace=idempotency_namespace(ti, after=after),
            )
            if tries == 1:
                return run  # a first try: nothing earlier to find
            run.refresh()  # a replayed create answers with the run as it was made
            if run.status not in FAILED or step == tries - 1:
                return run
            self.log.info(
                "Lume run %s of an earlier try ended %s: starting another",
                run.id,
                run.status.value,
            )
            after = run.id
        raise AssertionError("unreachable")
