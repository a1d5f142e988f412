"""Plays the VMware Tools of vcsim's clones: each powered-on clone reports Tools running and an address.

vcsim runs no guests (its guest operations work only for container-backed VMs), so no Tools
ever report anything: a clone's ``guest.toolsRunningStatus`` ("Current running status of VMware
Tools in the guest operating system, if known") stays ``guestToolsNotRunning`` and
``guest.ipAddress`` ("Primary IP address assigned to the guest operating system, if known")
unset. The player does what a booting guest's Tools would: once a clone is
powered on, it reconfigures the clone with vcsim's ``SET.<property path>`` extraConfig keys (a
vcsim feature: the key sets that VM property) so that the clone reports Tools running and current
and an address of the tier's real sshd. Nothing here is visible to the plugin except those
properties, which is all a client sees of real Tools too.

Each clone gets an address of the sshd's pool that no VM in the inventory reports, as a DHCP
server leases each VM its own: two clones alive at once with one address are a fault the plugin
refuses (plugin/shared_address.py). With one address for all, a test whose clones overlap in time
failed whenever one clone's address was recorded before the other's was checked: a race that a
loaded machine loses often (the xdist worker-scope test). A pool with no free address leaves the
clone without one, as an exhausted DHCP pool would, and says so in ``errors``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from vcsim_loop import VcsimLoop
from vcsim_server import Vcsim, vm_properties, wait_task

log = logging.getLogger(__name__)


class ToolsPlayer(VcsimLoop):
    """A thread that "boots" every powered-on VM whose name starts with ``prefix``, giving it a free
    address of ``addresses``."""

    name = "vcsim-tools-player"

    def __init__(self, server: Vcsim, addresses: Sequence[str], prefix: str = "pytest-",
                 interval: float = 0.1) -> None:
        super().__init__(server, interval)
        self.addresses = list(addresses)
        self.prefix = prefix
        self.booted: list[str] = []

    def step(self, si: Any) -> None:
        self._boot_new(si)

    def _boot_new(self, si: Any) -> None:
        from pyVmomi import vmodl

        try:
            found = vm_properties(si, ["name", "runtime.powerState", "guest.toolsRunningStatus", "guest.ipAddress"])
        except vmodl.MethodFault as fault:  # e.g. a VM destroyed while the view was read
            log.debug("tools player: listing VMs failed: %s", getattr(fault, "msg", ""))
            return
        # Leased: every address a VM of the inventory reports (a powered-off clone keeps its lease).
        leased = {str(props["guest.ipAddress"]) for props in found.values() if props.get("guest.ipAddress")}
        for vm, props in found.items():
            name = str(props.get("name", ""))
            if not name.startswith(self.prefix) or props.get("runtime.powerState") != "poweredOn" \
                    or props.get("guest.toolsRunningStatus") == "guestToolsRunning":
                continue
            address = next((a for a in self.addresses if a not in leased), None)
            if address is None:
                self.errors.append(f"{name}: no free address in {self.addresses} (leased: {sorted(leased)})")
                continue
            try:
                wait_task(vm.ReconfigVM_Task(self.booted_spec(name, address)), timeout=30)
            except vmodl.MethodFault as fault:
                # Destroyed (or powered off) between the look and the reconfigure: a real guest
                # that is switched off while booting reports nothing either.
                self.errors.append(f"{name}: {type(fault).__name__}: {getattr(fault, 'msg', '')}")
                continue
            leased.add(address)
            self.booted.append(name)

    def booted_spec(self, name: str, address: str) -> Any:
        """What the clone's Tools report once its guest is up: running, current, one IPv4 address.

        ``SET.guest.ipAddress`` also fills ``guest.net[0].ipAddress`` of the clone's first NIC in vcsim,
        so both places the reference names for a guest's addresses (``GuestInfo.ipAddress``,
        ``GuestNicInfo.ipAddress``) carry the address.
        """
        from pyVmomi import vim

        values = {
            "guest.toolsRunningStatus": "guestToolsRunning",
            "guest.toolsVersionStatus2": "guestToolsCurrent",
            "guest.toolsStatus": "toolsOk",
            "guest.guestState": "running",
            "guest.guestFamily": "linuxGuest",
            "guest.hostName": name,
            "guest.ipAddress": address,
        }
        return vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=f"SET.{path}", value=value)
                                              for path, value in values.items()])


@contextlib.contextmanager
def playing_tools(server: Vcsim, addresses: Sequence[str], prefix: str = "pytest-") -> Iterator[ToolsPlayer]:
    """A running ToolsPlayer for the block."""
    player = ToolsPlayer(server, addresses, prefix).start()
    try:
        yield player
    finally:
        player.stop()
