"""Authentication for the simulated WinRM service: HTTP Basic, and NTLM through pyspnego.

NTLM authenticates a *connection*: after the three-leg handshake (``Authorization: Negotiate``
or ``NTLM``), later requests on the same keep-alive connection carry no credentials, and their
bodies are usually sealed with the session key (MS-WSMV "multipart/encrypted"; pywinrm does this
over plain HTTP).  :class:`ConnectionAuth` holds that per-connection state.

Accounts come from the server's account file (accounts.py): the user's NT hash, which Basic
checks passwords against and which pyspnego's NTLM acceptor reads through ``NTLM_USER_FILE``.
Only pyspnego's public API is used: ``spnego.server`` and ``wrap_winrm``/``unwrap_winrm``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import spnego
import spnego.exceptions

from .accounts import (
    ACCOUNT_FILE_ENV,
    BAD_USER_CHARS,
    account_file_in_environment,
    read_nt_hash,
    verify_password,
)

__all__ = ["ENCRYPTED_CONTENT_TYPE", "AuthConfig", "AuthError", "AuthResult", "ConnectionAuth"]

log = logging.getLogger(__name__)

_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{_PROTOCOL}";boundary="Encrypted Boundary"'
_BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"


class AuthError(Exception):
    """A request cannot be authenticated or decrypted."""


@dataclass
class AuthConfig:
    """Who may log on, and how.  ``methods``: "basic" and/or "negotiate" (NTLM).

    ``account_file`` holds ``username``'s NT hash (accounts.write_account_file). NTLM also needs
    this process to have been started with ``NTLM_USER_FILE`` naming that file: pyspnego's
    acceptor reads accounts from nowhere else (see accounts.py).
    """

    username: str
    account_file: Path
    hostname: str = "localhost"
    methods: frozenset[str] = frozenset({"basic", "negotiate"})
    _nt_hash: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.username or BAD_USER_CHARS & set(self.username):
            raise ValueError(f"invalid Windows user name: {self.username!r}")
        unknown = set(self.methods) - {"basic", "negotiate"}
        if unknown:
            raise ValueError(f"unsupported auth methods: {', '.join(sorted(unknown))}")
        hashed = read_nt_hash(self.account_file, self.username)
        if hashed is None:
            raise ValueError(f"{self.account_file} holds no account {self.username!r}")
        self._nt_hash = hashed
        if "negotiate" in self.methods and not account_file_in_environment(self.account_file):
            raise ValueError(
                f"NTLM needs this process started with {ACCOUNT_FILE_ENV}={self.account_file} "
                "(pyspnego's NTLM acceptor reads its accounts from that file only)"
            )

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
        """Whether ``password`` is the account's (compared as NT hashes, like a Windows logon)."""
        return verify_password(password, self._nt_hash)


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
            # Only the configured account logs on here, whatever else an account file may hold.
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

    def decrypt(self, body: bytes) -> bytes:
        """The SOAP message of a multipart/encrypted body, unsealed with the connection's session."""
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
            # Each part: the signature's length (4 bytes, little-endian), the signature, the sealed data.
            (signature_length,) = struct.unpack("<I", payload[:4])
            if not 0 < signature_length <= len(payload) - 4:
                raise AuthError("bad signature length")
            signature, sealed = payload[4 : 4 + signature_length], payload[4 + signature_length :]
            try:
                plain = self._session.unwrap_winrm(signature, sealed)
            except spnego.exceptions.SpnegoError as exc:
                raise AuthError(f"cannot unseal message: {exc}") from exc
            if len(plain) != int(match.group(1)):
                raise AuthError("decrypted length does not match OriginalContent")
            message += plain
        return message

    def encrypt(self, message: bytes) -> bytes:
        """``message`` sealed with the connection's session, as a multipart/encrypted body."""
        if self._session is None:
            raise AuthError("no NTLM session to seal with")
        wrapped = self._session.wrap_winrm(message)
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
            + struct.pack("<I", len(wrapped.header))
            + wrapped.header
            + wrapped.data
            + _BOUNDARY
            + b"--\r\n"
        )
