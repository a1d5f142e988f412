"""The simulator's virtual hardware: CPUs, memory, NICs and disks set by clone and reconfigure specs.

Through the real pyVmomi client; the guests are real (namespaces with sshd), and what they see of their
hardware is read over SSH with the guest's own tools (nproc, /proc/meminfo, lsblk, /sys/class/net).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import paramiko
import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator

GB_KB = 1024 * 1024


def network(si: Any, name: str) -> Any:
    [dc] = si.content.rootFolder.childEntity
    [found] = [n for n in dc.network if n.name == name]
    return found


def nic_add(si: Any, name: str) -> Any:
    backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=name, network=network(si, name))
    nic = vim.vm.device.VirtualVmxnet3(key=-300, addressType="generated", backing=backing,
                                       connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True,
                                                                                           connected=True))
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def disk_add(gb: int, key: int = -200, unit: int | None = None) -> Any:
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True, fileName="")
    disk = vim.vm.device.VirtualDisk(key=key, controllerKey=1000, unitNumber=unit, capacityInKB=gb * GB_KB,
                                     backing=backing)
    return vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)


def devices(vm: Any, kind: type) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, kind)]


class GuestShell:
    """SSH to a clone's guest at the address its Tools report."""

    def __init__(self, sim: Simulator, vm: Any) -> None:
        deadline = time.monotonic() + 30
        while not vm.guest.ipAddress:
            assert time.monotonic() < deadline, "no address reported"
            time.sleep(0.05)
        facts = sim.connection_facts()
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(vm.guest.ipAddress, username=facts["GUEST_USER"], password=facts["GUEST_PASSWORD"],
                            allow_agent=False, look_for_keys=False, timeout=10)

    def __call__(self, command: str) -> str:
        _, stdout, stderr = self.client.exec_command(command)
        status = stdout.channel.recv_exit_status()
        assert status == 0, (command, stderr.read().decode())
        return str(stdout.read().decode().strip())

    def disks(self) -> dict[str, int]:
        return {name: int(size) for name, size in (line.split() for line in
                                                    self("lsblk -b -d -n -o NAME,SIZE").splitlines())}


@pytest.fixture(scope="module")
def hw_clone(gsim: Simulator, gsi: Any) -> Iterator[Any]:
    """A linked clone of linux-template with 1 CPU, 1024 MB, a second NIC on VM Network 2 and an 8 GB disk."""
    template = vm_by_name(gsi, "linux-template")
    config = vim.vm.ConfigSpec(numCPUs=1, memoryMB=1024, deviceChange=[nic_add(gsi, "VM Network 2"), disk_add(8)],
                               extraConfig=[vim.option.OptionValue(key="guestinfo.role", value="web")])
    vm = wait(template.CloneVM_Task(folder=template.parent, name="hw-clone", spec=linked_clone_spec(
        template.snapshot.currentSnapshot, powerOn=True, config=config)))
    yield vm
    wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())


@pytest.mark.guests
def test_the_clone_spec_sets_the_hardware_and_the_guest_sees_it(gsim: Simulator, hw_clone: Any) -> None:
    vm = hw_clone
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (1, 1024)
    [controller] = devices(vm, vim.vm.device.VirtualSCSIController)
    first, extra = devices(vm, vim.vm.device.VirtualDisk)
    assert controller.key == 1000 and sorted(controller.device) == [first.key, extra.key]
    assert (extra.key, extra.controllerKey, extra.unitNumber, extra.capacityInKB) == (2001, 1000, 1, 8 * GB_KB)
    assert extra.backing.thinProvisioned and extra.backing.fileName == "[datastore1] hw-clone/hw-clone_1.vmdk"
    nic1, nic2 = devices(vm, vim.vm.device.VirtualEthernetCard)
    assert (nic2.key, nic2.unitNumber, nic2.backing.deviceName) == (nic1.key + 1, nic1.unitNumber + 1, "VM Network 2")
    assert nic2.macAddress != nic1.macAddress and nic2.connectable.connected
    assert [n.name for n in vm.network] == ["VM Network", "VM Network 2"]
    assert (vm.summary.config.numEthernetCards, vm.summary.config.numVirtualDisks) == (2, 2)
    shell = GuestShell(gsim, vm)
    assert shell("nproc") == "1" and shell("getconf _NPROCESSORS_ONLN") == "1"
    assert shell("awk '/^MemTotal:/ {print $2}' /proc/meminfo") == str(1024 * 1024)
    assert shell.disks() == {"sda": first.capacityInKB * 1024, "sdb": 8 * 1024**3}
    assert shell("cat /sys/class/net/eth1/address") == nic2.macAddress
    assert shell("vmware-rpctool 'info-get guestinfo.role'") == "web"
    # VMware Tools report NIC 2 on its port group.
    deadline = time.monotonic() + 10
    while {(n.macAddress, n.network) for n in vm.guest.net} != {(nic1.macAddress, "VM Network"),
                                                                 (nic2.macAddress, "VM Network 2")}:
        assert time.monotonic() < deadline, [(n.macAddress, n.network) for n in vm.guest.net]
        time.sleep(0.1)


