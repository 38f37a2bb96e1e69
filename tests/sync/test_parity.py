"""lume_sync mirrors lume_async: same members, signatures and docstrings; pinned exports."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lume_async
import lume_sync

ROOT = Path(__file__).resolve().parents[2]

TWINS = {
    lume_async.AsyncLume: lume_sync.Lume,
    lume_async.AsyncRuns: lume_sync.Runs,
    lume_async.AsyncFlows: lume_sync.Flows,
    lume_async.AsyncRun: lume_sync.Run,
    lume_async.AsyncPaginator: lume_sync.Paginator,
    lume_async.AsyncWebhookEndpoints: lume_sync.WebhookEndpoints,
}
RENAMED = {
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
}
#: Constructors of handles are private: users get them from the client, never build them.
PRIVATE_CONSTRUCTORS = {
    lume_async.AsyncRuns,
    lume_async.AsyncFlows,
    lume_async.AsyncRun,
    lume_async.AsyncPaginator,
    lume_async.AsyncWebhookEndpoints,
}

ASYNC_EXPORTS = [
    "APIConnectionError", "APIError", "APITimeoutError", "AsyncFlows", "AsyncLume",
    "AsyncPaginator", "AsyncRun", "AsyncRuns", "AsyncWebhookEndpoints", "AuthenticationError",
    "BatchOutcome",
    "DuplicateRunError", "FieldError", "Flow", "FlowVersion", "InvalidRequestError", "LogEntry",
    "LumeError", "NotFoundError", "Page", "PermissionDeniedError", "PipelineMetadata",
    "ProcessResult", "RateLimitError", "RejectedRow", "ResponseTooLargeError",
    "ResponseValidationError",
    "ResultsMetadata", "RetryEvent", "RetryPolicy", "RunData", "RunError", "RunErrorInfo",
    "RunFailedError", "RunInfo", "RunMetadata", "RunNotFoundError", "RunRequest", "RunStatus",
    "RunTimeoutError", "ServerError", "StageError", "StageTimings", "SyncFacadeError",
    "TargetField", "TargetLocations", "Timeout", "TopError", "ValidationMetadata",
    "WebhookEndpoint", "WebhookEvent", "WebhookRunData", "WebhookVerificationError", "__version__",
]  # fmt: skip
SYNC_EXPORTS = [
    "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BatchOutcome",
    "DuplicateRunError", "FieldError", "Flow", "FlowVersion", "Flows", "InvalidRequestError",
    "LogEntry", "Lume", "LumeError", "NotFoundError", "Page", "Paginator",
    "PermissionDeniedError", "PipelineMetadata", "ProcessResult", "RateLimitError",
    "RejectedRow", "ResponseTooLargeError", "ResponseValidationError", "ResultsMetadata",
    "RetryEvent", "RetryPolicy",
    "Run", "RunData", "RunError", "RunErrorInfo", "RunFailedError", "RunInfo", "RunMetadata",
    "RunNotFoundError", "RunRequest", "RunStatus", "RunTimeoutError", "Runs", "ServerError",
    "StageError", "StageTimings", "SyncFacadeError", "TargetField", "TargetLocations", "Timeout",
    "TopError",
    "ValidationMetadata", "WebhookEndpoint", "WebhookEndpoints", "WebhookEvent",
    "WebhookRunData", "WebhookVerificationError", "__version__",
]  # fmt: skip


def public_members(cls: type) -> list[str]:
    """Methods and properties a user reaches: public names and the special methods."""
    names = []
    for name, value in vars(cls).items():
        if name == "__init__" and cls in PRIVATE_CONSTRUCTORS:
            continue
        special = name.startswith("__") and name.endswith("__") and callable(value)
        if special or (
            not name.startswith("_") and (callable(value) or isinstance(value, property))
        ):
            names.append(name)
    return names


def members() -> list[tuple[type, type, str]]:
    return [(a, s, name) for a, s in TWINS.items() for name in public_members(a)]


def unasync(annotation: Any) -> Any:
    if not isinstance(annotation, str):
        return annotation
    pattern = r"\bAsync(Lume|Runs|Flows|Run|Paginator|Iterator|WebhookEndpoints)\b"
    return re.sub(pattern, r"\1", annotation)


@pytest.mark.parametrize(
    ("async_cls", "sync_cls", "name"),
    members(),
    ids=[f"{a.__name__}.{n}" for a, _, n in members()],
)
def test_every_public_async_member_has_a_sync_twin(
    async_cls: type, sync_cls: type, name: str
) -> None:
    async_member = vars(async_cls)[name]
    sync_member = vars(sync_cls).get(RENAMED.get(name, name))

    assert sync_member is not None, f"{sync_cls.__name__} lacks {RENAMED.get(name, name)}"
    assert async_member.__doc__ == sync_member.__doc__
    if isinstance(async_member, property):
        assert isinstance(sync_member, property)
        async_member, sync_member = async_member.fget, sync_member.fget
    assert not inspect.iscoroutinefunction(sync_member)
    assert not inspect.isasyncgenfunction(sync_member)


@pytest.mark.parametrize(
    ("async_cls", "sync_cls", "name"),
    [m for m in members() if not isinstance(vars(m[0])[m[2]], property)],
    ids=[f"{a.__name__}.{n}" for a, _, n in members() if not isinstance(vars(a)[n], property)],
)
def test_sync_twins_take_the_same_parameters(async_cls: type, sync_cls: type, name: str) -> None:
    expected = inspect.signature(vars(async_cls)[name])
    actual = inspect.signature(vars(sync_cls)[RENAMED.get(name, name)])

    assert [
        (p.name, p.kind, p.default, unasync(p.annotation)) for p in expected.parameters.values()
    ] == [(p.name, p.kind, p.default, p.annotation) for p in actual.parameters.values()]
    assert unasync(expected.return_annotation) == actual.return_annotation


def test_the_client_has_the_same_resource_attributes() -> None:
    expected = {
        name: unasync(annotation)
        for name, annotation in lume_async.AsyncLume.__annotations__.items()
        if not name.startswith("_")
    }

    assert expected == {
        n: a for n, a in lume_sync.Lume.__annotations__.items() if not n.startswith("_")
    }


def test_sync_twins_have_no_extra_public_members() -> None:
    for async_cls, sync_cls in TWINS.items():
        expected = {RENAMED.get(name, name) for name in public_members(async_cls)}
        actual = set(public_members(sync_cls)) - (
            set() if sync_cls is lume_sync.Lume else {"__init__"}
        )

        assert expected == actual, sync_cls.__name__


def test_async_exports_are_pinned() -> None:
    assert lume_async.__all__ == ASYNC_EXPORTS


def test_sync_exports_are_pinned() -> None:
    assert lume_sync.__all__ == SYNC_EXPORTS


def test_sync_exports_are_the_twins_plus_every_other_async_export() -> None:
    shared = [name for name in lume_async.__all__ if not name.startswith("Async")]

    assert sorted(shared + [cls.__name__ for cls in TWINS.values()]) == lume_sync.__all__
    for name in shared:
        assert getattr(lume_async, name) is getattr(lume_sync, name), name


def test_the_generated_code_is_fresh() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sync.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stdout) == (0, "")
