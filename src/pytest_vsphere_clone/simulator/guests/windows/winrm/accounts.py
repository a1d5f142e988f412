"""The WinRM service's account database: NT hashes in the file pyspnego's NTLM acceptor reads.

pyspnego's NTLM acceptor (``spnego.server(protocol="ntlm")``, also under Negotiate) takes no
credentials through its API on Linux: ``spnego.server``'s ``credentials`` "currently only works on
Windows/SSPI" (pyspnego 0.12.0 changelog). It looks accounts up in the file named by the
environment variable ``NTLM_USER_FILE``, read when a context is created and again when it checks an
AUTHENTICATE message, so the name cannot be passed per context. Hence:

- the file holds NT hashes, never the password (the smbpasswd line format pyspnego documents:
  ``USER:UID:LM_HASH:NT_HASH:FLAGS:LCT``), and is created 0600;
- ``NTLM_USER_FILE`` is set only in the environment the WinRM server process is *started* with
  (host/daemons.py); no code changes any process's environment at run time.

Basic authentication checks the password against the same NT hash, as Windows checks a logon
against the hash in its SAM.
"""

from __future__ import annotations

import hmac
import os
import secrets
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ACCOUNT_FILE_ENV",
    "account_file_in_environment",
    "local_domains",
    "nt_hash",
    "read_nt_hash",
    "verify_password",
    "write_account_file",
]

#: The variable pyspnego's (and gss-ntlmssp's) NTLM acceptor reads the account file's name from.
ACCOUNT_FILE_ENV = "NTLM_USER_FILE"
#: Characters Windows forbids in user names; ':' would also break the file's format.
BAD_USER_CHARS = frozenset('"/\\[]:;|=,+*?<>')

_MASK = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    value &= _MASK
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _md4(data: bytes) -> bytes:
    """MD4 (RFC 1320), written out: OpenSSL 3 offers it only through its legacy provider."""
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", (len(data) * 8) & (2**64 - 1))
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(padded), 64):
        x = struct.unpack("<16I", padded[offset : offset + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in (0, 4, 8, 12):  # round 1: F(x,y,z) = xy | ~xz
            a = _rotl(a + ((b & c) | (~b & d)) + x[i], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        for i in (0, 1, 2, 3):  # round 2: G(x,y,z) = xy | xz | yz
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):  # round 3: H(x,y,z) = x ^ y ^ z
            a = _rotl(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


def nt_hash(password: str) -> bytes:
    """MS-NLMP 3.3.1 NTOWFv1: MD4 of the UTF-16LE password (lone surrogates kept, as pyspnego does)."""
    return _md4(password.encode("utf-16-le", "surrogatepass"))


def verify_password(password: str, expected_nt_hash: bytes) -> bool:
    """Whether ``password`` has the NT hash ``expected_nt_hash`` (constant-time comparison)."""
    return hmac.compare_digest(nt_hash(password), expected_nt_hash)


def local_domains(hostname: str) -> list[str]:
    """The domains a client may name for a local account: none, ".", the machine name, the workgroup."""
    short = hostname.split(".", 1)[0]
    return list(dict.fromkeys(["", ".", short.upper(), short, "WORKGROUP"]))


def _lines(username: str, hashed: bytes, domains: Iterable[str]) -> list[str]:
    # No LM hash is stored, as on Windows since Vista ("Network security: Do not store LAN Manager
    # hash value on next password change", enabled by default): the field gets 16 random bytes, so
    # no LM response can ever match, and an all-zero field could not be mistaken for a hash.
    lm = secrets.token_bytes(16).hex().upper()
    nt = hashed.hex().upper()
    accounts = [domain + "\\" + username if domain else username for domain in domains]
    return [f"{account}:0:{lm}:{nt}:[U]:LCT-00000000" for account in accounts]


def write_account_file(path: Path, username: str, password: str, hostname: str) -> None:
    """Create ``path`` (0600, must not exist) with the local account ``username``'s NT hash.

    One line per domain a client may name (pyspnego matches domain and user exactly).
    """
    if not username or BAD_USER_CHARS & set(username):
        raise ValueError(f"invalid Windows user name: {username!r}")
    text = "".join(line + "\n" for line in _lines(username, nt_hash(password), local_domains(hostname)))
    # O_EXCL: never write through a file or link someone else put there first.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def read_nt_hash(path: Path, username: str) -> bytes | None:
    """The NT hash the account file holds for ``username`` (any domain), or None."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if len(fields) != 6:
            continue
        user = fields[0].rpartition("\\")[2]
        if user.casefold() == username.casefold():
            return bytes.fromhex(fields[3])
    return None


def account_file_in_environment(path: Path) -> bool:
    """Whether this process was started with ``NTLM_USER_FILE`` naming ``path`` (what NTLM needs)."""
    named = os.environ.get(ACCOUNT_FILE_ENV)
    try:
        return bool(named) and os.path.samefile(str(named), path)
    except OSError:
        return False
