"""How the ``lume`` command ends: its exit statuses, and errors as one line or as JSON on stderr.

The statuses are a contract with scripts (``lume runs create ... --wait && load_next``)::

    0    done; every run waited on SUCCEEDED (or PARTIAL_FAILED without --fail-on-partial)
    1    an error: the service refused, could not be reached, or a wait timed out
    2    usage: an unknown option, or an argument the SDK refuses before sending anything
    3    a run waited on ended FAILED, CRASHED or CANCELED
    4    a run waited on ended PARTIAL_FAILED, with --fail-on-partial
    130  interrupted (Ctrl-C); the runs go on at the service
    143  terminated (SIGTERM); the runs go on at the service

Across several runs the first that applies wins: a wait that timed out (1; the error's details
name how the finished runs ended), a run FAILED, CRASHED or CANCELED (3), one PARTIAL_FAILED (4).
A reader of standard output that stops reading (``lume ... | head``) changes none of them.
"""

from __future__ import annotations

import contextlib
import enum
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import click
import orjson

from .._exceptions import APIError, DuplicateRunError, LumeError
from .._run import AsyncRun
from .._status import RunStatus
from ._escape import visible, visible_json

__all__ = [
    "EXIT_STATUSES",
    "CommandError",
    "ExitStatus",
    "error_details",
    "interrupted",
    "one_line_warnings",
    "report",
    "runs_outcome",
    "speak_cli",
    "warn",
]


