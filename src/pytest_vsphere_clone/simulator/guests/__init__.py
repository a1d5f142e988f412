"""Real guests behind simulated VMs: network namespaces with sshd, DHCP, WinRM.

Each powered-on VM is a network namespace on a per-simulator bridge, with its own
mount and UTS namespaces (accounts, hostname, /tmp), a real sshd (Linux) or the
WinRM server (Windows), and an address from the bridge's DHCP server. See
``GuestHost`` and ``Guest``.
"""

from .errors import (
    GuestError,
    GuestFileAccessDenied,
    GuestFileError,
    GuestFileExists,
    GuestFileNotFound,
    GuestHostError,
    GuestInvalidArgument,
    GuestLoginError,
    GuestNotAFile,
    GuestNotRunning,
    GuestOperationsUnavailable,
    GuestProcessNotFound,
    GuestProgramNotFound,
)
from .guest import FREEZE_RPC, Guest
from .host import BackdoorHandler, GuestHost, missing_prerequisites
from .models import GuestFamily, GuestIpAddress, GuestNic, GuestProcessInfo, GuestSpec

__all__ = [
    "FREEZE_RPC",
    "BackdoorHandler",
    "Guest",
    "GuestError",
    "GuestFamily",
    "GuestFileAccessDenied",
    "GuestFileError",
    "GuestFileExists",
    "GuestFileNotFound",
    "GuestHost",
    "GuestHostError",
    "GuestInvalidArgument",
    "GuestIpAddress",
    "GuestLoginError",
    "GuestNic",
    "GuestNotAFile",
    "GuestNotRunning",
    "GuestOperationsUnavailable",
    "GuestProcessInfo",
    "GuestProcessNotFound",
    "GuestProgramNotFound",
    "GuestSpec",
    "missing_prerequisites",
]
