"""Authentication for the simulated WinRM service: HTTP Basic, and NTLM through pyspnego.

NTLM authenticates a *connection*: after the three-leg handshake (``Authorization: Negotiate``
or ``NTLM``), later requests on the same keep-alive connection carry no credentials, and their
bodies are usually sealed with the session key (MS-WSMV "multipart/encrypted"; pywinrm does this
over plain HTTP).  :class:`ConnectionAuth` holds that per-connection state.

pyspnego's NTLM acceptor looks users up in the file named by ``NTLM_USER_FILE``; a process-wide
:class:`_NtlmUserFile` maintains it, holding password hashes only, in a private temp directory.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import spnego
import spnego.exceptions

__all__ = ["ENCRYPTED_CONTENT_TYPE", "AuthConfig", "AuthError", "AuthResult", "ConnectionAuth"]

log = logging.getLogger(__name__)

_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{_PROTOCOL}";boundary="Encrypted Boundary"'
_BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
#: Characters Windows forbids in user names; ':' would also corrupt the NTLM user file.
_BAD_USER_CHARS = set('"/\\[]:;|=,+*?<>')


class AuthError(Exception):
    """A request cannot be authenticated or decrypted."""


class _NtlmUserFile:
    """The ``NTLM_USER_FILE`` pyspnego's acceptor reads, shared by every server in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, list[str]] = {}
        self._next = 0
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def register(self, lines: list[str]) -> int:
        with self._lock:
            self._next += 1
            self._entries[self._next] = lines
            self._write()
            return self._next

    def unregister(self, handle: int) -> None:
        with self._lock:
            if self._entries.pop(handle, None) is not None:
                self._write()

    def _write(self) -> None:
        if not self._entries:
            if self._directory is not None:
                self._directory.cleanup()
                self._directory = None
            os.environ.pop("NTLM_USER_FILE", None)
            return
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="winrm-ntlm-")
        path = os.path.join(self._directory.name, "users")
        staging = path + ".new"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for lines in self._entries.values():
                handle.writelines(line + "\n" for line in lines)
        os.replace(staging, path)
        os.environ["NTLM_USER_FILE"] = path


_USER_FILE = _NtlmUserFile()


def _ntlm_lines(username: str, password: str, domains: Iterable[str]) -> list[str]:
    """smbpasswd-format lines (hashes, no clear text), one per domain a client may name."""
    try:
        from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
    except ImportError:  # pragma: no cover - layout of a future pyspnego
        return [f"{domain}:{username}:{password}" for domain in domains]
    lm, nt = lmowfv1(password).hex().upper(), ntowfv1(password).hex().upper()
    lines = []
    for domain in domains:
        account = f"{domain}\\{username}" if domain else username
        lines.append(f"{account}:0:{lm}:{nt}:[U]:LCT-00000000")
    return lines


@dataclass
class AuthConfig:
    """Who may log on, and how.  ``methods``: "basic" and/or "negotiate" (NTLM)."""

    username: str
    password: str = field(repr=False)
    hostname: str = "localhost"
    methods: frozenset[str] = frozenset({"basic", "negotiate"})

    def __post_init__(self) -> None:
        if not self.username or _BAD_USER_CHARS & set(self.username):
            raise ValueError(f"invalid Windows user name: {self.username!r}")
        unknown = set(self.methods) - {"basic", "negotiate"}
        if unknown:
            raise ValueError(f"unsupported auth methods: {', '.join(sorted(unknown))}")
        self._ntlm_handle: int | None = None
        if "negotiate" in self.methods:
            short = self.hostname.split(".", 1)[0]
            # Local accounts answer to no domain, ".", the machine name and the default workgroup.
            domains = dict.fromkeys(["", ".", short.upper(), short, "WORKGROUP"])
            self._ntlm_handle = _USER_FILE.register(_ntlm_lines(self.username, self.password, domains))

    def close(self) -> None:
        if self._ntlm_handle is not None:
            _USER_FILE.unregister(self._ntlm_handle)
            self._ntlm_handle = None

    def challenge_headers(self) -> list[tuple[str, str]]:
        headers = []
        if "negotiate" in self.methods:
            headers.append(("WWW-Authenticate", "Negotiate"))
        if "basic" in self.methods:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return headers

    def is_user(self, name: str) -> bool:
        """``user``, ``.\\user``, ``HOST\\user`` and ``user@HOST`` all name the local account."""
        domain, sep, user = name.rpartition("\\")
        if not sep:
            user, _, domain = name.partition("@")
        short = self.hostname.split(".", 1)[0].casefold()
        domain_ok = domain.casefold() in ("", ".", short, self.hostname.casefold(), "workgroup")
        return domain_ok and user.casefold() == self.username.casefold()

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(password.encode("utf-8"), self.password.encode("utf-8"))


