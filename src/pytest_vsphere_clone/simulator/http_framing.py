"""HTTP/1.1 request body framing (RFC 9112 section 6): Content-Length or chunked, nothing left over.

vCenter's front end reads both framings; govmomi (govc, Terraform, Packer) sends every SOAP body
chunked. A request whose length cannot be known for sure is refused with a status and the
connection closed (RFC 9112 6.3), so no leftover byte is ever read as a request of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from io import BufferedIOBase
from typing import IO

#: Longest chunk-size or trailer line accepted (the same bound http.server puts on header lines).
MAX_LINE = 65536
#: Most trailer fields accepted after the last chunk.
MAX_TRAILERS = 100

_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CRLF = b"\r\n"


class FramingError(Exception):
    """A request whose body cannot be delimited: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Framing:
    """How one request's body is delimited: chunked, or ``length`` bytes (0: no body)."""

    chunked: bool = False
    length: int = 0

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def request_framing(headers: Message, request_version: str, limit: int) -> Framing:
    """The framing the request's headers announce, or FramingError (400, 413 or 501)."""
    # The email parser behind http.server stops at a line that is no header field (such as
    # "Transfer-Encoding : chunked") and keeps the rest as "payload": the header section is then
    # unreadable. RFC 9112 5.1: "A server MUST reject, with a response status code of 400 (Bad
    # Request), any received request message that contains whitespace between a header field name
    # and colon."
    if headers.defects or headers.get_payload():
        raise FramingError(400, "malformed header section")
    transfer_encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if transfer_encodings:
        return _transfer_coded(transfer_encodings, lengths, request_version)
    if not lengths:
        return Framing()
    # RFC 9112 6.3: a list of identical values may be taken as that one value; any other invalid
    # Content-Length is "an unrecoverable error" (400 and close).
    values = {item.strip().encode() for value in lengths for item in value.split(",")}
    if len(values) != 1:
        raise FramingError(400, "conflicting Content-Length values")
    [value] = values
    if not _DIGITS.fullmatch(value):
        raise FramingError(400, f"invalid Content-Length {value.decode(errors='replace')!r}")
    length = int(value)
    if length > limit:
        raise FramingError(413, f"request body of {length} bytes exceeds {limit}")
    return Framing(length=length)


def _transfer_coded(transfer_encodings: list[str], lengths: list[str], request_version: str) -> Framing:
    # RFC 9112 6.1: a Transfer-Encoding in an HTTP/1.0 message "MUST treat the message as having
    # faulty framing"; with Content-Length as well a server "MAY reject the request" and "MUST close
    # the connection after responding" either way: refusing both keeps request smuggling out.
    if request_version == "HTTP/1.0":
        raise FramingError(400, "Transfer-Encoding in an HTTP/1.0 request")
    if lengths:
        raise FramingError(400, "both Transfer-Encoding and Content-Length")
    codings = [item.strip().lower() for value in transfer_encodings for item in value.split(",")]
    if not codings or codings[-1] != "chunked" or "" in codings:
        # RFC 9112 6.3: chunked not final in a request: "the server MUST respond with the 400 (Bad
        # Request) status code and then close the connection".
        raise FramingError(400, "the final transfer coding is not chunked")
    if codings != ["chunked"]:
        # RFC 9112 6.1: a transfer coding the server does not understand "SHOULD" get a 501.
        raise FramingError(501, f"unsupported transfer coding {', '.join(codings[:-1])}")
    return Framing(chunked=True)


def read_body(rfile: IO[bytes] | BufferedIOBase, framing: Framing, limit: int) -> bytes:
    """Read the body ``framing`` announces from ``rfile``, exactly to its end."""
    if framing.chunked:
        return _read_chunked(rfile, limit)
    if not framing.length:
        return b""
    body = rfile.read(framing.length)
    if len(body) != framing.length:
        raise FramingError(400, f"body ended after {len(body)} of {framing.length} bytes")
    return body


def _read_line(rfile: IO[bytes] | BufferedIOBase, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise FramingError(400, f"{what} line too long")
    if not line.endswith(_CRLF):
        raise FramingError(400, f"{what} line not ended by CRLF")
    return line[:-2]


def _read_chunked(rfile: IO[bytes] | BufferedIOBase, limit: int) -> bytes:
    """RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF, ended by a 0 chunk and trailers."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = _read_line(rfile, "chunk size")
        size_text, _, _extensions = size_line.partition(b";")  # chunk extensions carry nothing for us
        size_text = size_text.rstrip(b" \t")  # BWS before a chunk extension
        if not _HEX.fullmatch(size_text):
            raise FramingError(400, f"invalid chunk size {size_text[:32]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise FramingError(413, f"chunked request body exceeds {limit} bytes")
        data = rfile.read(size)
        if len(data) != size:
            raise FramingError(400, f"chunk ended after {len(data)} of {size} bytes")
        if rfile.read(2) != _CRLF:
            raise FramingError(400, "chunk data not followed by CRLF")
        parts.append(data)
    for _ in range(MAX_TRAILERS + 1):
        trailer = _read_line(rfile, "trailer")
        if not trailer:
            return b"".join(parts)
        if b":" not in trailer:
            raise FramingError(400, "invalid trailer field")
    raise FramingError(400, "too many trailer fields")