class ExitStatus(enum.IntEnum):
    """The ``lume`` command's exit statuses (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    RUN_FAILED = 3
    RUN_PARTIAL = 4
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_STATUSES = """\b
Exit statuses:
  0    done; every run waited on SUCCEEDED (or PARTIAL_FAILED
       without --fail-on-partial)
  1    an error: refused, unreachable, or a wait that timed out
  2    usage: a bad option or argument (nothing was sent)
  3    a run waited on ended FAILED, CRASHED or CANCELED
  4    a run waited on ended PARTIAL_FAILED (--fail-on-partial)
  130  interrupted: the runs go on at the service
  143  terminated (SIGTERM): the runs go on at the service"""


class CommandError(click.ClickException):
    """An error the command reports itself: a message, an exit status, details for ``--json``."""

    def __init__(
        self,
        message: str,
        *,
        status: ExitStatus = ExitStatus.ERROR,
        kind: str = "error",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = int(status)  # type: ignore[misc]  # click reads it from the instance
        self.kind = kind
        self.details = dict(details or {})


def error_details(exc: BaseException) -> dict[str, Any]:
    """What ``--json`` says about an exception: its type, message and the fields scripts use."""
    if isinstance(exc, CommandError):
        return {"type": exc.kind, "message": exc.format_message(), **exc.details}
    if isinstance(exc, click.ClickException):
        return {"type": "usage" if exc.exit_code == 2 else "error", "message": _one_line(exc)}
    found: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, APIError):
        found.update(
            status_code=exc.status_code,
            code=exc.code,
            message=exc.message,
            request_id=exc.request_id,
            error_id=exc.error_id,
        )
    if isinstance(exc, DuplicateRunError):
        found["existing_run_id"] = exc.existing_run_id
    request_id = getattr(exc, "request_id", None)
    if request_id is not None and isinstance(exc, LumeError):
        found["request_id"] = request_id
    return found


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, click.UsageError):
        text = exc.format_message()
        if exc.ctx is not None:
            text += f" (see: {exc.ctx.command_path} --help)"
        return text
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    return str(exc) or type(exc).__name__


def report(exc: BaseException, *, as_json: bool) -> None:
    """One ``error: ...`` line on stderr, or ``{"error": {...}}`` with ``--json``."""
    if as_json:
        body = {"error": {**error_details(exc), "exit_status": exit_status_of(exc)}}
        click.echo(visible_json(orjson.dumps(body, default=str).decode(), err=True), err=True)
    else:
        click.echo(f"error: {visible(' '.join(_one_line(exc).split()))}", err=True)


def exit_status_of(exc: BaseException) -> int:
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    if isinstance(exc, ValueError | TypeError) and not isinstance(exc, UnicodeEncodeError):
        return ExitStatus.USAGE
    return ExitStatus.ERROR


def interrupted(runs: Iterable[AsyncRun], *, hint: str | None = None) -> CommandError:
    """Ctrl-C: the runs not yet finished go on at the service; say how to stop them."""
    going = [run.id for run in runs if not run.is_terminal]
    details: dict[str, Any] = {"running": going}
    message = "interrupted"
    if going:
        what = f"run {going[0]} goes" if len(going) == 1 else f"{len(going)} runs go"
        command = "lume runs cancel " + " ".join(going)
        details["cancel_command"] = command
        them = "it" if len(going) == 1 else "them"
        message += f"; {what} on at the service. To stop {them}: {command}"
    if hint is not None:
        message += f"; {hint}"
    return CommandError(message, status=ExitStatus.INTERRUPTED, kind="interrupted", details=details)


def timed_out(exc: BaseException, runs: Iterable[AsyncRun]) -> CommandError:
    """A wait that timed out: the runs not yet finished go on at the service; name them, and
    say how to stop them, as for Ctrl-C. How the others ended is in the details: exit status 1
    says only that the wait ran out, whichever of them failed."""
    runs = list({run.id: run for run in runs}.values())  # a run named twice counts once
    going = [run.id for run in runs if not run.is_terminal]
    finished = {run.id: run.status.value for run in runs if run.is_terminal}
    details: dict[str, Any] = {"running": going, "finished": finished}
    message = str(exc)
    if going:
        command = "lume runs cancel " + " ".join(going)
        details["cancel_command"] = command
        message += f"; still running at the service: {' '.join(going)}. To stop: {command}"
    return CommandError(message, kind=type(exc).__name__, details=details)


def runs_outcome(runs: Iterable[AsyncRun], *, fail_on_partial: bool) -> CommandError | None:
    """The error that ends a wait whose runs did not all succeed, or None when they did."""
    runs = list({run.id: run for run in runs}.values())  # a run named twice counts once
    failed = [run for run in runs if run.status.is_failure]
    partial = [run for run in runs if run.status is RunStatus.PARTIAL_FAILED]
    if failed:
        ended, status = failed, ExitStatus.RUN_FAILED
    elif partial and fail_on_partial:
        ended, status = partial, ExitStatus.RUN_PARTIAL
    else:
        return None
    shown = ", ".join(f"{run.id} {run.status.value}" for run in ended[:5])
    more = f" and {len(ended) - 5} more" if len(ended) > 5 else ""
    what = "run" if len(ended) == 1 else "runs"
    return CommandError(
        f"{len(ended)} {what} did not succeed: {shown}{more}",
        status=status,
        kind="run_failed" if status is ExitStatus.RUN_FAILED else "run_partial",
        details={"runs": {run.id: run.status.value for run in ended}},
    )


def speak_cli(message: str, names: Mapping[str, str]) -> str:
    """An SDK message with its argument names (``force_rerun``) as the command spells them."""
    if not names:
        return message
    words = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])({words})(?:\[(\d+)\])?(?!\w)")

    def spell(match: re.Match[str]) -> str:
        index = match.group(2)  # tags[2]: the third --tag given
        return names[match.group(1)] + (f" #{int(index) + 1}" if index is not None else "")

    return pattern.sub(spell, message)


def warn(
    message: str, *, as_json: bool, kind: str, details: Mapping[str, Any] | None = None
) -> None:
    """One ``warning: ...`` line on stderr, or ``{"warning": {...}}`` with ``--json``; what came
    from a server in ``message`` spelled out, never acted on by the terminal."""
    text = " ".join(message.split())
    if as_json:
        body = {"warning": {"type": kind, "message": text, **(details or {})}}
        click.echo(visible_json(orjson.dumps(body).decode(), err=True), err=True)
    else:
        click.echo(f"warning: {visible(text)}", err=True)


@contextlib.contextmanager
def one_line_warnings(as_json: Callable[[], bool]) -> Iterator[None]:
    """Python warnings (a misspelt ``LUME_LOG``...) as one ``warning: ...`` line each on
    stderr, or ``{"warning": {...}}`` with ``--json``; not the interpreter's two lines of
    source location."""

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        warn(str(message), as_json=as_json(), kind=category.__name__)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
