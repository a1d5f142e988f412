"""What a simulated Windows guest knows about itself: identity, drives and adapters.

A Windows-family simulated VM is a Linux network namespace.  The cmd.exe dialect and the WinRM
server running inside it see the world through a :class:`WindowsGuestContext`: the Windows host
name and user, a host directory standing in for the VM's disks (``<disk_root>/C`` is ``C:\\``),
and a :class:`~.network.NetworkBackend` that reads and changes the namespace's real interfaces.
Both programs build it from the same command-line options (:func:`add_context_arguments`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..accounts import is_elevated_by_guest_operations
from ..paths import BACKDOOR_SOCKET
from .network import Adapter, LinuxNetwork, NetInterface, NetworkBackend, NetworkError

__all__ = [
    "FILE_NOT_FOUND",
    "PATH_NOT_FOUND",
    "WindowsGuestContext",
    "WindowsPathError",
    "add_context_arguments",
    "context_from_args",
]

#: Where VMware Tools for Windows installs its programs, and the ones the dialect emulates there
#: (cmd/vmware_tools.py). Real files, so StartProgramInGuest's check that the program exists is honest.
VMWARE_TOOLS_DIR = "C:\\Program Files\\VMware\\VMware Tools"
TOOLS_PROGRAM_FILES = ("vmtoolsd.exe", "rpctool.exe")

#: Messages cmd.exe prints for path errors; callers show them verbatim.
PATH_NOT_FOUND = "The system cannot find the path specified."
FILE_NOT_FOUND = "The system cannot find the file specified."


class WindowsPathError(Exception):
    """A Windows path cannot be mapped onto the guest disk; the message is cmd.exe's wording."""


