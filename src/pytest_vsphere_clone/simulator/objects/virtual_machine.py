"""VirtualMachine: configuration, runtime, power, reconfiguration and destruction.

Cloning and snapshots live in their own mixins (cloning.py, snapshots.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import vmomi_method
from .cloning import CloneMethods
from .devices import ExtraDisk, apply_device_changes, check_sizes, hardware_devices
from .disks import DiskLayer
from .events import post_vm_event
from .hot_plug import HotPlug, check_running_change
from .relocation import RelocateMethods
from .screenshots import ScreenshotMethods
from .snapshots import SnapshotNode
from .vm_state import DISK_KEY, NIC_KEY_BASE, Nic, ToolsState, new_mac, utc

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .inventory import Datastore, Folder, HostSystem, Network, ResourcePool

#: guestId -> (guestFamily, full name)
GUEST_IDS: dict[str, tuple[str, str]] = {
    "ubuntu64Guest": ("linuxGuest", "Ubuntu Linux (64-bit)"),
    "debian12_64Guest": ("linuxGuest", "Debian GNU/Linux 12 (64-bit)"),
    "rhel9_64Guest": ("linuxGuest", "Red Hat Enterprise Linux 9 (64-bit)"),
    "other5xLinux64Guest": ("linuxGuest", "Other 5.x or later Linux (64-bit)"),
    "windows2019srv_64Guest": ("windowsGuest", "Microsoft Windows Server 2019 (64-bit)"),
    "windows2019srvNext_64Guest": ("windowsGuest", "Microsoft Windows Server 2022 (64-bit)"),
    "windows9Server64Guest": ("windowsGuest", "Microsoft Windows Server 2016 (64-bit)"),
}


def vm_capability() -> Any:
    """VirtualMachineCapability of a vmx-21 VM on an ESXi 8 host (the EnvironmentBrowser offers the same)."""
    return vim.vm.Capability(snapshotOperationsSupported=True, multipleSnapshotsSupported=True,
                             snapshotConfigSupported=True, poweredOffSnapshotsSupported=True,
                             memorySnapshotsSupported=True, revertToSnapshotSupported=True,
                             quiescedSnapshotsSupported=True, disableSnapshotsSupported=False,
                             lockSnapshotsSupported=False, consolePreferencesSupported=False,
                             cpuFeatureMaskSupported=True, s1AcpiManagementSupported=True,
                             settingScreenResolutionSupported=False, toolsAutoUpdateSupported=False,
                             vmNpivWwnSupported=True, npivWwnOnNonRdmVmSupported=True,
                             swapPlacementSupported=True, toolsSyncTimeSupported=True,
                             virtualMmuUsageSupported=True, diskSharesSupported=True,
                             bootOptionsSupported=True, settingVideoRamSizeSupported=True)


class VirtualMachine(CloneMethods, RelocateMethods, ScreenshotMethods):
    """vim.VirtualMachine."""

    vim_type = vim.VirtualMachine

    def __init__(self, vc: VCenter, mo_id: str, name: str, folder: Folder, *, pool: ResourcePool,
                 host: HostSystem, datastore: Datastore, networks: list[Network], guest_id: str,
                 num_cpu: int = 2, memory_mb: int = 2048, template: bool = False) -> None:
        super().__init__(vc, mo_id, name, folder)
        self.pool = pool
        self.host = host
        self.datastore = datastore
        self.networks = list(networks)
        self.guest_id = guest_id
        self.num_cpu = num_cpu
        self.memory_mb = memory_mb
        self.template = template
        self.uuid = str(uuid.uuid4())
        #: What the latency profile drew for this VM's guest (boot, network, refresh), for benchmarks.
        self.drawn: dict[str, float] = {}
        self.instance_uuid = str(uuid.uuid4())
        self.annotation = ""
        self.extra_config: dict[str, str] = {}
        self.nics = [Nic(NIC_KEY_BASE + i, new_mac(), net) for i, net in enumerate(networks)]
        self.disk: DiskLayer | None = None
        self.power_state = "poweredOff"
        self.frozen = False
        #: Frozen sources share one layer with all their instant clones.
        self.frozen_shared_layer: DiskLayer | None = None
        self.boot_time: float | None = None
        self.created = time.time()
        self.change_version = 0
        self.tools = ToolsState()
        self.tools_installed = True
        self.hot_plug = HotPlug()
        self.extra_disks: list[ExtraDisk] = []
        self.snapshot_roots: list[SnapshotNode] = []
        self.current_snapshot: SnapshotNode | None = None
        #: The state an inventory file asks for; the simulator brings the VM there at start.
        self.initial_power = "poweredOff"
        self.initial_frozen = False
        #: What the template's OS image holds (see guests/os_image.py): a committed /etc/machine-id
        #: (None: an emptied one, as in a prepared template) and systemd-networkd as its DHCP client.
        self.initial_machine_id: str | None = None
        self.networkd = False

    # --- state helpers -----------------------------------------------------------------

    @property
    def family(self) -> str:
        """``linux`` or ``windows``."""
        return "windows" if GUEST_IDS.get(self.guest_id, ("",))[0] == "windowsGuest" else "linux"

    def changed(self) -> None:
        self.change_version += 1
        super().changed()

    def folder(self) -> Folder:
        from .inventory import Folder

        assert isinstance(self.parent, Folder)
        return self.parent

    def vm_path(self) -> str:
        return f"[{self.datastore.name}] {self.name}/{self.name}.vmx"

    def require_power(self, state: str) -> None:
        if self.power_state != state:
            raise vim.fault.InvalidPowerState(
                msg=f"The attempted operation cannot be performed in the current state ({self._state_word()}).",
                requestedState=state, existingState=self.power_state)

    def _state_word(self) -> str:
        return {"poweredOn": "Powered on", "poweredOff": "Powered off", "suspended": "Suspended"}[self.power_state]

    def require_not_template(self) -> None:
        if self.template:
            raise vmodl.fault.NotSupported(msg="The operation is not supported on the object.")

    # --- properties ------------------------------------------------------------------

    def prop_config(self) -> Any:
        _, full_name = GUEST_IDS.get(self.guest_id, ("otherGuest", self.guest_id))
        devices = hardware_devices(self)
        return vim.vm.ConfigInfo(
            changeVersion=str(self.change_version), modified=utc(self.created), name=self.name,
            guestFullName=full_name, version="vmx-21", uuid=self.uuid, instanceUuid=self.instance_uuid,
            template=self.template, guestId=self.guest_id, alternateGuestName="", annotation=self.annotation,
            files=vim.vm.FileInfo(vmPathName=self.vm_path(), logDirectory=f"[{self.datastore.name}] {self.name}/",
                                  snapshotDirectory=f"[{self.datastore.name}] {self.name}/",
                                  suspendDirectory=f"[{self.datastore.name}] {self.name}/"),
            flags=vim.vm.FlagInfo(), defaultPowerOps=vim.vm.DefaultPowerOpInfo(),
            hardware=vim.vm.VirtualHardware(numCPU=self.num_cpu, numCoresPerSocket=1, memoryMB=self.memory_mb,
                                            device=devices),
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in sorted(self.extra_config.items())],
            createDate=utc(self.created),
            tools=vim.vm.ToolsConfigInfo(toolsVersion=12389 if self.tools_installed else 0),
            **self.hot_plug.config_fields(),
        )

    def prop_runtime(self) -> Any:
        return vim.vm.RuntimeInfo(
            host=self.host.ref, connectionState="connected", powerState=self.power_state,
            faultToleranceState="notConfigured", toolsInstallerMounted=False, numMksConnections=0,
            recordReplayState="inactive", onlineStandby=False, consolidationNeeded=False,
            bootTime=utc(self.boot_time) if self.boot_time else None, instantCloneFrozen=self.frozen,
            maxCpuUsage=2400 * self.num_cpu, maxMemoryUsage=self.memory_mb,
        )

    def tools_running_status(self) -> str:
        return "guestToolsRunning" if self.tools.running and not self.frozen else "guestToolsNotRunning"

    def prop_guest(self) -> Any:
        family, full_name = GUEST_IDS.get(self.guest_id, ("otherGuest", self.guest_id))
        running = self.tools_running_status() == "guestToolsRunning"
        tools_status = "toolsOk" if running else "toolsNotRunning"
        if not self.tools_installed:
            tools_status = "toolsNotInstalled"
        return vim.vm.GuestInfo(
            # "guestToolsNotInstalled: VMware Tools has never been installed" (GuestInfo.ToolsVersionStatus).
            toolsStatus=tools_status,
            toolsVersionStatus2="guestToolsCurrent" if self.tools_installed else "guestToolsNotInstalled",
            toolsRunningStatus=self.tools_running_status(), toolsVersion="12389",
            guestId=self.guest_id if running else None, guestFamily=family if running else None,
            guestFullName=full_name if running else None,
            hostName=self.tools.host_name if running else None,
            ipAddress=self.tools.ip_address if running else None,
            net=list(self.tools.net) if running else [],
            guestState="running" if running else "notRunning",
            guestOperationsReady=running, interactiveGuestOperationsReady=False,
            guestStateChangeSupported=running,
        )

    def prop_guestHeartbeatStatus(self) -> str:
        return "green" if self.tools_running_status() == "guestToolsRunning" else "gray"

    def prop_summary(self) -> Any:
        _, full_name = GUEST_IDS.get(self.guest_id, ("otherGuest", self.guest_id))
        guest = self.prop_guest()
        return vim.vm.Summary(
            vm=self.ref, runtime=self.prop_runtime(),
            guest=vim.vm.Summary.GuestSummary(
                guestId=guest.guestId, guestFullName=guest.guestFullName, toolsStatus=guest.toolsStatus,
                toolsRunningStatus=guest.toolsRunningStatus, hostName=guest.hostName, ipAddress=guest.ipAddress),
            config=vim.vm.Summary.ConfigSummary(
                name=self.name, template=self.template, vmPathName=self.vm_path(), memorySizeMB=self.memory_mb,
                numCpu=self.num_cpu, numEthernetCards=len(self.nics),
                numVirtualDisks=(1 if self.disk else 0) + len(self.extra_disks),
                uuid=self.uuid, instanceUuid=self.instance_uuid, guestId=self.guest_id, guestFullName=full_name,
                annotation=self.annotation),
            storage=vim.vm.Summary.StorageSummary(
                committed=sum(layer.size for layer in self.disk.chain() if layer.owner == self.mo_id)
                if self.disk else 0, uncommitted=0, unshared=0, timestamp=utc(time.time())),
            quickStats=vim.vm.Summary.QuickStats(guestHeartbeatStatus=self.prop_guestHeartbeatStatus()),
            overallStatus="green", customValue=self.prop_customValue(),
        )

    def prop_layoutEx(self) -> Any:
        files: list[Any] = []
        file_keys: dict[int, int] = {}
        files.append(vim.vm.FileLayoutEx.FileInfo(key=0, name=self.vm_path(), type="config", size=4096,
                                                  accessible=True))
        disks: list[Any] = []
        if self.disk is not None:
            units = []
            for layer in self.disk.chain():
                key = len(files)
                file_keys[layer.key] = key
                files.append(vim.vm.FileLayoutEx.FileInfo(key=key, name=layer.path, type="diskDescriptor",
                                                          size=1024, accessible=True))
                extent = layer.path.replace(".vmdk", "-delta.vmdk" if layer.parent else "-flat.vmdk")
                files.append(vim.vm.FileLayoutEx.FileInfo(key=key + 1, name=extent, type="diskExtent",
                                                          size=layer.size, accessible=True))
                units.append(vim.vm.FileLayoutEx.DiskUnit(fileKey=[key, key + 1]))
            disks.append(vim.vm.FileLayoutEx.DiskLayout(key=DISK_KEY, chain=units))
        snapshots = [vim.vm.FileLayoutEx.SnapshotLayout(
            key=node.ref, dataKey=0, memoryKey=-1,
            disk=[vim.vm.FileLayoutEx.DiskLayout(key=DISK_KEY, chain=[
                vim.vm.FileLayoutEx.DiskUnit(fileKey=[file_keys[layer.key], file_keys[layer.key] + 1])
                for layer in node.layer.chain() if layer.key in file_keys])])
            for node in self.all_snapshots()]
        return vim.vm.FileLayoutEx(file=files, disk=disks, snapshot=snapshots, timestamp=utc(time.time()))

    def prop_resourcePool(self) -> Any:
        return None if self.template else self.pool.ref

    def prop_datastore(self) -> list[Any]:
        return [self.datastore.ref]

    def prop_network(self) -> list[Any]:
        return [n.ref for n in self.networks]

    def prop_capability(self) -> Any:
        return vm_capability()

    def prop_environmentBrowser(self) -> Any:
        # VirtualMachine.environmentBrowser (required): "The current virtual machine's environment
        # browser object. This contains information on all the configurations that can be used on the
        # virtual machine." A vCenter answers with the browser of the VM's compute resource.
        return self.host.compute_resource().environment_browser.ref

    # --- power -----------------------------------------------------------------------

    def _guests(self) -> Any:
        return self.vc.guests

    @vmomi_method()
    def PowerOnVM_Task(self, ctx: CallContext, host: Any = None) -> Any:
        def power_on() -> None:
            with self.vc.lock:
                self.require_not_template()
                self.require_power("poweredOff")
                post_vm_event(self, vim.event.VmStartingEvent)
                self.power_state = "poweredOn"
                self.boot_time = time.time()
                self.changed()
                post_vm_event(self, vim.event.VmPoweredOnEvent)
            self.start_guest()

        return self.vc.tasks.start(ctx, self, "PowerOnVM_Task", "power_on", power_on)

    def start_guest(self) -> None:
        """Boot the guest behind this VM (real guest when the simulator runs guests)."""
        guests = self._guests()
        if guests is not None:
            guests.power_on(self)
        else:
            self.vc.profile.sleep(f"boot.{self.family}")
            with self.vc.lock:
                if self.power_state == "poweredOn" and self.tools_installed:
                    self.tools.running = True
                    self.changed()

    def stop_guest(self) -> None:
        guests = self._guests()
        if guests is not None:
            guests.power_off(self)
        with self.vc.lock:
            self.tools = ToolsState()
            self.changed()

    @vmomi_method()
    def PowerOffVM_Task(self, ctx: CallContext) -> Any:
        def power_off() -> None:
            with self.vc.lock:
                self.require_power("poweredOn")
                post_vm_event(self, vim.event.VmStoppingEvent)
                self.power_state = "poweredOff"
                self.frozen = False  # a power cycle loses the frozen state
                self.frozen_shared_layer = None
                self.boot_time = None
                self.changed()
                post_vm_event(self, vim.event.VmPoweredOffEvent)
            self.stop_guest()

        return self.vc.tasks.start(ctx, self, "PowerOffVM_Task", "power_off", power_off)

    @vmomi_method()
    def ResetVM_Task(self, ctx: CallContext) -> Any:
        def reset() -> None:
            with self.vc.lock:
                self.require_power("poweredOn")
                post_vm_event(self, vim.event.VmResettingEvent)
                self.frozen = False
                self.frozen_shared_layer = None
                self.boot_time = time.time()
                self.changed()
            self.stop_guest()
            self.start_guest()

        return self.vc.tasks.start(ctx, self, "ResetVM_Task", "power_on", reset)

    @vmomi_method("VirtualMachine.Interact.PowerOff")
    def ShutdownGuest(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self.require_power("poweredOn")
            if self.tools_running_status() != "guestToolsRunning":
                raise vim.fault.ToolsUnavailable(msg="Cannot complete operation because VMware Tools is not running "
                                                     "in this virtual machine.")
            post_vm_event(self, vim.event.VmGuestShutdownEvent)
        self.PowerOffVM_Task(ctx)

    @vmomi_method("VirtualMachine.Interact.Reset")
    def RebootGuest(self, ctx: CallContext) -> None:
        """Ask the guest OS to reboot, through VMware Tools.

        RebootGuest: "Issues a command to the guest operating system asking it to perform a reboot.
        Returns immediately and does not wait for the guest operating system to complete the
        operation." Not a task; ToolsUnavailable without running Tools (a frozen VM's included).
        The VM stays powered on (runtime.bootTime is the VM's, not the guest's); the Tools stop
        reporting and come back after the guest's boot, whose DHCP client may renew its address.
        """
        with self.vc.lock:
            self.require_power("poweredOn")
            if self.tools_running_status() != "guestToolsRunning":
                raise vim.fault.ToolsUnavailable(msg="Cannot complete operation because VMware Tools is not running "
                                                     "in this virtual machine.")
            self.tools = ToolsState()
            self.changed()
            post_vm_event(self, vim.event.VmGuestRebootEvent)
        guests = self._guests()
        if guests is not None:
            guests.reboot(self)
            return

        def reboot() -> None:  # no real guest: the Tools return after the profile's boot time
            self.vc.profile.sleep(f"boot.{self.family}")
            with self.vc.lock:
                if self.alive and self.power_state == "poweredOn" and self.tools_installed:
                    self.tools.running = True
                    self.changed()

        threading.Thread(target=reboot, name=f"sim-reboot-{self.mo_id}", daemon=True).start()

    # --- destroy ---------------------------------------------------------------------

    @vmomi_method("VirtualMachine.Inventory.Delete")
    def Destroy_Task(self, ctx: CallContext) -> Any:
        def destroy() -> None:
            with self.vc.lock:
                if not self.alive:
                    raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted", obj=self.ref)
                self.require_power("poweredOff")
                self.alive = False  # claimed: a concurrent destroy now fails as above
            guests = self._guests()
            if guests is not None:
                guests.destroy(self)
            with self.vc.lock:
                self.drop_all_snapshot_objects()
                self.vc.disks.release(self.disk, self.vc.disk_tops(exclude=self), self.vc.pinned_layers())
                self.folder().detach(self)
                self.vc.remove(self)
                post_vm_event(self, vim.event.VmRemovedEvent)

        return self.vc.tasks.start(ctx, self, "Destroy_Task", "destroy", destroy)

    # --- templates ---------------------------------------------------------------------

    @vmomi_method("VirtualMachine.Provisioning.MarkAsTemplate")
    def MarkAsTemplate(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self.require_power("poweredOff")
            self.template = True
            self.changed()

    @vmomi_method("VirtualMachine.Provisioning.MarkAsVM")
    def MarkAsVirtualMachine(self, ctx: CallContext, pool: Any, host: Any = None) -> None:
        from .inventory import HostSystem, ResourcePool

        with self.vc.lock:
            if not self.template:
                raise vmodl.fault.NotSupported(msg="The virtual machine is not a template.")  # vmodl: no vim.fault one
            self.pool = self.vc.lookup_as(pool, ResourcePool)
            if host is not None:
                self.host = self.vc.lookup_as(host, HostSystem)
            self.template = False
            self.changed()

    # --- reconfiguration ---------------------------------------------------------------

    @vmomi_method("VirtualMachine.Config.Settings")
    def ReconfigVM_Task(self, ctx: CallContext, spec: Any) -> Any:
        checks = [
            (spec.extraConfig, "VirtualMachine.Config.AdvancedConfig"),
            (spec.deviceChange, "VirtualMachine.Config.EditDevice"),
            (spec.annotation is not None, "VirtualMachine.Config.Annotation"),
            (spec.name, "VirtualMachine.Config.Rename"),
            # ConfigSpec's "Reconfigure privilege" of numCPUs and the CPU hot plug flags, and of
            # memoryMB and memoryHotAddEnabled.
            (spec.numCPUs or spec.cpuHotAddEnabled is not None or spec.cpuHotRemoveEnabled is not None,
             "VirtualMachine.Config.CPUCount"),
            (spec.memoryMB or spec.memoryHotAddEnabled is not None, "VirtualMachine.Config.Memory"),
        ]
        with self.vc.lock:
            for present, privilege in checks:
                if present:
                    ctx.require(privilege, self)

        def reconfigure() -> None:
            nic_changes: list[tuple[Nic, bool]] = []
            with self.vc.lock:
                if not self.alive:
                    raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted", obj=self.ref)
                if self.power_state != "poweredOff":
                    check_running_change(self, spec)  # CPU and memory only as far as hot plug allows
                nic_changes = self.apply_config_spec(spec)
                self.changed()
                # vCenter records every reconfiguration: VmReconfiguredEvent, "Reconfigured {vm} on
                # {host} in {datacenter}", whose configSpec is "The configuration specification that
                # was used for the reconfiguration".
                post_vm_event(self, vim.event.VmReconfiguredEvent, configSpec=spec)
            guests = self._guests()
            if guests is not None:
                for nic, connected in nic_changes:
                    guests.nic_connected(self, nic, connected)
                if spec.numCPUs or spec.memoryMB or any(c.operation == "add" for c in spec.deviceChange or ()):
                    guests.hardware_changed(self)  # hot-added CPUs, memory, disks, NICs: the guest sees them

        return self.vc.tasks.start(ctx, self, "ReconfigVM_Task", "reconfigure", reconfigure)

    def apply_config_spec(self, spec: Any) -> list[tuple[Nic, bool]]:
        """Apply a ConfigSpec (caller holds the lock); returns NIC connection changes to carry out."""
        check_sizes(spec)
        # Devices first: they are all checked before any changes, so a refused spec changes nothing.
        connection_changes = self.apply_device_changes(spec.deviceChange or [])
        if spec.name:
            self.name = spec.name
        if spec.annotation is not None:
            self.annotation = spec.annotation
        if spec.numCPUs:
            self.num_cpu = spec.numCPUs
        if spec.memoryMB:
            self.memory_mb = spec.memoryMB
        self.hot_plug.apply(spec)
        for option in spec.extraConfig or ():
            if option.value in (None, ""):
                self.extra_config.pop(option.key, None)
            else:
                self.extra_config[option.key] = str(option.value)
        return connection_changes

    def apply_device_changes(self, changes: list[Any]) -> list[tuple[Nic, bool]]:
        """Apply NIC edits and adds and new disks (see devices.py); returns NIC connection changes."""
        return apply_device_changes(self, changes)
