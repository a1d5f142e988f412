"""A clone's hardware: CPUs, memory, NICs' port groups, extra disks and extraConfig in the clone spec.

:class:`HardwareRequest` is what the caller asks for (names and sizes); :func:`resolve_hardware` finds the
port groups by name among the datacenter's networks (``vim.Network``, which standard and distributed port
groups both are); :func:`plan_hardware` turns it into the device changes and fields of a clone spec against
the source's devices, read once. Linked and full clones carry them in ``CloneSpec.config`` (a
VirtualMachineConfigSpec) and NIC moves in ``location.deviceChange``; instant clones take only extraConfig
(``InstantCloneSpec.config``) and NIC edits (``location.deviceChange``): see :func:`instant_problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import props
from .errors import VSphereCloneError, close_matches

if TYPE_CHECKING:
    from .inventory import Inventory, TemplateInfo
    from .session import VSphereConnection

#: vSphere's limit of virtual NICs per VM (Configuration Maximums: 10 virtual NICs).
MAX_NICS = 10
#: SCSI units a controller offers its disks: 0-15, but 7 is the controller's own.
SCSI_UNITS = tuple(u for u in range(16) if u != 7)
#: Temporary device keys: negative numbers tie one spec's new devices together (VirtualDevice.key:
#: "a negative number for a new device", replaced by the server).
_CONTROLLER_KEY = -100
_DISK_KEYS = -200
_NIC_KEYS = -300


class HardwareError(VSphereCloneError):
    """Hardware settings this source, datacenter or clone type cannot take; the message names the fix."""


@dataclass(frozen=True)
class HardwareRequest:
    """A clone's hardware as the user names it; empty fields keep the source's."""

    cpus: int | None = None
    memory_mb: int | None = None
    #: Port group names of NIC 1, 2, ...
    networks: tuple[str, ...] = ()
    #: Sizes in GB of extra thin disks.
    disks_gb: tuple[int, ...] = ()
    #: ``KEY=VALUE`` items for extraConfig.
    extra_config: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.cpus or self.memory_mb or self.networks or self.disks_gb or self.extra_config)

    def config_pairs(self) -> list[tuple[str, str]]:
        """extraConfig as (key, value); a later key wins over an earlier one."""
        pairs: dict[str, str] = {}
        for item in self.extra_config:
            key, _, value = item.partition("=")
            pairs[key] = value
        return list(pairs.items())


@dataclass(frozen=True)
class PortGroup:
    """A network found by name (a standard or distributed port group): its reference and name."""

    ref: Any
    name: str


@dataclass(frozen=True)
class ResolvedHardware:
    """A :class:`HardwareRequest` with its port groups found."""

    request: HardwareRequest
    port_groups: tuple[PortGroup, ...] = ()


@dataclass
class HardwarePlan:
    """What a clone spec carries for the hardware: NIC edits (location) and the ConfigSpec's parts."""

    nic_edits: dict[int, Any] = field(default_factory=dict)  # existing NIC key -> new backing
    #: Keys of the source's NICs that --vsphere-networks names (moved or already right).
    named_nics: set[int] = field(default_factory=set)
    device_adds: list[Any] = field(default_factory=list)  # VirtualDeviceSpecs: NICs, controller, disks
    extra_config: list[Any] = field(default_factory=list)  # OptionValues
    cpus: int | None = None
    memory_mb: int | None = None


def port_groups_of(inventory: Inventory, datacenter: Any) -> dict[str, Any]:
    """The networks of ``datacenter`` by name (standard and distributed port groups)."""
    from pyVmomi import vim

    return {str(o.get("name", "")): o.ref for o in inventory.of_type(vim.Network)
            if datacenter is None or inventory.ancestor(o.ref, vim.Datacenter) == datacenter}


def resolve_hardware(inventory: Inventory, template: TemplateInfo, request: HardwareRequest) -> ResolvedHardware:
    """``request`` with its port groups found in the template's datacenter; HardwareError listing the
    port groups that exist when one is missing."""
    if not request.networks:
        return ResolvedHardware(request)
    available = port_groups_of(inventory, template.datacenter)
    found = []
    for name in request.networks:
        ref = available.get(name)
        if ref is None:
            close = close_matches(name, available)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise HardwareError(f"port group {name!r} of --vsphere-networks not found{hint}: this datacenter has "
                                f"{', '.join(repr(n) for n in sorted(available)) or 'no networks'}; name one of "
                                f"these")
        found.append(PortGroup(ref, name))
    if len(found) > MAX_NICS:
        raise HardwareError(f"--vsphere-networks names {len(found)} NICs, but a VM has at most {MAX_NICS}: name "
                            f"fewer port groups")
    return ResolvedHardware(request, tuple(found))


