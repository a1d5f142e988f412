"""A VM's virtual devices: NICs, its SCSI controller and disks, and the device changes of a spec.

What is modelled: vmxnet3 NICs (edits of connection, MAC and port group; adds), one paravirtual SCSI
controller (key 1000, bus 0) with the VM's first disk on unit 0, and extra disks added with
``fileOperation: create`` on free units (never unit 7, the controller's own). Removing devices,
other controllers and other NIC types answer NotSupported. The devices a VM reports
(``config.hardware.device``) and what its guest sees (guests/host/hardware_view.py) come from here.

VirtualDeviceSpec (API reference): a new device's key may be negative, "a negative number ... temporary
key", replaced by the server; VirtualDevice.unitNumber: "The unit number of this device on its controller.
This property is null if the controller property is null". VirtualDisk.capacityInKB / capacityInBytes
give the size. ConfigSpec.memoryMB must be a multiple of 4 (VirtualHardwareOption.memoryMB's
granularity, 4 MB on every guest OS descriptor), numCPUs at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .vm_state import DISK_KEY, NIC_KEY_BASE, Nic, new_mac

if TYPE_CHECKING:
    from .inventory import Network
    from .vm_state import VmState

SCSI_KEY = 1000
#: The first disk's size as the VM reports it (its files on the datastore are the disk chain's).
FIRST_DISK_KB = 16 * 1024 * 1024
SCSI_UNITS = tuple(u for u in range(16) if u != 7)
#: Configuration Maximums: 10 virtual NICs per VM.
MAX_NICS = 10


@dataclass
class ExtraDisk:
    """A disk added to a VM after its first one (thin, on the VM's SCSI controller)."""

    key: int
    unit: int
    capacity_kb: int
    file_name: str
    thin: bool = True

    def device(self) -> Any:
        return vim.vm.device.VirtualDisk(
            key=self.key, controllerKey=SCSI_KEY, unitNumber=self.unit, capacityInKB=self.capacity_kb,
            capacityInBytes=self.capacity_kb * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=self.file_name, diskMode="persistent", thinProvisioned=self.thin, split=False,
                writeThrough=False, uuid=f"6000C29{self.key:025x}"[:32]),
            deviceInfo=vim.Description(label=f"Hard disk {self.key - DISK_KEY + 1}",
                                       summary=f"{self.capacity_kb:,} KB"))


def hardware_devices(vm: VmState) -> list[Any]:
    """``config.hardware.device``: NICs, the SCSI controller, the first disk and the extra disks."""
    devices: list[Any] = [nic.device() for nic in vm.nics]
    disks = ([DISK_KEY] if vm.disk is not None else []) + [d.key for d in vm.extra_disks]
    devices.append(vim.vm.device.ParaVirtualSCSIController(
        key=SCSI_KEY, busNumber=0, sharedBus="noSharing", scsiCtlrUnitNumber=7, device=disks, controllerKey=100,
        unitNumber=3, deviceInfo=vim.Description(label="SCSI controller 0", summary="VMware paravirtual SCSI")))
    if vm.disk is not None:
        devices.append(vim.vm.device.VirtualDisk(
            key=DISK_KEY, controllerKey=SCSI_KEY, unitNumber=0, capacityInKB=FIRST_DISK_KB,
            capacityInBytes=FIRST_DISK_KB * 1024, backing=vm.disk.backing(),
            deviceInfo=vim.Description(label="Hard disk 1", summary=f"{FIRST_DISK_KB:,} KB")))
    devices += [disk.device() for disk in vm.extra_disks]
    return devices


def check_sizes(spec: Any) -> None:
    """Refuse a CPU count or memory size no VM can have (InvalidArgument naming the property)."""
    if spec.numCPUs is not None and spec.numCPUs < 1:
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: numCPUs",
                                          invalidProperty="numCPUs")
    if spec.memoryMB is not None and (spec.memoryMB < 4 or spec.memoryMB % 4):
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: memoryMB (a multiple of 4 MB)",
                                          invalidProperty="memoryMB")


def check_instant_changes(changes: list[Any]) -> None:
    """InstantCloneSpec.location: "The only allowed device changes are edits of VirtualEthernetCard and
    filebacked Serial/Parallel ports. All other settings are NOT supported"."""
    for index, change in enumerate(changes):
        if change.operation != "edit" or not isinstance(change.device, vim.vm.device.VirtualEthernetCard):
            raise vmodl.fault.InvalidArgument(
                msg=f"A specified parameter was not correct: spec.location.deviceChange[{index}] (an instant clone "
                    f"allows only edits of existing NICs)", invalidProperty="spec.location.deviceChange")


def apply_device_changes(vm: VmState, changes: list[Any]) -> list[tuple[Nic, bool]]:
    """Apply ``changes`` to ``vm`` (caller holds the lock); returns NIC connection changes to carry out.

    Checked before anything changes: a spec that fails leaves the VM as it was.
    """
    check_device_changes(vm, changes)
    connection_changes: list[tuple[Nic, bool]] = []
    for change in changes:
        device = change.device
        if isinstance(device, vim.vm.device.VirtualDisk):
            _add_disk(vm, device)
        elif change.operation == "add":
            _add_nic(vm, device)
        else:
            connection_changes += _edit_nic(vm, device)
    vm.networks = [nic.network for nic in vm.nics]
    return connection_changes


def check_device_changes(vm: VmState, changes: list[Any]) -> None:
    """Raise the fault ``changes`` would end with on ``vm``, changing nothing."""
    units: set[int] = set()  # disk units the spec's earlier changes take
    for index, change in enumerate(changes):
        _check(vm, index, change, units)


