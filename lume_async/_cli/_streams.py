"""The ``lume`` command's standard streams as a shell may hand them over: closed, full or narrow.

A stream the shell closed (``<&-``, ``>&-``, ``2>&-``) leaves its descriptor free, and the first
connection the command opens would take it: the command would read from, or print into, a
socket. ``reserve`` puts ``/dev/null`` there first. ``settle`` writes out what standard output
still holds before the command's exit status is decided: a full disk is an error then, not a
failure left for the interpreter to report after the status is chosen. A reader that stops
reading (``lume runs list | head``) is not an error: what is left of the output goes nowhere
(``reader_left``), and the command ends as it would have.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
from typing import Any

import click

__all__ = ["note", "reader_left", "reserve", "settle", "speaks_utf8"]

_STREAMS = (("stdin", os.O_RDONLY, "r"), ("stdout", os.O_WRONLY, "w"), ("stderr", os.O_WRONLY, "w"))


def reserve() -> list[str]:
    """Open ``/dev/null`` on each of descriptors 0, 1 and 2 that is closed; the names of those
    streams (``stdout``...)."""
    closed = []
    for fd, (name, flags, mode) in enumerate(_STREAMS):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, flags)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            stream = open(fd, mode, encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)
            closed.append(name)
    return closed


def settle() -> OSError | None:
    """Flush standard output; the error if that failed (then drop what it held)."""
    stream = sys.stdout
    if stream is None:
        return None
    try:
        stream.flush()
    except OSError as exc:
        _drop(stream)
        return exc
    return None


def reader_left(exc: BaseException, stream: Any = None) -> bool:
    """Whether ``exc`` says the reader of what the command writes closed its end (a pipe to
    ``head``); if so, ``stream`` (standard output unless given) is dropped: nothing more is
    written to it, nor fails."""
    if not isinstance(exc, OSError) or exc.errno != errno.EPIPE:
        return False
    stream = sys.stdout if stream is None else stream
    if stream is not None:
        _drop(stream)
    return True


def note(text: str) -> None:
    """A line of progress on standard error; a reader that stopped reading it (``2>&1 | head``)
    does not stop the command: the line, and those after it, go nowhere."""
    try:
        click.echo(text, err=True)
    except OSError as exc:
        if not reader_left(exc, sys.stderr):
            raise


def _drop(stream: Any) -> None:
    """Point ``stream`` at ``/dev/null``: what it still holds goes nowhere, without an error."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def speaks_utf8(stream: Any) -> bool:
    """Whether ``stream`` encodes text as UTF-8 (else JSON written to it is kept to ASCII)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False