def source_devices(conn: VSphereConnection, vm: Any) -> list[Any]:
    """The source's virtual devices (config.hardware.device), one property read."""
    hardware = props.read(conn, vm, ["config.hardware"]).get("config.hardware")
    return list(hardware.device or ()) if hardware is not None else []


def instant_problem(resolved: ResolvedHardware, devices: Sequence[Any], template: str) -> str | None:
    """Why an instant clone of ``template`` cannot take ``resolved``, or None.

    InstantCloneSpec.location (API reference): "The only allowed device changes are edits of
    VirtualEthernetCard and filebacked Serial/Parallel ports. All other settings are NOT supported":
    a NIC may move to another port group, but none can be added, nor disks, CPUs or memory.
    """
    from pyVmomi import vim

    request = resolved.request
    if request.cpus or request.memory_mb or request.disks_gb:
        return (f"instant clones of {template} cannot change CPUs, memory or disks (InstantCloneSpec allows only "
                f"extraConfig and NIC edits): use --vsphere-clone-type linked or full")
    nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    if len(request.networks) > len(nics):
        return (f"--vsphere-networks names {len(request.networks)} NICs but {template} has {len(nics)}, and an "
                f"instant clone cannot add NICs (InstantCloneSpec allows only edits of existing ones): use "
                f"--vsphere-clone-type linked or full, or add the NICs to {template}")
    return None


def plan_hardware(conn: VSphereConnection, resolved: ResolvedHardware, devices: Sequence[Any], *,
                  datastore: Any = None) -> HardwarePlan:
    """The spec parts for ``resolved`` against the source's ``devices`` (see the module docstring)."""
    from pyVmomi import vim

    request = resolved.request
    plan = HardwarePlan(cpus=request.cpus, memory_mb=request.memory_mb,
                        extra_config=[vim.option.OptionValue(key=k, value=v) for k, v in request.config_pairs()])
    nics = sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)
    for index, group in enumerate(resolved.port_groups):
        if index < len(nics):
            plan.named_nics.add(nics[index].key)
            if not _on_port_group(conn, nics[index], group.ref):
                plan.nic_edits[nics[index].key] = network_backing(conn, group.ref, group.name)
            continue
        nic = vim.vm.device.VirtualVmxnet3(
            key=_NIC_KEYS - index, addressType="generated", backing=network_backing(conn, group.ref, group.name),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True,
                                                                allowGuestControl=True))
        plan.device_adds.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=nic))
    if request.disks_gb:
        plan.device_adds += _disk_adds(request.disks_gb, devices, datastore)
    return plan


def _disk_adds(sizes_gb: Sequence[int], devices: Sequence[Any], datastore: Any) -> list[Any]:
    """New thin disks on free units of the source's SCSI controllers (a new paravirtual one if it has none)."""
    from pyVmomi import vim

    controllers = sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)),
                         key=lambda d: d.busNumber)
    taken = {(d.controllerKey, d.unitNumber) for d in devices if d.controllerKey is not None}
    free = [(c.key, unit) for c in controllers for unit in SCSI_UNITS if (c.key, unit) not in taken]
    changes = []
    if not controllers:  # e.g. a source whose disks are on NVMe or SATA
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.ParaVirtualSCSIController(
            key=_CONTROLLER_KEY, busNumber=0, sharedBus="noSharing")))
        free = [(_CONTROLLER_KEY, unit) for unit in SCSI_UNITS]
    if len(sizes_gb) > len(free):
        raise HardwareError(f"--vsphere-disks asks for {len(sizes_gb)} disks but the source's SCSI controllers have "
                            f"{len(free)} free units: ask for fewer disks")
    for index, (size, (controller, unit)) in enumerate(zip(sizes_gb, free, strict=False)):
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True,
                                                                fileName="", datastore=datastore)
        disk = vim.vm.device.VirtualDisk(key=_DISK_KEYS - index, controllerKey=controller, unitNumber=unit,
                                         capacityInKB=size * 1024 * 1024, backing=backing)
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
    return changes


def network_backing(conn: VSphereConnection, network: Any, name: str | None) -> Any:
    """A NIC's backing for ``network``: a distributed port group's port connection, or a standard one."""
    from pyVmomi import vim

    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        values = props.read(conn, network, ["key", "config.distributedVirtualSwitch"])
        switch = values.get("config.distributedVirtualSwitch")
        uuid = props.read(conn, switch, ["uuid"]).get("uuid") if switch is not None else None
        port = vim.dvs.PortConnection(portgroupKey=values.get("key"), switchUuid=uuid)
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=name, network=network)


def _on_port_group(conn: VSphereConnection, nic: Any, network: Any) -> bool:
    """Whether ``nic`` is backed by ``network`` already."""
    from pyVmomi import vim

    backing = nic.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        return bool(backing.network == network)
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo) and \
            isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        key = props.read(conn, network, ["key"]).get("key")
        return backing.port is not None and backing.port.portgroupKey == key
    return False
