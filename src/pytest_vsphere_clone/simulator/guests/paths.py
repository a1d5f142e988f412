"""Paths as a guest sees them, and the mapping of Windows paths into a guest's view.

A guest sees the host's file system through copy-on-write overlays whose upper
layers are on the VM disk (/, /etc, host submounts: see host/namespace.py), except
for what its mount namespace replaces: /run, /tmp and /dev/shm (private tmpfs), /home,
/root and /var/lib/dhcp (from the VM disk), /proc, /dev/pts and /dev/mqueue (the
guest's own). The VMware Tools shims are installed in the disk's /usr/bin.
A Windows guest's drives are the disk's ``drives`` directory, mounted at /mnt:
drive C: is /mnt/C (the ``--disk-root`` layout the Windows programs expect:
windows/cmd/cli.py and windows/winrm/server.py).
"""

from __future__ import annotations

import posixpath
import re

from .errors import GuestInvalidArgument
from .models import GuestFamily

TOOLS_DIR = "/run/vmware-tools"  # shims' bin directory and the backdoor socket
BACKDOOR_SOCKET = f"{TOOLS_DIR}/backdoor.sock"
DHCP_RENEW = f"{TOOLS_DIR}/libexec/dhcp-renew"  # restarts the guest's DHCP client on an interface
GUEST_INIT = f"{TOOLS_DIR}/libexec/init"  # pid 1 of the guest (see host/namespace.py)
EXIT_CODES_DIR = f"{TOOLS_DIR}/exit"  # the cmd shell's exact exit codes (may exceed 255)
WINRM_ACCOUNTS = f"{TOOLS_DIR}/winrm/accounts"  # the WinRM server's account file (NT hashes, 0600)
DRIVES_ROOT = "/mnt"  # drive X: is /mnt/X
_WIN_ABS_RE = re.compile(r"^([A-Za-z]):[\\/]")


def home_dir(family: GuestFamily, user: str) -> str:
    """The user's home directory in the guest's own notation."""
    if family == "windows":
        return f"C:\\Users\\{user}"
    return "/root" if user == "root" else f"/home/{user}"


def temp_dir(family: GuestFamily, user: str) -> str:
    """Default directory for CreateTemporaryFileInGuest."""
    if family == "windows":
        return f"{home_dir(family, user)}\\AppData\\Local\\Temp"
    return "/tmp"


def to_view(family: GuestFamily, path: str) -> str:
    """Translate an absolute guest path into the path inside the guest's mount namespace."""
    if "\0" in path:
        raise GuestInvalidArgument(f"guest path contains a NUL byte: {path!r}")
    if family == "linux":
        if not path.startswith("/"):
            raise GuestInvalidArgument(f"guest path must be absolute: {path!r}")
        return path
    match = _WIN_ABS_RE.match(path)
    if not match:
        raise GuestInvalidArgument(f"guest path must be absolute, like C:\\dir\\file: {path!r}")
    parts = [p for p in re.split(r"[\\/]+", path[3:]) if p not in ("", ".")]
    if ".." in parts:
        parts = posixpath.normpath("/" + "/".join(parts)).strip("/").split("/")
    return posixpath.join(DRIVES_ROOT, match.group(1).upper(), *parts)


def from_view(family: GuestFamily, view_path: str) -> str:
    """Inverse of :func:`to_view`, for paths the guest returns (e.g. a new temp file)."""
    if family == "linux":
        return view_path
    rest = posixpath.relpath(view_path, DRIVES_ROOT).split("/")
    return f"{rest[0]}:\\" + "\\".join(rest[1:])
