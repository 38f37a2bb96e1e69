"""Reading an HTTP/1.1 answer's head (status line and headers), choosing its body's decoder, and
gathering the body's pieces."""

from __future__ import annotations

import zlib
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy

from ._http_types import BadAnswer

__all__ = ["content_length", "decoder", "gather", "parse_head"]

_SMALL_PIECE: Final = 16 * 1024
_MAX_LENGTH_DIGITS: Final = 18
"""The most significant digits a Content-Length may have: int() refuses a string of some 4,300
digits, and no answer comes near an exabyte."""


def parse_head(head: bytes) -> tuple[int, CIMultiDictProxy[str], bool]:
    # Decoded once: header values as UTF-8 (undecodable bytes kept as surrogates), names are
    # ASCII tokens.
    crlf = head.count(b"\r\n")
    if head.count(b"\r") != crlf or head.count(b"\n") != crlf or b"\0" in head:
        # RFC 9110, 5.5: such a value is rejected, never passed on (nor read as two lines).
        raise BadAnswer("the answer's head has a bare CR or LF, or a NUL")
    first, *lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    version, _, rest = first.partition(" ")
    code = rest[:3]
    if (
        version not in ("HTTP/1.1", "HTTP/1.0")
        or len(code) != 3
        or not code.isdigit()
        or not code.isascii()
        or rest[3:4] not in ("", " ")
        or code[0] == "0"
    ):
        raise BadAnswer(f"not an HTTP/1.1 status line: {first[:80]!r}")
    pairs = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name[-1] in " \t" or name[0] in " \t":
            raise BadAnswer(f"not an HTTP header line: {line[:80]!r}")
        pairs.append((name, value.strip(" \t")))
    headers = CIMultiDictProxy(CIMultiDict(pairs))
    keep_alive = version == "HTTP/1.1"
    if "Connection" in headers:
        tokens = {t.strip().lower() for v in headers.getall("Connection") for t in v.split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return int(code), headers, keep_alive


def content_length(values: list[str]) -> int:
    """The one length an answer's ``Content-Length`` headers state (repeats of it allowed)."""
    lengths = {v.strip() for value in values for v in value.split(",")}
    if len(lengths) != 1:
        raise BadAnswer("the answer has conflicting Content-Length headers")
    text = lengths.pop()
    if not text.isdigit() or not text.isascii():
        raise BadAnswer(f"the answer's Content-Length is not a number: {text[:40]!r}")
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_LENGTH_DIGITS:
        raise BadAnswer(f"the answer's Content-Length is out of range: {text[:40]!r}")
    return int(digits)


def decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    return None  # identity, or one this client does not ask for: passed on as sent


def gather(parts: list[bytes | bytearray], data: bytes) -> None:
    """Add a piece of an answer's body to ``parts`` (``b"".join(parts)`` is the body).

    The first piece, and any large one, is kept as it is; small pieces after the first go into
    one buffer. A server may send a body a byte at a time (one-byte chunks, or a dribble), and
    each piece kept as an object of its own would cost some 35 bytes per byte of body.
    """
    if len(data) >= _SMALL_PIECE or not parts:
        parts.append(data)
        return
    last = parts[-1]
    if isinstance(last, bytearray):
        last += data
    else:
        parts.append(bytearray(data))
