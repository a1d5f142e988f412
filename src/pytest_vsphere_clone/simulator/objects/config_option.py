"""VirtualMachineConfigOption: the virtual hardware and guest OSes an ESXi 8 host offers a VM.

An EnvironmentBrowser answers these (QueryConfigOptionDescriptor, QueryConfigOption). The
hardware versions are those an ESXi 8.0 U3 host runs, up to vmx-21 (ESXi 8.0 U2 and later, the
simulated VMs' own version and the default); the guest OS descriptors cover the guest ids the
simulator's VMs use. The figures are plausible for an ESXi 8 host, not a capture of one: hardware
version limits (768 vCPUs and 24 TB of memory from vmx-18 on) and each guest's recommendations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from .virtual_machine import GUEST_IDS, vm_capability

DEVICE = vim.vm.device


@dataclass(frozen=True)
class HardwareVersion:
    """A virtual hardware version: its key, the release that introduced it and its limits."""

    number: int
    release: str
    max_cpus: int
    max_memory_mb: int

    @property
    def key(self) -> str:
        return f"vmx-{self.number}"

    @property
    def description(self) -> str:
        return f"{self.release} virtual machine"


TB_MB = 1024 * 1024
#: Oldest first; the last one is the default (ConfigOptionDescriptor.defaultConfigOption).
HARDWARE_VERSIONS = (
    HardwareVersion(10, "ESXi 5.5", 64, 1 * TB_MB),
    HardwareVersion(11, "ESXi 6.0", 128, 4 * TB_MB),
    HardwareVersion(13, "ESXi 6.5", 128, 6 * TB_MB),
    HardwareVersion(14, "ESXi 6.7", 128, 6 * TB_MB),
    HardwareVersion(15, "ESXi 6.7 U2", 256, 6 * TB_MB),
    HardwareVersion(17, "ESXi 7.0", 256, 6 * TB_MB),
    HardwareVersion(18, "ESXi 7.0 U1", 768, 24 * TB_MB),
    HardwareVersion(19, "ESXi 7.0 U2", 768, 24 * TB_MB),
    HardwareVersion(20, "ESXi 8.0", 768, 24 * TB_MB),
    HardwareVersion(21, "ESXi 8.0 U2", 768, 24 * TB_MB),
)
DEFAULT_VERSION = HARDWARE_VERSIONS[-1]
VERSIONS = {version.key: version for version in HARDWARE_VERSIONS}


@dataclass(frozen=True)
class GuestRecommendation:
    """What a guest OS descriptor recommends for a new VM of that guest."""

    memory_mb: int
    disk_mb: int
    disk_controller: type
    cpu_hot_remove: bool


_LINUX = GuestRecommendation(2048, 16 * 1024, DEVICE.ParaVirtualSCSIController, cpu_hot_remove=True)
_WINDOWS = GuestRecommendation(4096, 90 * 1024, DEVICE.VirtualLsiLogicSASController, cpu_hot_remove=False)
_RECOMMENDATIONS = {"windowsGuest": _WINDOWS}
_DISK_CONTROLLERS = [DEVICE.VirtualIDEController, DEVICE.VirtualLsiLogicController,
                     DEVICE.VirtualLsiLogicSASController, DEVICE.ParaVirtualSCSIController,
                     DEVICE.VirtualAHCIController, DEVICE.VirtualNVMEController]
_ETHERNET_CARDS = [DEVICE.VirtualE1000, DEVICE.VirtualE1000e, DEVICE.VirtualVmxnet3]


def guest_descriptor(guest_id: str, version: HardwareVersion) -> Any:
    """GuestOsDescriptor of ``guest_id`` on hardware ``version``."""
    family, full_name = GUEST_IDS[guest_id]
    advice = _RECOMMENDATIONS.get(family, _LINUX)
    return vim.vm.GuestOsDescriptor(
        id=guest_id, family=family, fullName=full_name, supportedMaxCPUs=version.max_cpus,
        numSupportedPhysicalSockets=min(version.max_cpus, 128), numSupportedCoresPerSocket=min(version.max_cpus, 64),
        supportedMinMemMB=32, supportedMaxMemMB=version.max_memory_mb, recommendedMemMB=advice.memory_mb,
        recommendedColorDepth=32, supportedDiskControllerList=_DISK_CONTROLLERS,
        recommendedSCSIController=advice.disk_controller, recommendedDiskController=advice.disk_controller,
        supportedNumDisks=4, recommendedDiskSizeMB=advice.disk_mb,
        recommendedCdromController=DEVICE.VirtualAHCIController,
        supportedEthernetCard=_ETHERNET_CARDS, recommendedEthernetCard=DEVICE.VirtualVmxnet3, smcRequired=False,
        supportsWakeOnLan=True, supportsVMI=False, supportsMemoryHotAdd=True, supportsCpuHotAdd=True,
        supportsCpuHotRemove=advice.cpu_hot_remove, supportedFirmware=["bios", "efi"], recommendedFirmware="efi",
        supports3D=True, recommended3D=False, smcRecommended=False, ich7mRecommended=False, usbRecommended=False,
        supportLevel="supported", supportedForCreate=True,
        vRAMSizeInKB=vim.option.IntOption(min=1024, max=524288, defaultValue=4096),
        numSupportedFloppyDevices=2, supportsPvscsiControllerForBoot=True, diskUuidEnabled=False,
        supportsHotPlugPCI=True, supportsSecureBoot=True, defaultSecureBoot=family == "windowsGuest",
        supportsTPM20=True)


def _int(low: int, high: int, default: int) -> Any:
    return vim.option.IntOption(min=low, max=high, defaultValue=default)


def _long(low: int, high: int, default: int) -> Any:
    return vim.option.LongOption(min=low, max=high, defaultValue=default)


def _bool(default: bool) -> Any:
    return vim.option.BoolOption(supported=True, defaultValue=default)


def _shares(default: int) -> Any:
    return vim.SharesOption(sharesOption=_int(0, 1_000_000, default), defaultLevel="normal")


def _device_options() -> list[Any]:
    """The options of the devices the simulated VMs have: a vmxnet3 NIC, a disk and its PVSCSI controller."""
    common = {"deprecated": False, "plugAndPlay": True, "hotRemoveSupported": True}
    mac_types = [vim.ElementDescription(key=k, label=k, summary=k) for k in ("assigned", "generated", "manual")]
    return [
        DEVICE.VirtualVmxnet3Option(
            type=DEVICE.VirtualVmxnet3, **common, wakeOnLanEnabled=_bool(True),
            supportedOUI=vim.option.ChoiceOption(choiceInfo=[vim.ElementDescription(
                key="00:50:56", label="00:50:56", summary="00:50:56")], defaultIndex=0),
            macType=vim.option.ChoiceOption(choiceInfo=mac_types, defaultIndex=0)),
        DEVICE.VirtualDiskOption(
            type=DEVICE.VirtualDisk, **common, capacityInKB=_long(1024, 62 * 1024**3, 16 * 1024**2),
            ioAllocationOption=vim.StorageResourceManager.IOAllocationOption(
                limitOption=_long(-1, 2**63 - 1, -1), sharesOption=_shares(1000))),
        DEVICE.ParaVirtualSCSIControllerOption(
            type=DEVICE.ParaVirtualSCSIController, **common, devices=_int(0, 64, 0),
            numSCSIDisks=_int(0, 64, 1), numSCSICdroms=_int(0, 64, 0), numSCSIPassthrough=_int(0, 64, 0),
            sharing=["noSharing", "virtualSharing", "physicalSharing"], defaultSharedIndex=0,
            hotAddRemove=_bool(True), scsiCtlrUnitNumber=7),
    ]


def _allocation(shares: int) -> Any:
    return vim.ResourceAllocationOption(sharesOption=_shares(shares))


def hardware_options(version: HardwareVersion) -> Any:
    """VirtualHardwareOption of ``version``: CPU counts, memory sizes, controllers and device options."""
    return vim.vm.VirtualHardwareOption(
        hwVersion=version.number, virtualDeviceOption=_device_options(), deviceListReadonly=False,
        numCPU=list(range(1, version.max_cpus + 1)), numCoresPerSocket=_int(1, 64, 1), numCpuReadonly=False,
        memoryMB=_long(4, version.max_memory_mb, 1024), numPCIControllers=_int(1, 1, 1),
        numIDEControllers=_int(2, 2, 2), numUSBControllers=_int(0, 1, 0), numUSBXHCIControllers=_int(0, 1, 0),
        numSIOControllers=_int(1, 1, 1), numPS2Controllers=_int(1, 1, 1),
        resourceConfigOption=vim.ResourceConfigOption(cpuAllocationOption=_allocation(1000),
                                                      memoryAllocationOption=_allocation(10240)))


def config_option(version: HardwareVersion, guest_ids: list[str] | None = None) -> Any:
    """VirtualMachineConfigOption of ``version`` for ``guest_ids`` (default: every guest the simulator knows)."""
    ids = guest_ids or list(GUEST_IDS)
    return vim.vm.ConfigOption(
        version=version.key, description=version.description,
        guestOSDescriptor=[guest_descriptor(guest_id, version) for guest_id in ids], guestOSDefaultIndex=0,
        hardwareOptions=hardware_options(version), capabilities=vm_capability(), datastore=vim.vm.DatastoreOption(),
        supportedMonitorType=["release", "debug", "stats"])


def config_option_descriptors(hosts: list[Any]) -> list[Any]:
    """QueryConfigOptionDescriptor's answer: every version, each offered by every one of ``hosts``."""
    return [vim.vm.ConfigOptionDescriptor(key=version.key, description=version.description, host=hosts,
                                          createSupported=True, defaultConfigOption=version is DEFAULT_VERSION,
                                          runSupported=True, upgradeSupported=True)
            for version in HARDWARE_VERSIONS]
