"""Plain data exchanged with the simulator: what a guest is, and what it reports."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

GuestFamily = Literal["linux", "windows"]

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# Names that passwd(5), sshd and setpriv all accept; Windows-style "Administrator" included.
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass
class GuestSpec:
    """Everything needed to boot one VM's guest.

    ``disk_dir`` is the VM's persistent disk (accounts, home directories, ssh host
    keys, DHCP leases, Windows drive C:). It survives power cycles; copying it
    gives a clone the same host keys, as with real clones.
    """

    vm_id: str
    hostname: str
    mac: str
    family: GuestFamily
    disk_dir: Path
    user: str
    password: str
    authorized_keys: list[str] = field(default_factory=list)
    winrm_port: int = 5985
    #: Seconds after boot before the guest's DHCP client starts: how long the guest OS takes to bring
    #: its network up (a Windows guest gets its address many seconds after VMware Tools run).
    network_delay: float = 0.0
    #: The same as a wall-clock time (time.time()), when the delay was decided before the guest's own
    #: set-up began: the guest's set-up time then counts against it, as a real boot's would.
    network_at: float | None = None
    #: Seconds a reset NIC (an instant clone's, on its refresh) needs before DHCP can run: driver
    #: reload and link negotiation in the guest OS.
    refresh_delay: float = 0.0
    #: (min, max) seconds powershell.exe takes to start in a Windows guest (each start draws one).
    powershell_start: tuple[float, float] = (0.0, 0.0)

    def network_start_delay(self) -> float:
        """Seconds from now until the guest's DHCP client starts."""
        if self.network_at is not None:
            return max(0.0, self.network_at - time.time())
        return self.network_delay

    def __post_init__(self) -> None:
        self.mac = self.mac.lower()
        self.disk_dir = Path(self.disk_dir)
        if not _MAC_RE.match(self.mac):
            raise ValueError(f"invalid MAC address {self.mac!r}")
        if int(self.mac[:2], 16) & 1:
            raise ValueError(f"MAC address {self.mac!r} is a multicast address")
        if self.family not in ("linux", "windows"):
            raise ValueError(f"unknown guest family {self.family!r}")
        if not _USER_RE.match(self.user):
            raise ValueError(f"invalid guest user name {self.user!r}")
        if len(self.hostname) > 64 or not all(_HOST_LABEL_RE.match(p) for p in self.hostname.split(".")):
            raise ValueError(f"invalid hostname {self.hostname!r}")
        if self.refresh_delay < 0:
            raise ValueError(f"invalid refresh delay {self.refresh_delay}")
        if self.network_delay < 0:
            raise ValueError(f"invalid network delay {self.network_delay}")
        if not 0 < self.winrm_port < 65536:
            raise ValueError(f"invalid WinRM port {self.winrm_port}")
        if any("\n" in key for key in self.authorized_keys):
            raise ValueError("an authorized key must be a single line")


@dataclass(frozen=True)
class GuestIpAddress:
    """One address configured on a guest interface."""

    ip: str
    prefix_length: int


@dataclass(frozen=True)
class GuestNic:
    """A network interface as the guest kernel reports it."""

    name: str
    mac: str
    up: bool
    ip_addresses: tuple[GuestIpAddress, ...]


@dataclass(frozen=True)
class GuestProcessInfo:
    """A guest process, as ``ListProcessesInGuest`` reports it."""

    pid: int
    name: str
    owner: str
    cmd_line: str
    start_time: datetime
    end_time: datetime | None = None
    exit_code: int | None = None
