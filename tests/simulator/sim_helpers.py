"""Client-side helpers for the simulator tests: the real pyVmomi client, nothing mocked."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from pytest_vsphere_clone.simulator import Simulator


def connect(sim: Simulator, user: str | None = None, password: str | None = None) -> Any:
    """A ServiceInstance of the real pyVmomi client, verifying the simulator's certificate."""
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return SmartConnect(host=sim.host, port=sim.port, user=user or sim.user, pwd=password or sim.password,
                        sslContext=context)


def close(si: Any) -> None:
    """Log out (ignoring an already dead session) and close the client's pooled connections."""
    with contextlib.suppress(Exception):
        Disconnect(si)
    si._stub.DropConnections()


def wait(task: Any) -> Any:
    """Wait for a task with pyVim's WaitForTask and return its result."""
    WaitForTask(task)
    return task.info.result


def wait_fault(task: Any) -> Any:
    """Wait for a task that must fail and return its fault (as WaitForTask raises it)."""
    with pytest.raises(vmodl.MethodFault) as raised:
        WaitForTask(task)
    return raised.value


def vm_by_name(si: Any, name: str, datacenter: str = "dc1") -> Any:
    vm = si.content.searchIndex.FindByInventoryPath(f"{datacenter}/vm/{name}")
    assert vm is not None, f"no VM {name} in {datacenter}"
    return vm


def linked_clone_spec(snapshot: Any, **fields: Any) -> Any:
    """A CloneSpec for a linked clone from ``snapshot`` (``location`` may be given to place it)."""
    fields.setdefault("location", vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"))
    return vim.vm.CloneSpec(snapshot=snapshot, **fields)


def disk_chain(vm: Any) -> list[str]:
    """The descriptor file names of the VM's disk chain as layoutEx shows it, base disk first."""
    layout = vm.layoutEx
    files = {f.key: f.name for f in layout.file}
    [disk] = layout.disk
    return [files[unit.fileKey[0]] for unit in disk.chain]


def backing_chain(vm: Any) -> list[str]:
    """The same chain read from config.hardware: the disk's backing and its parents, base disk first."""
    [disk] = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    names: list[str] = []
    backing = disk.backing
    while backing is not None:
        names.append(backing.fileName)
        backing = backing.parent
    return list(reversed(names))


def snapshot_chain(vm: Any, snapshot: Any) -> list[str]:
    """The disk chain a snapshot holds, from the VM's layoutEx.snapshot."""
    layout = vm.layoutEx
    files = {f.key: f.name for f in layout.file}
    [entry] = [s for s in layout.snapshot if s.key == snapshot]
    [disk] = entry.disk
    return [files[unit.fileKey[0]] for unit in disk.chain]


def macs(vm: Any) -> list[str]:
    return [d.macAddress for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
