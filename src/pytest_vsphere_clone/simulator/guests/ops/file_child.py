"""Child process of a guest file operation (run as ``python -I -S file_child.py REQUEST``).

It starts as root in the host's view, enters the guest's mount namespace, drops
to the guest user, then performs one operation - so the kernel applies the
guest's view and the user's permissions. Standalone: stdlib only, no package import.
Errors go to stderr as JSON ``{"errno": n, "message": "...", "kind": "..."}`` with exit
status 3; ``kind`` (optional) names what the errno alone cannot: ``notdir`` when the path
itself is not a directory (DeleteDirectoryInGuest's NotADirectory).
The directory operations follow open-vm-tools' vix plugin (VixToolsCreateDirectory,
VixToolsDeleteDirectory, VixToolsListFiles): new directories get mode 0700, and a listing of a
directory starts with "." and "..".
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
_DIR_MODE = 0o700  # what VMware Tools gives a directory it creates (and each missing parent)
_FILE_MODE = 0o644  # a file transferred to the guest without permissions (GuestPosixFileAttributes)


class _KindError(OSError):
    """An OSError that also names what went wrong beyond the errno."""

    def __init__(self, err: int, message: str, kind: str) -> None:
        super().__init__(err, message)
        self.kind = kind


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
            # GuestPosixFileAttributes.permissions: chmod(2) bits, 0644 when unset; a replaced
            # file's old attributes are not preserved (vSphere Automation API, Transfers).
            os.fchmod(dst.fileno(), int(request.get("mode") or _FILE_MODE) & 0o7777)
            shutil.copyfileobj(sys.stdin.buffer, dst)
    elif op == "check-write":
        _check_write(path, bool(request["overwrite"]))
    elif op == "delete":
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise OSError(errno.EISDIR, "is a directory")
        os.unlink(path)
    elif op == "mktemp":
        fd, name = tempfile.mkstemp(str(request["suffix"]), str(request["prefix"]), path)
        os.close(fd)
        sys.stdout.write(name)
    elif op == "mkdtemp":
        sys.stdout.write(tempfile.mkdtemp(str(request["suffix"]), str(request["prefix"]), path))
    elif op == "mkdir":
        _make_directory(path, bool(request["parents"]))
    elif op == "rmdir":
        _delete_directory(path, bool(request["recursive"]))
    elif op == "list":
        json.dump(_list(path), sys.stdout)
    else:
        raise ValueError(f"unknown operation {op!r}")


def _check_write(path: str, overwrite: bool) -> None:
    """What InitiateFileTransferToGuest checks before it hands out the URL, as VMware Tools does:
    the path is a regular file or new ("It cannot be a path to a directory or a symbolic link"),
    an existing file needs ``overwrite``, and the user may write the file or its directory."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path) or "/"
        if not stat.S_ISDIR(os.stat(parent).st_mode):  # a missing parent raises ENOENT itself
            raise OSError(errno.ENOENT, "no such directory") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "permission denied") from None
        return
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EISDIR, "not a regular file")
    if not overwrite:
        raise OSError(errno.EEXIST, "file exists")
    if not os.access(path, os.W_OK):
        raise OSError(errno.EACCES, "permission denied")


def _make_directory(path: str, parents: bool) -> None:
    if os.path.lexists(path):
        raise OSError(errno.EEXIST, "file exists")
    if not parents:
        os.mkdir(path, _DIR_MODE)
        return
    missing: list[str] = []
    head = path.rstrip("/")
    while head and not os.path.lexists(head):
        missing.append(head)
        head = os.path.dirname(head)
    for directory in reversed(missing):
        os.mkdir(directory, _DIR_MODE)


def _delete_directory(path: str, recursive: bool) -> None:
    mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):  # a file or a symbolic link (even to a directory)
        raise _KindError(errno.ENOTDIR, "not a directory", "notdir")
    if recursive:
        shutil.rmtree(path)  # raises on the first entry it cannot remove
    else:
        os.rmdir(path)


def _entry(path: str, name: str) -> dict[str, Any]:
    """One GuestFileInfo as VMware Tools reports it: type from lstat, attributes from stat."""
    link = os.lstat(path)
    if stat.S_ISLNK(link.st_mode):
        kind, target = "symlink", os.readlink(path)
    else:
        kind, target = ("directory" if stat.S_ISDIR(link.st_mode) else "file"), None
    try:
        info = os.stat(path)
    except OSError:  # a dangling link: what the link itself says
        info = link
    return {"name": name, "type": kind, "size": link.st_size if stat.S_ISREG(link.st_mode) else 0,
            "mtime": info.st_mtime, "atime": info.st_atime, "ctime": info.st_ctime, "uid": info.st_uid,
            "gid": info.st_gid, "mode": info.st_mode, "target": target}


def _display(name: str) -> str:
    """A name as VMware Tools reports it: one not valid UTF-8 becomes three substitution characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "\ufffd" * 3
    return name


def _list(path: str) -> list[dict[str, Any]]:
    link = os.lstat(path)
    if stat.S_ISDIR(link.st_mode):
        names = [".", "..", *sorted(os.listdir(path))]
        entries = []
        for name in names:
            try:
                entries.append(_entry(os.path.join(path, name), _display(name)))
            except FileNotFoundError:  # removed while listing: Tools skips it too
                continue
        return entries
    # A file (or a link, even to a directory) lists itself, named by the path as the caller wrote it.
    return [{**_entry(path, path), "single": True}]


def main() -> None:
    request = json.loads(sys.argv[1])
    try:
        _enter_mount_namespace(int(request["pid"]))
        _become(int(request["uid"]), int(request["gid"]), [int(g) for g in request["groups"]])
        os.umask(0o022)
        _perform(request)
    except OSError as exc:
        error = {"errno": exc.errno, "message": exc.strerror or str(exc), "kind": getattr(exc, "kind", None)}
        sys.stderr.write(json.dumps(error))
        sys.stdout.flush()
        sys.exit(_ERROR_STATUS)


if __name__ == "__main__":
    main()
