"""Typed, immutable views of what the Lume API sends and receives.

Every model is a frozen ``attrs`` class: values are safe to share between tasks and threads, and
``attrs.evolve`` gives a changed copy. They are built from the wire by the package's private
converter, which ignores fields it does not know, so a newer server never breaks an older client.
The run metadata tree is fully optional because the service fills it in while a run progresses.
"""

from __future__ import annotations

from .._status import RunStatus
from ._containers import BatchOutcome, Page
from ._flows import Flow, FlowVersion, TargetField
from ._metadata import (
    PipelineMetadata,
    ResultsMetadata,
    RunInfo,
    RunMetadata,
    StageError,
    StageTimings,
    TargetLocations,
    TopError,
    ValidationMetadata,
)
from ._outputs import FieldError, LogEntry, RejectedRow
from ._request import RunRequest
from ._run_data import RunData, RunErrorInfo
from ._webhooks import WebhookEndpoint, WebhookEvent, WebhookRunData

__all__ = [
    "BatchOutcome",
    "FieldError",
    "Flow",
    "FlowVersion",
    "LogEntry",
    "Page",
    "PipelineMetadata",
    "RejectedRow",
    "ResultsMetadata",
    "RunData",
    "RunErrorInfo",
    "RunInfo",
    "RunMetadata",
    "RunRequest",
    "RunStatus",
    "StageError",
    "StageTimings",
    "TargetField",
    "TargetLocations",
    "TopError",
    "ValidationMetadata",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookRunData",
]
