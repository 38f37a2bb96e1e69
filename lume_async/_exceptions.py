"""The one error tree shared by ``lume_async`` and ``lume_sync``.

::

    LumeError
     ├─ APIError                      status_code, code, message, error_id, request_id, retry_after
     │   ├─ AuthenticationError       401
     │   ├─ PermissionDeniedError     403 (operation)
     │   ├─ NotFoundError             404   └─ RunNotFoundError
     │   ├─ InvalidRequestError       400/409/422   └─ DuplicateRunError (existing_run_id)
     │   ├─ RateLimitError            429 (retry_after)
     │   ├─ ServerError               5xx
     │   └─ ResponseTooLargeError     the answer was over max_response_bytes
     ├─ APIConnectionError            └─ APITimeoutError (also a TimeoutError)
     ├─ ResponseValidationError       the server's answer did not match the schema
     ├─ RunError                      ├─ RunFailedError (run, rejects)
     │                                └─ RunTimeoutError (also a TimeoutError)
     ├─ WebhookVerificationError
     └─ SyncFacadeError               misuse of lume_sync

Transport, JSON and cattrs exceptions never escape unwrapped: they are chained as ``__cause__``.
No message built here ever contains an API key. Messages are cut to ``MAX_MESSAGE`` characters,
whatever the server sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._run import AsyncRun
    from .models import RejectedRow

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "DuplicateRunError",
    "InvalidRequestError",
    "LumeError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "RunError",
    "RunFailedError",
    "RunNotFoundError",
    "RunTimeoutError",
    "ServerError",
    "SyncFacadeError",
    "WebhookVerificationError",
]


MAX_MESSAGE: Final = 2000
"""The longest message an error carries: a server can put megabytes in ``detail``."""
_MAX_ID: Final = 200


def cut(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text``, or at most ``limit`` characters: its start and how many more there were."""
    if len(text) <= limit:
        return text
    # The note's length depends on the count it states; one for the whole text is no shorter.
    keep = max(0, limit - len(f"... ({len(text)} more characters)"))
    note = f"... ({len(text) - keep} more characters)"
    return text[:limit] if len(note) > limit else text[:keep] + note


class LumeError(Exception):
    """The root of every error this SDK raises on purpose."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            args = (cut(args[0]),)
        super().__init__(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled and copied as its args and attributes, rebuilt without ``__init__``: the
        # subclasses' keyword-only arguments (status_code, run...) are not in ``args``.
        return (_rebuild, (type(self), self.args), self._state())

    def __copy__(self) -> LumeError:
        # A shallow copy shares the attributes as they are (a run's live handle included).
        error = _rebuild(type(self), self.args)
        error.__dict__.update(self.__dict__)
        return error

    def _state(self) -> dict[str, Any]:
        """The attributes to pickle and deep-copy."""
        return self.__dict__


def _rebuild(cls: type[LumeError], args: tuple[Any, ...]) -> LumeError:
    """An error of ``cls`` with ``args``, its attributes to be restored by unpickling or copy."""
    error = cls.__new__(cls, *args)
    # ``OSError.__new__`` (behind the TimeoutError ones) leaves ``args`` to an ``__init__``
    # that is not called here: set them, or the message is lost.
    error.args = args
    return error


def _detached(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with a run handle in ``run`` (an ``AsyncRun`` or a sync ``Run``, which both
    give their ``RunData`` snapshot as ``data``) replaced by that snapshot: a handle holds its
    client (and its API key), which never leaves the process."""
    data = getattr(state.get("run"), "data", None)
    return state if data is None else {**state, "run": data}