@dataclass
class AuthResult:
    status: Literal["ok", "challenge", "denied"]
    headers: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None


class ConnectionAuth:
    """Authentication state of one HTTP connection."""

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._context: spnego.ContextProxy | None = None
        self._session: spnego.ContextProxy | None = None
        self.user: str | None = None

    def authenticate(self, authorization: str | None) -> AuthResult:
        if not authorization:
            if self._session is not None and self.user is not None:
                return AuthResult("ok", user=self.user)
            return AuthResult("denied", self._config.challenge_headers())
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme_key = scheme.lower()
        if scheme_key == "basic" and "basic" in self._config.methods:
            return self._basic(credentials.strip())
        if scheme_key in ("negotiate", "ntlm") and "negotiate" in self._config.methods:
            return self._negotiate(scheme, credentials.strip())
        return AuthResult("denied", self._config.challenge_headers())

    def _basic(self, credentials: str) -> AuthResult:
        try:
            user, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user, password = "", "", ""
        if sep and self._config.is_user(user) and self._config.check_password(password):
            return AuthResult("ok", user=self._config.username)
        log.info("basic authentication failed for %r", user)
        return AuthResult("denied", self._config.challenge_headers())

    def _negotiate(self, scheme: str, credentials: str) -> AuthResult:
        try:
            token = base64.b64decode(credentials, validate=True)
        except binascii.Error:
            return self._fail("malformed token")
        if token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00"):
            # A NEGOTIATE_MESSAGE (re)starts the handshake, even on an authenticated connection.
            self._context, self._session, self.user = spnego.server(protocol="ntlm"), None, None
        elif token[:1] == b"\x60":
            # SPNEGO-wrapped: only its NTLM mechanism can be served here.
            options = spnego.NegotiateOptions.use_negotiate
            self._context, self._session, self.user = (
                spnego.server(protocol="negotiate", options=options),
                None,
                None,
            )
        if self._context is None:
            return self._fail("authentication message without a handshake")
        try:
            reply = self._context.step(token)
        except spnego.exceptions.SpnegoError as exc:
            return self._fail(str(exc))
        headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(reply).decode()}")] if reply else []
        if not self._context.complete:
            return AuthResult("challenge", headers)
        principal = self._context.client_principal or ""
        if not self._config.is_user(principal):
            # The user file is process-wide: another server's account must not log on here.
            return self._fail(f"unknown principal {principal!r}")
        self._session, self._context = self._context, None
        self.user = self._config.username
        return AuthResult("ok", headers, user=self.user)

    def _fail(self, reason: str) -> AuthResult:
        log.info("NTLM authentication failed: %s", reason)
        self._context = self._session = None
        self.user = None
        return AuthResult("denied", self._config.challenge_headers())

    # -- message encryption (MS-WSMV 2.2.9.1) ---------------------------------------------------

    @property
    def can_seal(self) -> bool:
        return self._session is not None

    def decrypt(self, body: bytes) -> bytes:
        if self._session is None:
            raise AuthError("encrypted message on a connection without an NTLM session")
        parts = [part for part in body.split(_BOUNDARY + b"\r\n") if part]
        if len(parts) < 2 or len(parts) % 2:
            raise AuthError("malformed multipart/encrypted body")
        message = b""
        for header, payload in zip(parts[0::2], parts[1::2], strict=True):
            match = re.search(rb"Length=(\d+)", header)
            if match is None:
                raise AuthError("encrypted part without OriginalContent length")
            payload = payload.removesuffix(_BOUNDARY + b"--\r\n").removeprefix(_OCTET_STREAM)
            if len(payload) < 4:
                raise AuthError("truncated encrypted part")
            (signature_length,) = struct.unpack("<I", payload[:4])
            if signature_length != 16:
                raise AuthError("unexpected signature length")
            try:
                # NTLM's wrap token is the 16-byte signature followed by the sealed data.
                plain = self._session.unwrap(payload[4:]).data
            except spnego.exceptions.SpnegoError as exc:
                raise AuthError(f"cannot unseal message: {exc}") from exc
            if len(plain) != int(match.group(1)):
                raise AuthError("decrypted length does not match OriginalContent")
            message += plain
        return message

    def encrypt(self, message: bytes) -> bytes:
        if self._session is None:
            raise AuthError("no NTLM session to seal with")
        sealed = self._session.wrap(message, encrypt=True).data
        return (
            _BOUNDARY
            + b"\r\n\tContent-Type: "
            + _PROTOCOL.encode()
            + b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode()
            + b"\r\n"
            + _BOUNDARY
            + b"\r\n"
            + _OCTET_STREAM
            + struct.pack("<I", 16)
            + sealed
            + _BOUNDARY
            + b"--\r\n"
        )