def _invalid(index: int, why: str) -> Exception:
    return vim.fault.InvalidDeviceSpec(msg=f"Invalid configuration for device '{index}': {why}", deviceIndex=index)


def _check(vm: VmState, index: int, change: Any, units: set[int]) -> None:
    device = change.device
    if isinstance(device, vim.vm.device.VirtualEthernetCard):
        if change.operation == "edit":
            if not any(n.key == device.key for n in vm.nics):
                raise vim.fault.InvalidDeviceSpec(msg=f"Device {device.key} does not exist.", deviceIndex=index)
        elif change.operation == "add":
            if not isinstance(device, vim.vm.device.VirtualVmxnet3):
                raise vmodl.fault.NotSupported(msg=f"The simulator models vmxnet3 NICs only, not "
                                                   f"{type(device).__name__}")
            if len(vm.nics) >= MAX_NICS:
                raise _invalid(index, f"a virtual machine has at most {MAX_NICS} NICs")
        else:
            raise vmodl.fault.NotSupported(msg="The simulator does not model removing NICs")
        if device.backing is not None:
            _network(vm, index, device.backing)
        return
    if isinstance(device, vim.vm.device.VirtualDisk) and change.operation == "add":
        if change.fileOperation != "create":
            raise vmodl.fault.NotSupported(msg="The simulator models new disks (fileOperation create) only")
        if device.controllerKey != SCSI_KEY:
            raise _invalid(index, f"controller {device.controllerKey} does not exist")
        if not (device.capacityInKB or device.capacityInBytes):
            raise _invalid(index, "a new disk needs capacityInKB or capacityInBytes")
        taken = _taken_units(vm) | units
        unit = device.unitNumber if device.unitNumber is not None else \
            next((u for u in SCSI_UNITS if u not in taken), None)
        if unit is None or unit not in SCSI_UNITS or unit in taken:
            raise _invalid(index, f"unit {unit} of controller {SCSI_KEY} is taken or does not exist")
        units.add(unit)
        return
    raise vmodl.fault.NotSupported(msg=f"The simulator models NIC edits and adds and new disks, not "
                                       f"{change.operation} of {type(device).__name__}")


def _taken_units(vm: VmState) -> set[int]:
    return ({0} if vm.disk is not None else set()) | {d.unit for d in vm.extra_disks}


def _network(vm: VmState, index: int, backing: Any) -> Network:
    """The port group a NIC backing names (standard port groups: the simulator has no distributed switch)."""
    from .inventory import Network, datacenter_of

    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        datacenter = datacenter_of(vm)
        for network in vm.vc.of_type(Network):
            if datacenter_of(network) is datacenter and (
                    (backing.network is not None and network.ref == backing.network) or
                    (backing.network is None and network.name == backing.deviceName)):
                return network
        raise _invalid(index, f"network {backing.deviceName or backing.network} not found")
    raise vmodl.fault.NotSupported(msg=f"The simulator has no distributed switches: {type(backing).__name__}")


def _add_nic(vm: VmState, device: Any) -> None:
    from .virtual_machine import VirtualMachine
    from .vm_state import Nic

    key = max([n.key for n in vm.nics], default=NIC_KEY_BASE - 1) + 1
    mac = device.macAddress if device.addressType == "manual" and device.macAddress else ""
    taken = {n.mac for other in vm.vc.of_type(VirtualMachine) for n in other.nics}
    while not mac or mac in taken:  # a vCenter never hands out an assigned MAC twice
        mac = new_mac()
    connect = device.connectable
    nic = Nic(key, mac, _network(vm, 0, device.backing) if device.backing is not None else vm.networks[0])
    if connect is not None:
        nic.start_connected = bool(connect.startConnected)
        nic.connected = bool(connect.connected) if connect.connected is not None else nic.start_connected
    vm.nics.append(nic)


def _edit_nic(vm: VmState, device: Any) -> list[tuple[Nic, bool]]:
    nic = next(n for n in vm.nics if n.key == device.key)
    if device.macAddress and device.addressType == "manual":
        nic.mac = device.macAddress
    if device.backing is not None:
        nic.network = _network(vm, 0, device.backing)
    if device.connectable is not None:
        nic.start_connected = bool(device.connectable.startConnected)
        if device.connectable.connected is not None and device.connectable.connected != nic.connected:
            nic.connected = bool(device.connectable.connected)
            return [(nic, nic.connected)]
    return []


def _add_disk(vm: VmState, device: Any) -> None:
    taken = _taken_units(vm)
    unit = device.unitNumber if device.unitNumber is not None else next(u for u in SCSI_UNITS if u not in taken)
    key = max([d.key for d in vm.extra_disks], default=DISK_KEY) + 1
    capacity_kb = device.capacityInKB or (device.capacityInBytes // 1024)
    number = key - DISK_KEY
    file_name = f"[{vm.datastore.name}] {vm.name}/{vm.name}_{number}.vmdk"
    thin = bool(getattr(device.backing, "thinProvisioned", True)) if device.backing is not None else True
    vm.extra_disks.append(ExtraDisk(key, unit, capacity_kb, file_name, thin))


def copy_extra_disks(source: VmState, clone: VmState) -> None:
    """A clone's copies of its source's extra disks, named after the clone."""
    for number, disk in enumerate(source.extra_disks, start=1):
        clone.extra_disks.append(ExtraDisk(disk.key, disk.unit, disk.capacity_kb,
                                           f"[{clone.datastore.name}] {clone.name}/{clone.name}_{number}.vmdk",
                                           disk.thin))
