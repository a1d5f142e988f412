"""Child process of a guest file operation (run as ``python -I -S fileop_child.py REQUEST``).

It starts as root in the host's view, enters the guest's mount namespace, drops
to the guest user, then performs one operation - so the kernel applies the
guest's view and the user's permissions. Standalone: stdlib only, no package import.
Errors go to stderr as JSON ``{"errno": n, "message": "..."}`` with exit status 3.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from typing import Any

_CLONE_NEWNS = 0x00020000
_ERROR_STATUS = 3


def _enter_mount_namespace(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    os.chdir("/")


def _become(uid: int, gid: int, groups: list[int]) -> None:
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)


def _open_regular(path: str, flags: int) -> int:
    fd = os.open(path, flags | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EISDIR, "not a regular file")
    return fd


def _perform(request: dict[str, Any]) -> None:
    op, path = request["op"], str(request["path"])
    if op == "read":
        with os.fdopen(_open_regular(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as src:
            shutil.copyfileobj(src, sys.stdout.buffer)
    elif op == "write":
        mode = os.O_TRUNC if request["overwrite"] else os.O_EXCL
        with os.fdopen(_open_regular(path, os.O_WRONLY | os.O_CREAT | mode), "wb") as dst:
            shutil.copyfileobj(sys.stdin.buffer, dst)
    elif op == "delete":
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise OSError(errno.EISDIR, "is a directory")
        os.unlink(path)
    elif op == "mktemp":
        fd, name = tempfile.mkstemp(str(request["suffix"]), str(request["prefix"]), path)
        os.close(fd)
        sys.stdout.write(name)
    else:
        raise ValueError(f"unknown operation {op!r}")


def main() -> None:
    request = json.loads(sys.argv[1])
    try:
        _enter_mount_namespace(int(request["pid"]))
        _become(int(request["uid"]), int(request["gid"]), [int(g) for g in request["groups"]])
        os.umask(0o022)
        _perform(request)
    except OSError as exc:
        sys.stderr.write(json.dumps({"errno": exc.errno, "message": exc.strerror or str(exc)}))
        sys.stdout.flush()
        sys.exit(_ERROR_STATUS)


if __name__ == "__main__":
    main()
