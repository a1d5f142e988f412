"""Guest user accounts: passwd/shadow/group files and password hashing.

Each guest gets its own account database (mounted over /etc in its mount
namespace), built from the host's system accounts - root, the sshd privilege
separation user, nobody, ... - plus the guest user. Host login users (uid >= 1000)
are left out. Hashing uses the system libcrypt, the same code sshd uses to check
the password, so both always agree (and $y$ yescrypt hashes set inside the guest
verify too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import string
import threading
import time
from dataclasses import dataclass
from functools import cache

_SALT_CHARS = string.ascii_letters + string.digits + "./"
_FIRST_USER_ID = 1000
_NOBODY_ID = 65534
_ADMIN_GROUPS = ("sudo", "wheel")  # a cloud image's default user may sudo
#: A Windows guest's built-in Administrator (RID 500). Windows compares account names case-insensitively.
WINDOWS_BUILTIN_ADMINISTRATOR = "Administrator"
#: A second member of a Windows guest's Administrators group, as images made by Packer or Vagrant
#: have one: not the built-in Administrator, so UAC filters its token (see is_elevated).
WINDOWS_LOCAL_ADMIN = "LocalAdmin"
_crypt_lock = threading.Lock()  # crypt(3) returns a static buffer


@dataclass(frozen=True)
class Account:
    """A passwd(5) entry."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    def line(self) -> str:
        return f"{self.name}:x:{self.uid}:{self.gid}::{self.home}:{self.shell}"


@dataclass(frozen=True)
class AccountFiles:
    """Contents of a guest's /etc/passwd, shadow, group and gshadow."""

    passwd: str
    shadow: str
    group: str
    gshadow: str


@cache
def _libcrypt() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    return lib


def _crypt(password: str, setting: str) -> str | None:
    with _crypt_lock:
        result = _libcrypt().crypt(password.encode(), setting.encode())
    # libxcrypt signals failure with NULL or a string starting with "*".
    if not result or result.startswith(b"*"):
        return None
    return result.decode()


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash ($6$), which every sshd/PAM build verifies."""
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    hashed = _crypt(password, f"$6${salt}$")
    if hashed is None:
        raise RuntimeError("libcrypt cannot hash with SHA-512")
    return hashed


def verify_password(password: str, hashed: str) -> bool:
    """True if ``password`` matches a crypt(3) hash; locked ("!", "*") and empty hashes never match."""
    if not hashed or hashed[0] in "!*":
        return False
    result = _crypt(password, hashed)
    return result is not None and secrets.compare_digest(result, hashed)


def parse_passwd(text: str) -> dict[str, Account]:
    """Entries of a passwd file by name."""
    accounts = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit():
            accounts[fields[0]] = Account(fields[0], int(fields[2]), int(fields[3]), fields[5], fields[6])
    return accounts


def parse_shadow(text: str) -> dict[str, str]:
    """Password hashes of a shadow file by name."""
    return {f[0]: f[1] for f in (line.split(":") for line in text.splitlines()) if len(f) >= 2}


def group_ids(group_text: str, account: Account) -> list[int]:
    """The primary and supplementary group ids of an account, per a group file."""
    gids = [account.gid]
    for line in group_text.splitlines():
        fields = line.split(":")
        if len(fields) == 4 and fields[2].isdigit() and account.name in fields[3].split(","):
            gids.append(int(fields[2]))
    return sorted(set(gids))


def _is_system_id(value: int) -> bool:
    return value < _FIRST_USER_ID or value == _NOBODY_ID


def is_elevated_by_guest_operations(user: str) -> bool:
    """Whether a Windows program that Guest Operations start for ``user`` runs with a full (elevated) token.

    Guest Operations log the user on as a non-interactive session, and UAC gives members of the
    Administrators group a filtered (non-elevated) token there, except the built-in Administrator
    (ansible/ansible #66472, vmware/pyvmomi-community-samples #272): elevation-requiring commands
    (``ipconfig /renew``, ``netsh interface set interface``) then fail with "The requested operation
    requires elevation".
    """
    return user.casefold() == WINDOWS_BUILTIN_ADMINISTRATOR.casefold()


def build_account_files(
    host_passwd: str, host_group: str, user: str, password: str, home: str, shell: str,
    extra_users: tuple[tuple[str, str], ...] = (),
) -> AccountFiles:
    """Account files for a guest: the host's system accounts, locked, plus ``user`` with ``password``.

    ``extra_users``: more (name, home) accounts with the same password and groups as ``user``.
    """
    accounts = [a for a in parse_passwd(host_passwd).values() if _is_system_id(a.uid)]
    names = {a.name for a in accounts}
    groups: list[list[str]] = []
    for line in host_group.splitlines():
        fields = line.split(":")
        if len(fields) == 4 and fields[2].isdigit() and _is_system_id(int(fields[2])):
            fields[3] = ",".join(m for m in fields[3].split(",") if m in names)
            groups.append(fields)
    for name, name_home in ((user, home), *extra_users):
        if name in names:
            continue
        used_ids = {a.uid for a in accounts} | {int(g[2]) for g in groups}
        uid = next(i for i in range(_FIRST_USER_ID, _NOBODY_ID) if i not in used_ids)
        accounts.append(Account(name, uid, uid, name_home, shell))
        names.add(name)
        groups.append([name, "x", str(uid), ""])
        for group in groups:
            if group[0] in _ADMIN_GROUPS:
                group[3] = ",".join(filter(None, [*group[3].split(","), name]))
    days = int(time.time() // 86400)
    with_password = {user, *(name for name, _ in extra_users)}
    hashes = {name: hash_password(password) for name in with_password}
    shadow = [f"{a.name}:{hashes.get(a.name, '*')}:{days}:0:99999:7:::" for a in accounts]
    return AccountFiles(
        passwd="".join(a.line() + "\n" for a in accounts),
        shadow="".join(line + "\n" for line in shadow),
        group="".join(":".join(g) + "\n" for g in groups),
        gshadow="".join(f"{g[0]}:!::{g[3]}\n" for g in groups),
    )
