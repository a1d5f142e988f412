"""VMware Tools' reports: when each running guest's Tools report, and what they put in ``guest.*``.

A guest's Tools come up after its boot (``schedule``) or at once (``up``: the initial inventory, an
instant clone), report the guest's real interfaces, host name and primary address into the VM's
``guest`` properties, then report again every ``tools.poll`` seconds of the profile, from one thread
for all VMs. A power-off, reboot or failed instant clone ``cancel``s the VM's next report.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from pyVmomi import vim

from .guests import errors as guest_errors
from .objects.virtual_machine import VirtualMachine

if TYPE_CHECKING:
    from .guests.guest_host import GuestHost
    from .vcenter import VCenter


class ToolsReports:
    """The Tools' report schedule of every powered-on VM, run by one thread."""

    def __init__(self, vc: VCenter, host: GuestHost) -> None:
        self.vc = vc
        self.host = host
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_report: dict[str, float] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sim-tools", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def schedule(self, vm: VirtualMachine, when: float) -> None:
        """The VM's Tools are not running yet; they come up at ``when``."""
        with self.vc.lock:
            self._next_report[vm.mo_id] = when
            vm.tools.running = False

    def up(self, vm: VirtualMachine, now: float) -> None:
        """The VM's Tools run: report now, and again a poll interval later."""
        with self.vc.lock:
            if vm.power_state != "poweredOn" or not vm.tools_installed:
                return
            vm.tools.running = True
            self._report(vm)
            self._next_report[vm.mo_id] = now + self.vc.profile.duration("tools.poll")

    def cancel(self, vm: VirtualMachine) -> None:
        """No more reports from the VM's Tools (until scheduled again)."""
        with self.vc.lock:
            self._next_report.pop(vm.mo_id, None)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            now = time.time()
            with self.vc.lock:
                due = [(mo_id, when) for mo_id, when in self._next_report.items() if when <= now]
            for mo_id, when in due:
                with self.vc.lock:
                    if self._next_report.get(mo_id) != when:
                        continue  # cancelled or rescheduled meanwhile (a reboot, a power-off)
                    vm = self.vc.objects.get(mo_id)
                    if not isinstance(vm, VirtualMachine) or vm.power_state != "poweredOn":
                        self._next_report.pop(mo_id, None)
                        continue
                    if not vm.tools.running:
                        self.up(vm, now)
                        continue
                    self._report(vm)
                    self._next_report[mo_id] = now + self.vc.profile.duration("tools.poll")

    def _report(self, vm: VirtualMachine) -> None:
        """Copy the guest's real interfaces into guest.* (caller holds the lock)."""
        guest = self.host.guest(vm.mo_id)
        if guest is None or vm.frozen:
            return
        try:
            nics = guest.interfaces()
        except guest_errors.GuestError:
            return
        net = []
        primary = None
        for nic in nics:
            if nic.name == "lo":
                continue
            addresses = [vim.net.IpConfigInfo.IpAddress(ipAddress=a.ip, prefixLength=a.prefix_length,
                                                        state="preferred") for a in nic.ip_addresses]
            hw = next((n for n in vm.nics if n.mac == nic.mac), None)
            net.append(vim.vm.GuestInfo.NicInfo(
                network=hw.network.name if hw else None, macAddress=nic.mac, connected=nic.up,
                deviceConfigId=hw.key if hw else -1, ipAddress=[a.ip for a in nic.ip_addresses],
                ipConfig=vim.net.IpConfigInfo(ipAddress=addresses)))
            if primary is None:
                primary = next((a.ip for a in nic.ip_addresses if ":" not in a.ip), None)
        hostname = guest.hostname
        changed = (vm.tools.ip_address, vm.tools.host_name, len(vm.tools.net)) != (primary, hostname, len(net)) or \
            [n.ipAddress for n in vm.tools.net] != [n.ipAddress for n in net]
        vm.tools.ip_address = primary
        vm.tools.host_name = hostname
        vm.tools.net = net
        if changed:
            vm.changed()
