"""What every part of a simulated VM shares: its NICs, Tools state and the attributes mixins rely on."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from .base import ManagedEntity
from .disks import DiskLayer
from .hot_plug import HotPlug

if TYPE_CHECKING:
    from .devices import ExtraDisk
    from .inventory import Datastore, Folder, HostSystem, Network, ResourcePool

NIC_KEY_BASE = 4000
DISK_KEY = 2000


def new_mac() -> str:
    """A MAC in VMware's vCenter-assigned range 00:50:56:80-bf."""
    return f"00:50:56:{random.randint(0x80, 0xBF):02x}:{random.randint(0, 255):02x}:{random.randint(0, 255):02x}"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass
class Nic:
    """A virtual NIC (vmxnet3) on a port group."""

    key: int
    mac: str
    network: Network
    connected: bool = True
    start_connected: bool = True

    def device(self) -> Any:
        return vim.vm.device.VirtualVmxnet3(
            key=self.key, unitNumber=7 + self.key - NIC_KEY_BASE, controllerKey=100,
            deviceInfo=vim.Description(label=f"Network adapter {self.key - NIC_KEY_BASE + 1}",
                                       summary=self.network.name),
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=self.network.name, network=self.network.ref),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                connected=self.connected, startConnected=self.start_connected, allowGuestControl=True,
                status="ok"),
            addressType="assigned", macAddress=self.mac, wakeOnLanEnabled=True,
        )


@dataclass
class ToolsState:
    """What VMware Tools in the guest last reported (updated on the Tools' poll interval)."""

    running: bool = False
    ip_address: str | None = None
    host_name: str | None = None
    net: list[Any] = field(default_factory=list)



class VmState(ManagedEntity):
    """Attributes of a VirtualMachine, declared for the mixins that implement its methods."""

    pool: ResourcePool
    host: HostSystem
    datastore: Datastore
    networks: list[Network]
    nics: list[Nic]
    guest_id: str
    num_cpu: int
    memory_mb: int
    template: bool
    annotation: str
    extra_config: dict[str, str]
    disk: DiskLayer | None
    frozen_shared_layer: DiskLayer | None
    power_state: str
    frozen: bool
    boot_time: float | None
    created: float
    tools: ToolsState
    tools_installed: bool
    hot_plug: HotPlug
    extra_disks: list[ExtraDisk]

    if TYPE_CHECKING:
        def folder(self) -> Folder: ...
        def require_power(self, state: str) -> None: ...
        def _guests(self) -> Any: ...
        def start_guest(self) -> None: ...
        def stop_guest(self) -> None: ...
        def prop_config(self) -> Any: ...
        def apply_config_spec(self, spec: Any) -> list[tuple[Nic, bool]]: ...
        def apply_device_changes(self, changes: list[Any]) -> list[tuple[Nic, bool]]: ...
