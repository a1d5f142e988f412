"""Tell an instant clone's guest about its new NIC (new MAC): renew its network, per OS and per tool.

An instant clone resumes with the source's network state; the guest must re-run DHCP (and
on a running source the NIC was just reconnected). Linux guests use whatever manages their
network (NetworkManager, systemd-networkd/netplan, dhclient, udhcpc, else a link bounce),
detected and run in one guest command. Windows guests bounce each adapter with netsh and
renew with ipconfig. A user command replaces all of this.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .discovery import ipconfig_adapters
from .errors import NicRefreshFailed
from .guest_ops import GuestOperations
from .result import CommandResult

log = logging.getLogger(__name__)

#: Interfaces that belong to container/VM bridges, never to the VM's own NIC.
_SKIP_INTERFACES = "lo|docker.*|virbr.*|br-.*|cni.*|flannel.*|cali.*"

#: Per-method refresh of one interface ``$i`` (POSIX sh), tried in this order.
LINUX_METHODS: dict[str, tuple[str, str]] = {
    # name: (detection test, refresh of "$i")
    "networkmanager": ('command -v nmcli >/dev/null 2>&1 && nmcli -t -f RUNNING general 2>/dev/null | grep -q running',
                       'nmcli device disconnect "$i" >/dev/null 2>&1; nmcli device connect "$i"'),
    "systemd-networkd": ("command -v networkctl >/dev/null 2>&1 && systemctl is-active --quiet systemd-networkd "
                         "2>/dev/null",
                         'networkctl reconfigure "$i" 2>/dev/null || { ip link set "$i" down; ip link set "$i" up; '
                         'networkctl renew "$i"; }'),
    "netplan": ("command -v netplan >/dev/null 2>&1", "netplan apply"),
    "dhclient": ("command -v dhclient >/dev/null 2>&1",
                 'dhclient -r "$i" 2>/dev/null; ip link set "$i" down; ip link set "$i" up; dhclient -1 "$i"'),
    "udhcpc": ("command -v udhcpc >/dev/null 2>&1",
               'ip link set "$i" down; ip link set "$i" up; udhcpc -i "$i" -n -q'),
    "link-bounce": ("true", 'ip link set "$i" down && ip link set "$i" up'),
}
_REPORT = re.compile(r"^nic-refresh: (?P<method>\S+)(?P<ifaces>.*)$", re.MULTILINE)
#: What Windows prints when a command needs a full administrator token: ipconfig's "The requested
#: operation requires elevation." and netsh's "... requires elevation (Run as administrator)."
_NEEDS_ELEVATION = "requires elevation"


def needs_elevation(result: CommandResult) -> bool:
    """True when a failed Windows command was refused for lack of elevation (UAC's filtered token)."""
    return result.exit_status != 0 and _NEEDS_ELEVATION in result.stdout + result.stderr


class RefreshNeedsElevation(NicRefreshFailed):
    """A Windows NIC refresh refused for lack of elevation: Guest Operations gave the user a filtered token."""

    def __init__(self, vm_name: str, user: str, what: str, line: str) -> None:
        self.vm_name = vm_name
        self.user = user
        # Guest Operations log on without UAC elevation: only the built-in Administrator gets a full token
        # (ansible/ansible #66472, vmware/pyvmomi-community-samples #272).
        super().__init__(
            f"{what} of the network in VM {vm_name!r} was refused ({line.strip()}): Windows runs Guest Operations "
            f"of guest user {user!r} with a filtered, non-elevated token (UAC), as it does for every "
            f"administrator but the built-in Administrator, and renewing the address needs elevation; pass the "
            f"built-in Administrator as --vsphere-guest-user, or a --vsphere-network-refresh-command that works "
            f"without elevation")


def linux_script(methods: dict[str, tuple[str, str]] | None = None) -> str:
    """One POSIX sh script that finds the NICs and refreshes them with the first available method."""
    methods = methods or LINUX_METHODS
    lines = [
        f"ifaces=$(ip -o link show | awk -F': ' '{{print $2}}' | cut -d@ -f1 | grep -vxE '{_SKIP_INTERFACES}')",
        'status=0',
    ]
    branches = []
    for index, (name, (test, action)) in enumerate(methods.items()):
        keyword = "if" if index == 0 else "elif"
        if name == "netplan":  # one call for every interface
            body = f'echo "nic-refresh: {name}" $ifaces; {action} || status=$?'
        else:
            body = f'echo "nic-refresh: {name}" $ifaces; for i in $ifaces; do {action} || status=$?; done'
        branches.append(f"{keyword} {test}; then {body}")
    lines.append("\n".join(branches) + "\nfi")
    lines.append("exit $status")
    return "\n".join(lines)


_PRELUDE_STATUS = re.compile(r"^nic-refresh-status: (?P<status>\d+)[ \t\r]*$", re.MULTILINE)


def linux_prelude() -> str:
    """The Linux refresh as the first part of another guest command (one Guest Operations round
    for both): its report and exit status go to stderr, so the command's stdout stays its own."""
    return f'( {linux_script()}\n) 1>&2; echo "nic-refresh-status: $?" 1>&2'


def check_linux_prelude(guest: GuestOperations, result: CommandResult) -> NicRefreshResult:
    """How the :func:`linux_prelude` refresh went, from the combined command's stderr;
    NicRefreshFailed if it failed."""
    status_line = _PRELUDE_STATUS.search(result.stderr)
    status = int(status_line.group("status")) if status_line else result.exit_status or 1
    report = _REPORT.search(result.stderr)
    method = report.group("method") if report else "unknown"
    interfaces = tuple(report.group("ifaces").split()) if report else ()
    own = CommandResult(status, result.stderr, result.stderr)
    NicRefresher(guest)._check(own, f"{method} refresh")
    log.info("refreshed NICs %s of %s with %s", ", ".join(interfaces), guest.vm_name, method)
    return NicRefreshResult(method, interfaces, own)


def windows_prelude(adapters: Sequence[str] = ()) -> str:
    """The Windows refresh as the first part of another command (one Guest Operations round for
    both): its output goes to stderr, then a status line. Without adapter names it is a plain
    ``ipconfig /renew`` of every adapter (no name needed, so no listing round first: what an
    instant clone's guest needs to take an address for its new NIC); with names, each adapter is
    also bounced with netsh first."""
    chain = " & ".join(windows_command(adapter) for adapter in adapters) if adapters else "ipconfig /renew"
    return f"({chain}) 1>&2 && (echo nic-refresh-status: 0 1>&2) || (echo nic-refresh-status: 1 1>&2)"


def check_windows_prelude(guest: GuestOperations, result: CommandResult, timeout: float = 120.0,
                          adapters: Sequence[str] = ()) -> NicRefreshResult:
    """How the :func:`windows_prelude` refresh (of ``adapters``, or of all) went. A renew can fail
    while an adapter is still coming up: then the full refresh runs (adapters listed, bounced with
    netsh, renewed with retries; NicRefreshFailed if that fails too), and the result says ``redone``."""
    status_line = _PRELUDE_STATUS.search(result.stderr.replace("\r", ""))
    if status_line and status_line.group("status") == "0":
        return NicRefreshResult("netsh" if adapters else "ipconfig", tuple(adapters), result)
    if _NEEDS_ELEVATION in result.stderr:
        # Refused for want of elevation: the full refresh (netsh, then ipconfig) would be refused the same.
        NicRefresher(guest)._check(CommandResult(1, result.stderr, ""), "ipconfig /renew")
    log.info("combined NIC refresh of %s did not renew (%s); refreshing on its own", guest.vm_name,
             result.stderr.strip()[-200:] or "no output")
    return dataclasses.replace(NicRefresher(guest).refresh(timeout), redone=True)


def windows_command(adapter: str) -> str:
    """Disable and enable ``adapter`` with netsh, then renew its DHCP lease."""
    return (f'netsh interface set interface "{adapter}" disable & netsh interface set interface "{adapter}" enable '
            f'& ipconfig /renew "{adapter}"')


@dataclass(frozen=True)
class NicRefreshResult:
    """How the NIC was refreshed, on which interfaces, and the last command's result."""

    method: str
    interfaces: tuple[str, ...]
    result: CommandResult
    #: A combined refresh (see :func:`windows_prelude`) failed and ran again on its own: the
    #: combined command's other output predates the refresh.
    redone: bool = False


class NicRefresher:
    """Refreshes the guest network of one VM through Guest Operations."""

    def __init__(self, guest: GuestOperations, command: str | None = None, *, renew_attempts: int = 3,
                 renew_pause: float = 1.0) -> None:
        self.guest = guest
        self.command = command
        self.renew_attempts = renew_attempts
        self.renew_pause = renew_pause

    def refresh(self, timeout: float = 120.0) -> NicRefreshResult:
        """Run the override command, or the per-OS refresh; NicRefreshFailed if it fails."""
        if self.command:
            result = self.guest.run(self.command, timeout)
            self._check(result, "custom command")
            return NicRefreshResult("custom", (), result)
        if self.guest.os_family == "windows":
            return self._windows(timeout)
        return self._linux(timeout)

    def _linux(self, timeout: float) -> NicRefreshResult:
        result = self.guest.run(linux_script(), timeout)
        report = _REPORT.search(result.stdout)
        method = report.group("method") if report else "unknown"
        interfaces = tuple(report.group("ifaces").split()) if report else ()
        self._check(result, f"{method} refresh")
        log.info("refreshed NICs %s of %s with %s", ", ".join(interfaces), self.guest.vm_name, method)
        return NicRefreshResult(method, interfaces, result)

    def _windows(self, timeout: float) -> NicRefreshResult:
        deadline = time.monotonic() + timeout
        listing = self.guest.run("ipconfig", timeout)
        adapters = ipconfig_adapters(listing.stdout) or ["Ethernet0"]
        result = listing
        for adapter in adapters:
            result = self.guest.run(windows_command(adapter), max(1.0, deadline - time.monotonic()))
            attempt = 1
            # The link comes back asynchronously after "enable"; renew until the adapter has it (a refusal
            # for want of elevation stays one). Each try enables the adapter again: "no adapter is in the
            # state permissible" is also what an enable that did not take leaves, which renewing alone
            # would repeat to the end (enabling an enabled adapter changes nothing).
            while result.exit_status != 0 and not needs_elevation(result) and attempt < self.renew_attempts \
                    and time.monotonic() < deadline:
                time.sleep(self.renew_pause)
                attempt += 1
                again = f'netsh interface set interface "{adapter}" enable & ipconfig /renew "{adapter}"'
                result = self.guest.run(again, max(1.0, deadline - time.monotonic()))
            self._check(result, f"netsh/ipconfig refresh of {adapter}")
        return NicRefreshResult("netsh", tuple(adapters), result)

    def _check(self, result: CommandResult, what: str) -> None:
        if self.guest.os_family == "windows" and needs_elevation(result):
            output = (result.stdout + "\n" + result.stderr).splitlines()
            line = next(line for line in output if _NEEDS_ELEVATION in line)
            raise RefreshNeedsElevation(self.guest.vm_name, self.guest.username, what, line)
        if result.exit_status != 0:
            detail = (result.stderr.strip() or result.stdout.strip() or "no output").replace("\n", " ")[-300:]
            raise NicRefreshFailed(f"{what} of the network in VM {self.guest.vm_name!r} exited with "
                                   f"{result.exit_status}: {detail}; set --vsphere-network-refresh-command to a "
                                   f"command that renews the guest's address")


def refresh_nics(guest: GuestOperations, command: str | None = None, timeout: float = 120.0) -> NicRefreshResult:
    """Refresh the guest NICs of an instant clone (see :class:`NicRefresher`)."""
    return NicRefresher(guest, command).refresh(timeout)
