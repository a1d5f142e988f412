"""Exceptions raised by the guest runtime.

Each class corresponds to one vSphere fault, so the SOAP layer can map them 1:1
(noted per class).
"""

from __future__ import annotations


class GuestError(Exception):
    """Base class of every guest runtime error."""


class GuestHostError(GuestError):
    """The host-side machinery failed (bridge, DHCP server, namespace, daemon). -> SystemError."""


class GuestNotRunning(GuestError):
    """The guest is powered off or not booted yet. -> ToolsUnavailable."""


class GuestOperationsUnavailable(GuestError):
    """The guest cannot serve guest operations right now (e.g. frozen). -> GuestOperationsUnavailable."""


class GuestLoginError(GuestError):
    """Unknown user, wrong password or locked account. -> InvalidGuestLogin."""


class GuestInvalidArgument(GuestError):
    """A malformed argument, e.g. a relative guest path. -> InvalidArgument."""


class GuestFileError(GuestError):
    """Base of file-related guest errors. -> FileFault."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class GuestFileNotFound(GuestFileError):
    """The guest path does not exist. -> FileNotFound."""


class GuestProgramNotFound(GuestFileNotFound):
    """The program to start does not exist in the guest. -> FileNotFound."""


class GuestFileExists(GuestFileError):
    """The file exists and overwriting was not requested. -> FileAlreadyExists."""


class GuestNotAFile(GuestFileError):
    """The path names a directory or other non-regular file. -> NotAFile."""


class GuestFileAccessDenied(GuestFileError):
    """The guest user lacks permission for the path. -> GuestPermissionDenied."""


class GuestProcessNotFound(GuestError):
    """No such process in the guest. -> GuestProcessNotFound."""
