"""Guest runtime errors as the faults a vCenter answers Guest Operations with.

The guests raise their own errors (``guests/errors.py``: login, file, process, argument); a Guest
Operations call or a file-transfer offer runs its guest call inside ``faults_of(path)``, which turns
such an error into the vSphere fault a real vCenter sends for it (InvalidGuestLogin, FileNotFound,
GuestPermissionDenied, ...), naming the file where the fault has a ``file`` property.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from .guests import errors as guest_errors
from .guests.ops.files import GuestDirectoryNotEmpty, GuestNotADirectory


class faults_of:
    """Turn guest runtime errors into the faults a vCenter answers with."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, guest_errors.GuestError):
            return
        raise to_fault(exc, self.path) from None


def to_fault(exc: guest_errors.GuestError, path: str = "") -> Any:
    """The vSphere fault for a guest runtime error."""
    message = str(exc)
    file = getattr(exc, "path", "") or path
    if isinstance(exc, guest_errors.GuestLoginError):
        return vim.fault.InvalidGuestLogin(msg="Failed to authenticate with the guest operating system using the "
                                               "supplied credentials.")
    if isinstance(exc, guest_errors.GuestOperationsUnavailable | guest_errors.GuestNotRunning):
        return vim.fault.GuestOperationsUnavailable(msg="The guest operations agent could not be contacted.")
    if isinstance(exc, guest_errors.GuestFileNotFound):
        return vim.fault.FileNotFound(msg=f"File {file} was not found", file=file)
    if isinstance(exc, guest_errors.GuestFileExists):
        return vim.fault.FileAlreadyExists(msg=f"File {file} already exists", file=file)
    if isinstance(exc, guest_errors.GuestNotAFile):
        return vim.fault.NotAFile(msg=f"{file} is not a file", file=file)
    if isinstance(exc, GuestNotADirectory):
        return vim.fault.NotADirectory(msg=f"{file} is not a directory", file=file)
    if isinstance(exc, GuestDirectoryNotEmpty):
        return vim.fault.DirectoryNotEmpty(msg=f"The directory {file} is not empty", file=file)
    if isinstance(exc, guest_errors.GuestFileAccessDenied):
        return vim.fault.GuestPermissionDenied(msg=f"Permission denied: {file}")
    if isinstance(exc, guest_errors.GuestProcessNotFound):
        return vim.fault.GuestProcessNotFound(msg=message, pid=0)
    if isinstance(exc, guest_errors.GuestInvalidArgument):
        return vmodl.fault.InvalidArgument(msg=message, invalidProperty=file or "path")
    return vim.fault.GuestOperationsFault(msg=message)