class APIError(LumeError):
    """The service answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        error_id: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        message = cut(message)
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.status_code = status_code
        # Shown in str(): as bounded as the message, whatever the server sent.
        self.code = None if code is None else cut(code, _MAX_ID)
        self.error_id = None if error_id is None else cut(error_id, _MAX_ID)
        self.request_id = None if request_id is None else cut(request_id, _MAX_ID)
        self.body = body

    def __str__(self) -> str:
        parts = [f"{self.status_code}"]
        if self.code:
            parts.append(self.code)
        text = f"[{' '.join(parts)}] {self.message}"
        ids = [
            f"{k}={v}"
            for k, v in (("request_id", self.request_id), ("error_id", self.error_id))
            if v
        ]
        return f"{text} ({', '.join(ids)})" if ids else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class AuthenticationError(APIError):
    """401: the API key is missing or not valid."""


class PermissionDeniedError(APIError):
    """403: the key is valid but may not do this.

    ``operation`` is what was refused: ``"update"``, ``"update_permissions"`` or ``"cancel"`` for
    a run the key may only monitor, ``"create"`` or ``"read"`` for a refused create or read
    (None when neither the service nor the SDK could tell).
    """

    def __init__(self, message: str, *, operation: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.operation = operation


class NotFoundError(APIError):
    """404: no such resource for this tenant."""


class RunNotFoundError(NotFoundError):
    """404 for a run id (another tenant's run reads as missing too)."""


class InvalidRequestError(APIError):
    """400, 409 or 422: the service refused the request as sent."""


class DuplicateRunError(InvalidRequestError):
    """409 ``duplicate_source_path``: this (flow_version, source_path) was already processed.

    A run of the pair SUCCEEDED or PARTIAL_FAILED, and both wrote rows to the target, so the
    service refuses to process the source again unless ``force_rerun=True`` (which risks
    duplicate data in the target). ``existing_run_id`` names that run (None when the caller may
    not read it). Pairs whose runs all wrote nothing (FAILED, CRASHED, CANCELED) run again.
    """

    def __init__(self, message: str, *, existing_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.existing_run_id = existing_run_id


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds."""


class ServerError(APIError):
    """5xx: the service failed; retried within the policy (but 501) before it reaches you."""


class ResponseTooLargeError(APIError):
    """The answer was larger than the client's ``max_response_bytes`` (counted decompressed).

    Reading stopped there: a server cannot make the client hold more than that, whatever its
    ``Content-Length`` or encoding. Not retried; ``limit`` is the bound that was hit.
    """

    def __init__(self, message: str, *, limit: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit


class APIConnectionError(LumeError):
    """No usable answer: connection refused or reset, a cut body, a TLS failure."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A request (or its retry deadline) ran out of time."""


class ResponseValidationError(LumeError):
    """The service's answer did not match the schema the SDK expects."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class RunError(LumeError):
    """A run-level outcome the caller asked to treat as an error."""


class RunFailedError(RunError):
    """``raise_for_status()`` or ``process()`` on a FAILED, CRASHED or CANCELED run.

    ``run`` is the run; ``rejects`` holds, when ``process()`` raised it for a run that rejected
    rows (a run whose every row failed validation ends FAILED), the rejected rows with their
    reasons. The message names the error, the row counts and the most frequent validation errors.
    """

    def __init__(
        self, message: str, *, run: AsyncRun | Any, rejects: list[RejectedRow] | None = None
    ) -> None:
        super().__init__(message)
        self.run = run
        self.rejects: list[RejectedRow] = list(rejects or ())

    def _state(self) -> dict[str, Any]:
        # Pickled and deep-copied with the run as its RunData snapshot (``run.id``,
        # ``run.status``, ``run.error``, ``run.metadata`` read the same).
        return _detached(self.__dict__)


class RunTimeoutError(RunError, TimeoutError):
    """``wait()`` ran past its timeout; the run itself goes on."""

    def __init__(self, message: str, *, run: AsyncRun | Any = None) -> None:
        super().__init__(message)
        self.run = run

    def _state(self) -> dict[str, Any]:
        # As RunFailedError: the run as its RunData snapshot.
        return _detached(self.__dict__)


class WebhookVerificationError(LumeError):
    """A webhook delivery was unsigned, tampered with, stale or replayed."""


class SyncFacadeError(LumeError):
    """``lume_sync`` was misused: a call from its own loop thread, or use after close."""
