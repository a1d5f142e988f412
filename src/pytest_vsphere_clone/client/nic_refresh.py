"""Tell an instant clone's guest about its new NIC (new MAC): renew its network, per OS and per tool.

An instant clone resumes with the source's network state; the guest must re-run DHCP (and
on a running source the NIC was just reconnected). Linux guests use whatever manages their
network (NetworkManager, systemd-networkd/netplan, dhclient, udhcpc, else a link bounce),
detected and run in one guest command. Windows guests bounce each adapter with netsh and
renew with ipconfig. A user command replaces all of this.
"""

from __future__ import annotations

import logging
import re
import time
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
            # The link comes back asynchronously after "enable"; renew until the adapter has it.
            while result.exit_status != 0 and attempt < self.renew_attempts and time.monotonic() < deadline:
                time.sleep(self.renew_pause)
                attempt += 1
                result = self.guest.run(f'ipconfig /renew "{adapter}"', max(1.0, deadline - time.monotonic()))
            self._check(result, f"netsh/ipconfig refresh of {adapter}")
        return NicRefreshResult("netsh", tuple(adapters), result)

    def _check(self, result: CommandResult, what: str) -> None:
        if result.exit_status != 0:
            detail = (result.stderr.strip() or result.stdout.strip() or "no output").replace("\n", " ")[-300:]
            raise NicRefreshFailed(f"{what} of the network in VM {self.guest.vm_name!r} exited with "
                                   f"{result.exit_status}: {detail}; set --vsphere-network-refresh-command to a "
                                   f"command that renews the guest's address")


def refresh_nics(guest: GuestOperations, command: str | None = None, timeout: float = 120.0) -> NicRefreshResult:
    """Refresh the guest NICs of an instant clone (see :class:`NicRefresher`)."""
    return NicRefresher(guest, command).refresh(timeout)