_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class WindowsGuestContext:
    """Identity, disk and network of one simulated Windows guest.

    ``interface_names`` maps Windows adapter names to real interface names ("Ethernet0" -> "eth0");
    when empty every non-loopback interface is shown, ``ethN`` as ``EthernetN``.
    """

    hostname: str
    disk_root: Path
    username: str = "Administrator"
    interface_names: Mapping[str, str] = field(default_factory=dict)
    network: NetworkBackend = field(default_factory=LinuxNetwork)
    #: What ``ver`` reports; the default is Windows Server 2019.
    os_version: str = "10.0.17763.1"
    #: The VMware backdoor as the guest reaches it (vmtoolsd.exe --cmd, rpctool.exe).
    backdoor_socket: str = BACKDOOR_SOCKET
    #: (min, max) seconds powershell.exe takes to start (the simulator's latency profile).
    powershell_start: tuple[float, float] = (0.0, 0.0)
    #: Whether programs run with a full administrator token. False: UAC's filtered token, which a
    #: member of Administrators other than the built-in Administrator gets through Guest Operations
    #: (see accounts.is_elevated_by_guest_operations); commands that need elevation then refuse.
    elevated: bool = True

    def __post_init__(self) -> None:
        self.disk_root = Path(self.disk_root)

    # -- identity -----------------------------------------------------------------------------

    @property
    def computer_name(self) -> str:
        """NetBIOS-style name (%COMPUTERNAME%): upper case, at most 15 characters."""
        return self.hostname.split(".", 1)[0].upper()[:15]

    @property
    def home(self) -> str:
        return f"C:\\Users\\{self.username}"

    def environment(self) -> dict[str, str]:
        """The environment a fresh cmd.exe of this user starts with."""
        home = self.home
        return {
            "ALLUSERSPROFILE": "C:\\ProgramData",
            "APPDATA": f"{home}\\AppData\\Roaming",
            "CommonProgramFiles": "C:\\Program Files\\Common Files",
            "COMPUTERNAME": self.computer_name,
            "ComSpec": "C:\\Windows\\system32\\cmd.exe",
            "HOMEDRIVE": "C:",
            "HOMEPATH": home[2:],
            "LOCALAPPDATA": f"{home}\\AppData\\Local",
            "NUMBER_OF_PROCESSORS": str(os.cpu_count() or 1),
            "OS": "Windows_NT",
            # The Tools installer's directory is on the Path, so a bare ``vmtoolsd --cmd`` works too.
            "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
            f"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\;{VMWARE_TOOLS_DIR}\\",
            "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
            "PROCESSOR_ARCHITECTURE": "AMD64",
            "ProgramData": "C:\\ProgramData",
            "ProgramFiles": "C:\\Program Files",
            "ProgramFiles(x86)": "C:\\Program Files (x86)",
            "PROMPT": "$P$G",
            "PUBLIC": "C:\\Users\\Public",
            "SystemDrive": "C:",
            "SystemRoot": "C:\\Windows",
            "TEMP": f"{home}\\AppData\\Local\\Temp",
            "TMP": f"{home}\\AppData\\Local\\Temp",
            "USERDOMAIN": self.computer_name,
            "USERNAME": self.username,
            "USERPROFILE": home,
            "windir": "C:\\Windows",
        }

    def prepare_disk(self) -> None:
        """Create the directories every Windows install has (idempotent)."""
        for win in (
            "C:\\Windows\\System32",
            "C:\\Windows\\Temp",
            "C:\\ProgramData",
            "C:\\Program Files",
            "C:\\Users\\Public",
            f"{self.home}\\AppData\\Local\\Temp",
            f"{self.home}\\AppData\\Roaming",
            f"{self.home}\\Desktop",
            VMWARE_TOOLS_DIR,
        ):
            self.host_path(win).mkdir(parents=True, exist_ok=True)
        for name in TOOLS_PROGRAM_FILES:
            program = self.host_path(f"{VMWARE_TOOLS_DIR}\\{name}")
            if not program.exists():
                program.write_text("emulated by pytest_vsphere_clone.simulator.guests.windows.cmd.vmware_tools\n")

    # -- paths --------------------------------------------------------------------------------

    def absolute(self, path: str, cwd: str = "C:\\") -> str:
        """Normalise a Windows path against ``cwd``; ``..`` above the drive root is an error."""
        path = path.replace("/", "\\")
        if not path or "\0" in path:
            raise WindowsPathError(PATH_NOT_FOUND)
        if path.startswith("\\\\"):
            # UNC paths would need a network share; there is none.
            raise WindowsPathError("The network path was not found.")
        if _DRIVE.match(path):
            drive, rest = path[:2].upper(), path[2:]
            if not rest.startswith("\\"):
                base = cwd if cwd[:2].upper() == drive else drive + "\\"
                rest = base[2:].rstrip("\\") + "\\" + rest
        elif path.startswith("\\"):
            drive, rest = cwd[:2].upper(), path
        else:
            drive, rest = cwd[:2].upper(), cwd[2:].rstrip("\\") + "\\" + path
        parts: list[str] = []
        for part in rest.split("\\"):
            # Windows ignores trailing dots and spaces in path components.
            part = part.rstrip(" .") if part not in (".", "..") else part
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise WindowsPathError(PATH_NOT_FOUND)
                parts.pop()
            elif ":" in part or any(ch in part for ch in '<>"|?*'):
                raise WindowsPathError("The filename, directory name, or volume label syntax is incorrect.")
            else:
                parts.append(part)
        return drive + "\\" + "\\".join(parts)

    def host_path(self, path: str, cwd: str = "C:\\") -> Path:
        """Map a Windows path onto the guest disk, matching existing names case-insensitively."""
        win = self.absolute(path, cwd)
        drive_dir = self.disk_root / win[0].upper()
        if win[0].upper() != "C" and not drive_dir.is_dir():
            raise WindowsPathError(PATH_NOT_FOUND)  # only C: is always present
        current = drive_dir
        for part in win[3:].split("\\"):
            if not part:
                continue
            candidate = current / part
            if not candidate.exists() and current.is_dir():
                folded = part.casefold()
                with contextlib.suppress(OSError):
                    candidate = next((e for e in current.iterdir() if e.name.casefold() == folded), candidate)
            current = candidate
        # A symlink planted on the disk must not lead the guest outside it.
        root = self.disk_root.resolve()
        if not current.resolve().is_relative_to(root):
            raise WindowsPathError("Access is denied.")
        return current

    # -- network ------------------------------------------------------------------------------

    def adapters(self, *, include_loopback: bool = False) -> list[Adapter]:
        """The real interfaces visible as Windows adapters, in Windows order."""
        interfaces = self.network.interfaces()
        by_name = {iface.name: iface for iface in interfaces}
        named: list[tuple[str, NetInterface]] = []
        if self.interface_names:
            named = [
                (alias, by_name[real]) for alias, real in self.interface_names.items() if real in by_name
            ]
        else:
            taken: set[str] = set()
            pending = []
            for iface in interfaces:
                if iface.loopback:
                    continue
                match = re.fullmatch(r"eth(\d+)", iface.name)
                if match and f"Ethernet{match.group(1)}" not in taken:
                    taken.add(f"Ethernet{match.group(1)}")
                    named.append((f"Ethernet{match.group(1)}", iface))
                else:
                    pending.append(iface)
            number = 0
            for iface in pending:
                while f"Ethernet{number}" in taken:
                    number += 1
                taken.add(f"Ethernet{number}")
                named.append((f"Ethernet{number}", iface))
            named.sort(key=lambda item: item[1].index)
        adapters = [Adapter(alias, iface, ordinal) for ordinal, (alias, iface) in enumerate(named, 1)]
        if include_loopback:
            loopbacks = [iface for iface in interfaces if iface.loopback]
            adapters = [Adapter("Loopback Pseudo-Interface 1", lo, 0) for lo in loopbacks[:1]] + adapters
        return adapters

    def adapter(self, alias: str) -> Adapter | None:
        folded = alias.casefold()
        return next((a for a in self.adapters() if a.alias.casefold() == folded), None)

    def renew_dhcp(self, alias: str) -> None:
        self._real(alias, self.network.renew_dhcp)

    def release_dhcp(self, alias: str) -> None:
        self._real(alias, self.network.release_dhcp)

    def set_link(self, alias: str, up: bool) -> None:
        self._real(alias, lambda name: self.network.set_link(name, up))

    def _real(self, alias: str, action: Callable[[str], None]) -> None:
        adapter = self.adapter(alias)
        if adapter is None:
            raise NetworkError(f"No adapter named {alias}.")
        action(adapter.interface.name)


