"""What the client's own HTTP/1.1 connections hand back: answers, failures, request bytes."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Final, final
from urllib.parse import quote, urlencode

from multidict import CIMultiDictProxy

__all__ = [
    "Answer",
    "BadAnswer",
    "CertificateFailed",
    "ConnectFailed",
    "CutShort",
    "Disconnected",
    "HTTPFailure",
    "ReadTimeout",
    "TLSFailed",
    "Unsent",
    "encode_query",
    "quote_path",
]

_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE: Final = "/:@!$'()*,;-._~?"


class HTTPFailure(Exception):
    """The exchange failed below HTTP's status codes (the transport maps it onto LumeErrors)."""


class ConnectFailed(HTTPFailure):
    """No connection could be made."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        self.host, self.port = host, port
        self.strerror = error.strerror or str(error) or type(error).__name__
        super().__init__(f"cannot connect to {host}:{port} ({self.strerror})")


class TLSFailed(HTTPFailure):
    """The TLS handshake failed."""


class CertificateFailed(TLSFailed):
    """The server's certificate failed verification."""

    def __init__(self, error: ssl.SSLCertVerificationError) -> None:
        self.certificate_error = error
        super().__init__(str(error))


class Disconnected(HTTPFailure):
    """The server closed the connection before any byte of an answer."""


class CutShort(HTTPFailure):
    """The connection ended in the middle of an answer."""


class BadAnswer(HTTPFailure):
    """What the server sent is not a valid HTTP/1.1 answer."""


class ReadTimeout(HTTPFailure, TimeoutError):
    """The server sent nothing for longer than the read limit."""


@final
class Answer:
    """One answer: status, headers and the body as read (see ``over``)."""

    __slots__ = ("body", "headers", "length", "over", "status")

    def __init__(
        self,
        status: int,
        headers: CIMultiDictProxy[str],
        body: bytes,
        length: int | None,
        over: bool,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.length = length  # the Content-Length the server declared, if any
        self.over = over  # the body went past its limit and was cut off there


def encode_query(params: Mapping[str, str | int] | list[tuple[str, str | int]]) -> str:
    """``params`` as a query string (``%20`` for spaces, ``%2B`` for ``+``)."""
    items = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TypeError(f"query parameter {name!r}: expected str or int, got {value!r}")
    return urlencode(list(items), safe=_QUERY_SAFE, quote_via=quote)


def quote_path(path: str) -> str:
    """``path`` with what may not appear in a request target percent-encoded (``%`` is kept,
    so an already encoded path stays as it is)."""
    return quote(path, safe=_PATH_SAFE)


@final
class Unsent:
    """A request's bytes (the API key among them), shown by no ``repr``: error trackers
    serialise the locals of a traceback's frames."""

    __slots__ = ("body", "data")

    def __init__(self, data: bytes, body: bytes | None = None) -> None:
        self.data = data
        self.body = body  # a large body, written after ``data`` as the server takes it

    def __repr__(self) -> str:
        return "<request bytes>"
