"""Guest file operations, performed by a child process as the guest user inside the guest."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

from ..errors import (
    GuestFileAccessDenied,
    GuestFileError,
    GuestFileExists,
    GuestFileNotFound,
    GuestHostError,
    GuestNotAFile,
)

_CHILD = Path(__file__).with_name("file_child.py")
_ERROR_STATUS = 3
_TIMEOUT = 120.0


class GuestNotADirectory(GuestFileError):
    """The path names a file or a symbolic link where a directory is needed. -> NotADirectory."""


class GuestDirectoryNotEmpty(GuestFileError):
    """A directory to delete without ``recursive`` still holds entries. -> DirectoryNotEmpty."""


_KIND_FAULTS: dict[str, type[GuestFileError]] = {"notdir": GuestNotADirectory}
_ERRNO_FAULTS: dict[int, type[GuestFileError]] = {
    errno.ENOENT: GuestFileNotFound,
    errno.ENOTDIR: GuestFileNotFound,
    errno.EACCES: GuestFileAccessDenied,
    errno.EPERM: GuestFileAccessDenied,
    errno.EROFS: GuestFileAccessDenied,
    errno.EEXIST: GuestFileExists,
    errno.EISDIR: GuestNotAFile,
    errno.ENOTEMPTY: GuestDirectoryNotEmpty,
}


def run_fileop(
    anchor_pid: int,
    credentials: tuple[int, int, list[int]],
    op: str,
    view_path: str,
    guest_path: str,
    data: bytes | None = None,
    **options: object,
) -> bytes:
    """Run one file operation in the guest of ``anchor_pid``; return its output.

    ``credentials`` are (uid, gid, groups); ``view_path`` is the path inside the
    guest's mount namespace, ``guest_path`` the path as the caller wrote it (for
    messages). Runs the package's own interpreter from the host's view, then
    enters the guest, so it works whichever interpreter the guest could see.
    """
    uid, gid, groups = credentials
    request = {"pid": anchor_pid, "uid": uid, "gid": gid, "groups": groups, "op": op, "path": view_path, **options}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(_CHILD), json.dumps(request)],
            input=data if data is not None else b"",
            capture_output=True,
            env={"LANG": "C.UTF-8"},  # runs as the guest user: nothing of the simulator's environment
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GuestHostError(f"guest file operation {op} {guest_path} timed out") from exc
    if proc.returncode == 0:
        return proc.stdout
    if proc.returncode == _ERROR_STATUS:
        try:
            error = json.loads(proc.stderr)
        except ValueError:
            error = {"errno": None, "message": proc.stderr.decode(errors="replace"), "kind": None}
        fault = _KIND_FAULTS.get(error.get("kind") or "") or _ERRNO_FAULTS.get(error["errno"], GuestFileError)
        raise fault(f"{guest_path}: {error['message']}", guest_path)
    raise GuestHostError(f"guest file operation {op} {guest_path} failed: {proc.stderr.decode(errors='replace')}")
