"""What a finished wait tells Airflow: the XCom summary of a run, and when the task must fail."""

from __future__ import annotations

from typing import Any, Protocol

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from lume_async import RunErrorInfo, RunMetadata, RunStatus

__all__ = ["FAILED", "RunLike", "check_outcome", "event_of", "summary_of"]

FAILED = frozenset({RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELED})


class RunLike(Protocol):
    """What is read from a run: ``lume_async.AsyncRun`` and ``lume_sync.Run`` both fit."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def metadata(self) -> RunMetadata | None: ...
    @property
    def error(self) -> RunErrorInfo | None: ...


def summary_of(run: RunLike) -> dict[str, Any]:
    """The task's XCom: ``{run_id, status, mapped_rows, rejected_rows, target_locations}``."""
    results = run.metadata.results if run.metadata is not None else None
    locations = results.target_locations if results is not None else None
    return {
        "run_id": run.id,
        "status": run.status.value,
        "mapped_rows": results.mapped_rows if results is not None else None,
        "rejected_rows": results.rejected_rows if results is not None else None,
        "target_locations": (
            None
            if locations is None
            else {"mapped": locations.mapped, "rejects": locations.rejects}
        ),
    }


def errors_of(run: RunLike) -> list[str]:
    """The run's errors, one line each: the run's own error, then each stage's."""
    lines = []
    if run.error is not None:
        lines.append(f"{run.error.code}: {run.error.message}")
    if run.metadata is not None:
        for error in run.metadata.errors:
            stage = f"[{error.stage}] " if error.stage else ""
            lines.append(f"{stage}{error.error_code or 'error'}: {error.message or ''}".rstrip())
    return lines


def event_of(run: RunLike, *, message: str | None = None) -> dict[str, Any]:
    """The trigger's event: the summary, the run's errors, and why waiting ended early, if it did.

    ``message`` is set when the wait ended without a final status (a timeout, a run that
    vanished, a refused key); the operator then fails with it.
    """
    return {**summary_of(run), "errors": errors_of(run), "message": message}


def check_outcome(event: dict[str, Any], *, fail_on_partial: bool) -> dict[str, Any]:
    """The XCom summary of a finished wait, or AirflowException if the task must fail.

    FAILED, CRASHED and CANCELED runs fail the task with the run's errors; PARTIAL_FAILED fails it
    only with ``fail_on_partial``, and without retries (``AirflowFailException``: the run wrote
    data, so a retry finds that same run); a wait that ended early fails it with its reason.
    """
    if not isinstance(event, dict) or not isinstance(event.get("run_id"), str):
        raise AirflowException(f"unexpected event from the Lume trigger: {event!r}")
    run_id = event["run_id"]
    if event.get("message"):
        raise AirflowException(f"Lume run {run_id}: {event['message']}")
    status = RunStatus(str(event.get("status")))
    errors = event.get("errors") or []
    detail = "; ".join(str(line) for line in errors)
    if status in FAILED:
        raise AirflowException(f"Lume run {run_id} ended {status.value}: {detail or 'no detail'}")
    if status is RunStatus.PARTIAL_FAILED and fail_on_partial:
        rejected = event.get("rejected_rows")
        raise AirflowFailException(
            f"Lume run {run_id} ended PARTIAL_FAILED with {rejected} rejected rows "
            f"(fail_on_partial=True){': ' + detail if detail else ''}"
        )
    keys = ("run_id", "status", "mapped_rows", "rejected_rows", "target_locations")
    return {key: event.get(key) for key in keys}
