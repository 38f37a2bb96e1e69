"""Secrets: the API key, kept where no repr, log or error report shows it.

Error trackers (Sentry, Rollbar) serialise the locals of every frame of a traceback and the
attributes of every chained exception, and ``json.dumps`` of an aiohttp error's request headers is
a common debugging step. So the key is never a ``str`` in the SDK's own objects (it is a
``Secret``), it enters a request's headers only in the connection pool's own header block and
the bytes of a request being sent, which no ``repr`` shows (see ``_pool`` and
``_connections``), and the tracebacks of chained transport errors are dropped
(``forget_frames``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MASK", "Secret", "forget_frames"]

MASK: Final = "***"
_MIN_REDACTED: Final = 8


class Secret:
    """A secret string that only ``reveal()`` gives back.

    Not a ``str``: ``repr``, ``str``, formatting, JSON encoders and reporters that walk attributes
    all see ``***``; equality compares the hidden values.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, data: bytes) -> bytes:
        """``data`` with the secret replaced by ``***`` wherever it occurs (servers echo it).

        A secret shorter than ``_MIN_REDACTED`` characters is left alone: replacing it would
        mangle ordinary words, and a real key is far longer.
        """
        secret = self._value.encode("utf-8", "replace")
        if len(secret) < _MIN_REDACTED or secret not in data:
            return data
        return data.replace(secret, MASK.encode())

    def __repr__(self) -> str:
        return f"'{MASK}'"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")


def forget_frames(exc: BaseException) -> BaseException:
    """Drop the tracebacks of ``exc`` and of the exceptions chained to it; return ``exc``.

    For transport errors about to be chained under an SDK error: their frames (aiohttp's, or the
    connection pool's) hold the request's headers and unsent bytes in their locals, which error
    trackers serialise.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += (current.__cause__, current.__context__)
    return exc