@pytest.mark.guests
def test_a_hot_added_disk_appears_in_the_running_guest(gsim: Simulator, gsi: Any, hw_clone: Any) -> None:
    shell = GuestShell(gsim, hw_clone)
    before = shell.disks()
    wait(hw_clone.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[disk_add(2, key=-201)])))
    units = sorted(d.unitNumber for d in devices(hw_clone, vim.vm.device.VirtualDisk))
    assert units[-1] == len(before)  # the next free unit
    after = shell.disks()
    assert len(after) == len(before) + 1 and after["sd" + "abcdefgh"[len(before)]] == 2 * 1024**3


@pytest.mark.guests
def test_a_full_clone_of_a_clone_copies_its_disks_and_nics(gsi: Any, hw_clone: Any) -> None:
    copy = wait(hw_clone.CloneVM_Task(folder=hw_clone.parent, name="hw-copy", spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(), powerOn=False)))
    try:
        assert [d.backing.fileName for d in devices(copy, vim.vm.device.VirtualDisk)][1:2] == \
            ["[datastore1] hw-copy/hw-copy_1.vmdk"]
        assert [n.backing.deviceName for n in devices(copy, vim.vm.device.VirtualEthernetCard)] == \
            ["VM Network", "VM Network 2"]
        assert (copy.config.hardware.numCPU, copy.config.hardware.memoryMB) == (1, 1024)
    finally:
        wait(copy.Destroy_Task())


@pytest.mark.guests
def test_refused_specs_change_nothing(gsim: Simulator, gsi: Any, hw_clone: Any) -> None:
    template = vm_by_name(gsi, "linux-template")
    names = set(gsim.vm_names())
    snapshot = template.snapshot.currentSnapshot
    # ConfigSpec.memoryMB: a multiple of 4 MB.
    fault = wait_fault(template.CloneVM_Task(folder=template.parent, name="bad-memory", spec=linked_clone_spec(
        snapshot, config=vim.vm.ConfigSpec(memoryMB=1001))))
    assert isinstance(fault, vmodl.fault.InvalidArgument) and fault.invalidProperty == "memoryMB"
    # A unit that is taken (0: the first disk), a port group that does not exist, a removal.
    taken = disk_add(1, unit=0)
    fault = wait_fault(template.CloneVM_Task(folder=template.parent, name="bad-unit", spec=linked_clone_spec(
        snapshot, config=vim.vm.ConfigSpec(deviceChange=[taken]))))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)
    nic = devices(hw_clone, vim.vm.device.VirtualEthernetCard)[0]
    nic.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="No Such Network")
    fault = wait_fault(hw_clone.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
        numCPUs=1, deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)])))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)
    extra_disk = devices(hw_clone, vim.vm.device.VirtualDisk)[1]
    removal = vim.vm.device.VirtualDeviceSpec(operation="remove", device=extra_disk)
    assert isinstance(wait_fault(hw_clone.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[removal]))),
                      vmodl.fault.NotSupported)
    # InstantCloneSpec.location: "The only allowed device changes are edits of VirtualEthernetCard ...".
    frozen = vm_by_name(gsi, "linux-frozen")
    fault = wait_fault(frozen.InstantClone_Task(spec=vim.vm.InstantCloneSpec(
        name="bad-instant", location=vim.vm.RelocateSpec(deviceChange=[disk_add(1)]))))
    assert isinstance(fault, vmodl.fault.InvalidArgument) and fault.invalidProperty == "spec.location.deviceChange"
    assert set(gsim.vm_names()) == names
    assert devices(hw_clone, vim.vm.device.VirtualEthernetCard)[0].backing.deviceName == "VM Network"