def _interface_mapping(values: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for position, value in enumerate(values):
        alias, sep, real = value.partition("=")
        if not sep:
            real = alias
            match = re.fullmatch(r"eth(\d+)", real)
            alias = f"Ethernet{match.group(1) if match else position}"
        mapping[alias] = real
    return mapping


def add_context_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the guest programs (cmd/cli.py, winrm/server.py) to build a context."""
    parser.add_argument("--hostname", default=None, help="Windows host name (default: the Linux one)")
    parser.add_argument("--disk-root", required=True, type=Path, help="host directory holding the guest's C:")
    parser.add_argument("--user", default="Administrator", help="Windows user name")
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="[ALIAS=]IFNAME",
        help="real interface shown as an adapter, e.g. eth0 or Ethernet0=eth0 (repeatable; default: all)",
    )
    parser.add_argument(
        "--dhcp-command",
        default=os.environ.get("VSPHERE_CLONE_DHCP_COMMAND") or None,
        help="DHCP renew command; {interface} is replaced, else the interface is appended",
    )
    parser.add_argument(
        "--dhcp-release-command",
        default=os.environ.get("VSPHERE_CLONE_DHCP_RELEASE_COMMAND") or None,
        help="DHCP release command (default: flush the leased addresses)",
    )
    parser.add_argument("--os-version", default="10.0.17763.1", help="version reported by ver")
    parser.add_argument("--powershell-start", default="0,0", type=_seconds_range, metavar="MIN,MAX",
                        help="seconds powershell.exe takes to start, drawn per start (default: 0,0)")


def _seconds_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in seconds, got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return low, high


def context_from_args(args: argparse.Namespace) -> WindowsGuestContext:
    return WindowsGuestContext(
        hostname=args.hostname or socket.gethostname(),
        disk_root=args.disk_root,
        username=args.user,
        interface_names=_interface_mapping(args.interface),
        network=LinuxNetwork(args.dhcp_command, args.dhcp_release_command),
        os_version=args.os_version,
        powershell_start=args.powershell_start,
        # Guest Operations run programs of any other administrator with UAC's filtered token. (Over
        # WinRM a local administrator other than the built-in one gets no full token either unless
        # LocalAccountTokenFilterPolicy is 1; the simulated WinRM server serves the built-in one only.)
        elevated=is_elevated_by_guest_operations(args.user),
    )
