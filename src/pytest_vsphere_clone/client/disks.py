"""A VM's virtual disk chains: how long they are, and which other VMs share their files.

A virtual disk's backing is a chain: each delta disk names its ``parent`` (VirtualDisk
backings' ``parent`` property) down to the base disk. Linked and instant clones start as
a delta on a file of their source's chain, so two VMs whose chains name a common file share
disks, and the source's chain must not be collapsed under the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import props

if TYPE_CHECKING:
    from .session import VSphereConnection


def _chains(hardware: Any) -> Iterator[list[str]]:
    """For each virtual disk in ``hardware`` (a VirtualHardware or None), the file names of its
    backing chain, the disk's own file first."""
    from pyVmomi import vim

    for device in (hardware.device if hardware else None) or ():
        if isinstance(device, vim.vm.device.VirtualDisk):
            chain: list[str] = []
            backing: Any = device.backing
            while backing is not None:
                chain.append(str(getattr(backing, "fileName", None) or ""))
                backing = getattr(backing, "parent", None)
            yield chain


def disk_chain_lengths(conn: VSphereConnection, vm: Any) -> list[int]:
    """For each virtual disk of ``vm``, how many files its backing chain has (1: no deltas)."""
    hardware = props.read(conn, vm, ["config.hardware"]).get("config.hardware")
    return [len(chain) for chain in _chains(hardware)]


def disk_sharers(conn: VSphereConnection, vm: Any) -> list[str]:
    """Names of the other VMs whose disk chains share a file with ``vm``'s (e.g. its linked and
    instant clones), sorted; one RetrievePropertiesEx over every VM."""
    from pyVmomi import vim

    found = props.container_contents(conn, {vim.VirtualMachine: ["name", "config.hardware"]})
    files = {o.ref: {name for chain in _chains(o.get("config.hardware")) for name in chain if name} for o in found}
    own = files.get(vm, set())
    return sorted(str(o.get("name", o.ref._moId)) for o in found if o.ref != vm and own & files[o.ref])
