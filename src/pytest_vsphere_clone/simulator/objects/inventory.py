"""Inventory containers: folders, datacenters, clusters, hosts, pools, datastores, networks."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import ManagedEntity, SimObject, vmomi_method
from .datastore_browser import HostDatastoreBrowser
from .environment_browser import EnvironmentBrowser
from .host import (
    HostHardware,
    build_config_managers,
    capability,
    config_info,
    hardware_info,
    hardware_summary,
    product,
    quick_stats,
    vmfs_volume,
    volume_uuid,
)
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

GB = 1024**3
MB = 1024**2
#: The shares of a resource pool at level "normal": 4000 for CPU, 163840 for memory (SharesInfo).
NORMAL_CPU_SHARES = 4000
NORMAL_MEMORY_SHARES = 163840
#: The part of a host's capacity its hypervisor keeps: a cluster's effective capacity is the rest.
HYPERVISOR_SHARE = 0.07


class Folder(Unmodelled, ManagedEntity):
    """vim.Folder; ``child_types`` as a vCenter reports for that kind of folder."""

    vim_type = vim.Folder

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None,
                 child_types: list[str]) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.child: list[ManagedEntity] = []
        self.props["childType"] = child_types

    def prop_childEntity(self) -> list[Any]:
        return [c.ref for c in self.child if c.alive]

    def children(self) -> list[ManagedEntity]:
        return [c for c in self.child if c.alive]

    def attach(self, entity: ManagedEntity) -> None:
        entity.parent = self
        self.child.append(entity)
        self.changed()

    def detach(self, entity: ManagedEntity) -> None:
        if entity in self.child:
            self.child.remove(entity)
            self.changed()


class Datacenter(Unmodelled, ManagedEntity):
    """vim.Datacenter with its four root folders."""

    vim_type = vim.Datacenter

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.vm_folder = Folder(vc, vc.new_id("group-v"), "vm", self, ["Folder", "VirtualMachine", "VirtualApp"])
        self.host_folder = Folder(vc, vc.new_id("group-h"), "host", self, ["Folder", "ComputeResource"])
        self.datastore_folder = Folder(vc, vc.new_id("group-s"), "datastore", self,
                                       ["Folder", "Datastore", "StoragePod"])
        self.network_folder = Folder(vc, vc.new_id("group-n"), "network", self,
                                     ["Folder", "Network", "DistributedVirtualSwitch"])
        for folder in self.folders():
            vc.add(folder)

    def folders(self) -> list[Folder]:
        return [self.vm_folder, self.host_folder, self.datastore_folder, self.network_folder]

    def children(self) -> list[ManagedEntity]:
        return list(self.folders())

    def prop_vmFolder(self) -> Any:
        return self.vm_folder.ref

    def prop_hostFolder(self) -> Any:
        return self.host_folder.ref

    def prop_datastoreFolder(self) -> Any:
        return self.datastore_folder.ref

    def prop_networkFolder(self) -> Any:
        return self.network_folder.ref

    def prop_datastore(self) -> list[Any]:
        return [d.ref for d in self.datastore_folder.children()]

    def prop_network(self) -> list[Any]:
        return [n.ref for n in self.network_folder.children()]

    def prop_configuration(self) -> Any:
        return vim.Datacenter.ConfigInfo(defaultHardwareVersionKey="vmx-21")


class ResourcePool(Unmodelled, ManagedEntity):
    """vim.ResourcePool (the cluster's root pool, or a child pool)."""

    vim_type = vim.ResourcePool
    dynamic_properties = frozenset({"vm", "runtime", "summary"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None,
                 owner: ManagedEntity | None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.owner = owner
        self.pools: list[ResourcePool] = []

    def children(self) -> list[ManagedEntity]:
        return list(self.pools)

    def prop_owner(self) -> Any:
        return self.owner.ref if self.owner else None

    def prop_resourcePool(self) -> list[Any]:
        return [p.ref for p in self.pools]

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if vm.pool is self]

    def _capacity(self) -> tuple[int, int]:
        """(CPU MHz, memory MB) this pool may hand out: its cluster's effective capacity."""
        owner = self.owner
        if isinstance(owner, ClusterComputeResource):
            return owner.effective_cpu_mhz(), owner.effective_memory_mb()
        return 0, 0

    def _running_memory_mb(self) -> int:
        from .virtual_machine import VirtualMachine

        return sum(vm.memory_mb for vm in self.vc.of_type(VirtualMachine)
                   if vm.pool is self and vm.power_state == "poweredOn")

    def prop_config(self) -> Any:
        cpu, memory = self._capacity()
        # A cluster's root pool is the cluster's whole effective capacity, reserved and limited to it; a
        # child pool starts unreserved and unlimited (ResourceAllocationInfo.limit -1: "no fixed limit").
        root = isinstance(self.parent, ClusterComputeResource)
        return vim.ResourceConfigSpec(
            entity=self.ref, changeVersion="1",
            cpuAllocation=vim.ResourceAllocationInfo(
                reservation=cpu if root else 0, expandableReservation=not root, limit=cpu if root else -1,
                shares=vim.SharesInfo(shares=NORMAL_CPU_SHARES, level="normal")),
            memoryAllocation=vim.ResourceAllocationInfo(
                reservation=memory if root else 0, expandableReservation=not root, limit=memory if root else -1,
                shares=vim.SharesInfo(shares=NORMAL_MEMORY_SHARES, level="normal")))

    def prop_childConfiguration(self) -> list[Any]:
        return [pool.prop_config() for pool in self.pools]

    def prop_runtime(self) -> Any:
        cpu, memory = self._capacity()
        # ResourcePoolResourceUsage: CPU in MHz, memory in bytes. Simulated VMs reserve nothing; the
        # memory in use is what the running VMs are configured with (no ballooning or sharing).
        return vim.ResourcePool.RuntimeInfo(
            cpu=vim.ResourcePool.ResourceUsage(reservationUsed=0, reservationUsedForVm=0, unreservedForPool=cpu,
                                               unreservedForVm=cpu, overallUsage=0, maxUsage=cpu),
            memory=vim.ResourcePool.ResourceUsage(reservationUsed=0, reservationUsedForVm=0,
                                                  unreservedForPool=memory * MB, unreservedForVm=memory * MB,
                                                  overallUsage=self._running_memory_mb() * MB,
                                                  maxUsage=memory * MB),
            overallStatus="green")

    def prop_summary(self) -> Any:
        running_mb = self._running_memory_mb()
        return vim.ResourcePool.Summary(
            name=self.name, config=self.prop_config(), runtime=self.prop_runtime(),
            quickStats=vim.ResourcePool.Summary.QuickStats(hostMemoryUsage=running_mb, overallCpuUsage=0),
            configuredMemoryMB=running_mb)


class HostSystem(Unmodelled, ManagedEntity):
    """vim.HostSystem: an ESXi 8 host of a cluster (host.py builds what it reports)."""

    vim_type = vim.HostSystem
    dynamic_properties = frozenset({"vm", "summary"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None,
                 hardware: HostHardware | None = None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.hardware = hardware or HostHardware()
        self.datastores: list[Datastore] = []
        self.networks: list[Network] = []
        #: The management address (vmk0's); the guest file transfer service may give each host its own.
        self.address = "127.0.0.1"
        #: SHA-1 thumbprint of the host's HTTPS certificate, once its transfer service has one.
        self.ssl_thumbprint: str | None = None
        self.boot_time = time.time()
        self.props["runtime"] = vim.host.RuntimeInfo(
            connectionState="connected", powerState="poweredOn", inMaintenanceMode=False, standbyMode="none",
            inQuarantineMode=False, bootTime=datetime.fromtimestamp(self.boot_time, tz=timezone.utc))
        self.browser = HostDatastoreBrowser(vc, f"datastoreBrowser-{mo_id}", lambda: list(self.datastores))
        self.config_manager, managers = build_config_managers(vc, self)
        #: Objects that belong to this host, registered with it.
        self.owned: list[SimObject] = [self.browser, *managers]

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if vm.host is self]

    def compute_resource(self) -> ClusterComputeResource:
        """The cluster this host belongs to."""
        assert isinstance(self.parent, ClusterComputeResource)
        return self.parent

    def prop_datastore(self) -> list[Any]:
        return [d.ref for d in self.datastores]

    def prop_network(self) -> list[Any]:
        return [n.ref for n in self.networks]

    def prop_hardware(self) -> Any:
        return hardware_info(self)

    def prop_config(self) -> Any:
        return config_info(self)

    def prop_configManager(self) -> Any:
        return self.config_manager

    def prop_capability(self) -> Any:
        return capability()

    def prop_datastoreBrowser(self) -> Any:
        return self.browser.ref

    def prop_licensableResource(self) -> Any:
        return vim.LicenseManager.LicensableResourceInfo(resource=[
            vmodl.KeyAnyValue(key="numCpuPackages", value=self.hardware.cpu_packages),
            vmodl.KeyAnyValue(key="numCpuCores", value=self.hardware.cores)])

    @vmomi_method()
    def RetrieveHardwareUptime(self, ctx: CallContext) -> int:
        # RetrieveHardwareUptime: "the number of seconds since the hardware was last booted".
        return int(time.time() - self.boot_time)

    def prop_summary(self) -> Any:
        return vim.host.Summary(
            host=self.ref, hardware=hardware_summary(self), runtime=self.props["runtime"], overallStatus="green",
            rebootRequired=False, managementServerIp="127.0.0.1", maxEVCModeKey="intel-icelake",
            currentEVCModeKey="",
            config=vim.host.Summary.ConfigSummary(name=self.name, port=443, product=product(), vmotionEnabled=True,
                                                  faultToleranceEnabled=False, sslThumbprint=self.ssl_thumbprint),
            quickStats=quick_stats(self))


class ClusterComputeResource(Unmodelled, ManagedEntity):
    """vim.ClusterComputeResource with hosts and a root resource pool."""

    vim_type = vim.ClusterComputeResource
    dynamic_properties = frozenset({"summary"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.hosts: list[HostSystem] = []
        self.root_pool = ResourcePool(vc, vc.new_id("resgroup"), "Resources", self, self)
        vc.add(self.root_pool)
        self.environment_browser = EnvironmentBrowser(vc, vc.new_id("envbrowser"), self)
        vc.add(self.environment_browser)

    def children(self) -> list[ManagedEntity]:
        return [*self.hosts, self.root_pool]

    def prop_host(self) -> list[Any]:
        return [h.ref for h in self.hosts]

    def prop_resourcePool(self) -> Any:
        return self.root_pool.ref

    def prop_environmentBrowser(self) -> Any:
        # ComputeResource.environmentBrowser: "The environment browser object that identifies the
        # environments that are supported on this compute resource."
        return self.environment_browser.ref

    def prop_datastore(self) -> list[Any]:
        seen: dict[str, Any] = {}
        for host in self.hosts:
            for ds in host.datastores:
                seen.setdefault(ds.mo_id, ds.ref)
        return list(seen.values())

    def prop_network(self) -> list[Any]:
        seen: dict[str, Any] = {}
        for host in self.hosts:
            for net in host.networks:
                seen.setdefault(net.mo_id, net.ref)
        return list(seen.values())

    @staticmethod
    def _das_drs() -> dict[str, Any]:
        # A cluster as vCenter creates it by default: DRS on, fully automated; HA off.
        return {"dasConfig": vim.cluster.DasConfigInfo(enabled=False, vmMonitoring="vmMonitoringDisabled",
                                                       hostMonitoring="enabled", failoverLevel=1,
                                                       admissionControlEnabled=True),
                "drsConfig": vim.cluster.DrsConfigInfo(enabled=True, enableVmBehaviorOverrides=True,
                                                       defaultVmBehavior="fullyAutomated", vmotionRate=3)}

    def prop_configurationEx(self) -> Any:
        # ComputeResource.configurationEx: "For a cluster this property will return a
        # ClusterConfigInfoEx object", whose dasConfig and drsConfig are required.
        return vim.cluster.ConfigInfoEx(**self._das_drs(), vmSwapPlacement="vmDirectory",
                                        dpmConfigInfo=vim.cluster.DpmConfigInfo(enabled=False,
                                                                                defaultDpmBehavior="automated"))

    def prop_configuration(self) -> Any:
        # ClusterComputeResource.configuration (deprecated for configurationEx, still a required
        # property that older scripts read): the same HA and DRS settings.
        return vim.cluster.ConfigInfo(**self._das_drs())

    def total_cpu_mhz(self) -> int:
        return sum(h.hardware.cores * h.hardware.cpu_mhz for h in self.hosts)

    def effective_cpu_mhz(self) -> int:
        return int(self.total_cpu_mhz() * (1 - HYPERVISOR_SHARE))

    def effective_memory_mb(self) -> int:
        return int(sum(h.hardware.memory_bytes for h in self.hosts) // MB * (1 - HYPERVISOR_SHARE))

    def prop_summary(self) -> Any:
        # ComputeResourceSummary: totalCpu and effectiveCpu in MHz, totalMemory in bytes, effectiveMemory in MB.
        return vim.ClusterComputeResource.Summary(
            numHosts=len(self.hosts), numEffectiveHosts=len(self.hosts), totalCpu=self.total_cpu_mhz(),
            totalMemory=sum(h.hardware.memory_bytes for h in self.hosts), effectiveCpu=self.effective_cpu_mhz(),
            effectiveMemory=self.effective_memory_mb(), numCpuCores=sum(h.hardware.cores for h in self.hosts),
            numCpuThreads=sum(h.hardware.threads for h in self.hosts), overallStatus="green",
            currentFailoverLevel=0, numVmotions=0)


class Datastore(Unmodelled, ManagedEntity):
    """vim.Datastore: a shared VMFS 6 volume, with a browser over its contents."""

    vim_type = vim.Datastore
    dynamic_properties = frozenset({"vm", "summary", "info"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None,
                 capacity: int = 2048 * GB) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.capacity = capacity
        self.url = f"ds:///vmfs/volumes/{volume_uuid(self)}/"
        #: The LUN the volume lives on (an NAA name as ESXi reports a SAN disk).
        self.disk_name = "naa.6000c29" + hashlib.sha256(mo_id.encode()).hexdigest()[:25]
        #: Folders made with FileManager.MakeDirectory: relative path -> creation time.
        self.directories: dict[str, float] = {}
        self.browser = HostDatastoreBrowser(vc, f"datastoreBrowser-{mo_id}", lambda: [self])
        self.owned: list[SimObject] = [self.browser]

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if vm.datastore is self]

    def used_bytes(self) -> int:
        return sum(layer.size for layer in self.vc.disks.layers.values() if layer.datastore is self)

    def prop_browser(self) -> Any:
        return self.browser.ref

    def prop_summary(self) -> Any:
        return vim.Datastore.Summary(datastore=self.ref, name=self.name, url=self.url, capacity=self.capacity,
                                     freeSpace=self.capacity - self.used_bytes(), uncommitted=0, accessible=True,
                                     type="VMFS", multipleHostAccess=True, maintenanceMode="normal")

    def prop_info(self) -> Any:
        # VmfsDatastoreInfo's limits are VMFS 6's: 62 TB files and RDMs.
        limit = 62 * 1024 * GB
        return vim.host.VmfsDatastoreInfo(
            name=self.name, url=self.url, freeSpace=self.capacity - self.used_bytes(), maxFileSize=limit,
            maxVirtualDiskCapacity=limit, maxMemoryFileSize=limit, maxPhysicalRDMFileSize=limit,
            maxVirtualRDMFileSize=limit, containerId=volume_uuid(self),
            vmfs=vmfs_volume(self))

    def prop_capability(self) -> Any:
        return vim.Datastore.Capability(directoryHierarchySupported=True, rawDiskMappingsSupported=True,
                                        perFileThinProvisioningSupported=True, storageIORMSupported=True,
                                        nativeSnapshotSupported=False, topLevelDirectoryCreateSupported=True,
                                        seSparseSupported=True, vmfsSparseSupported=True, vsanSparseSupported=False,
                                        upitSupported=False, vmdkExpandSupported=True, clusteredVmdkSupported=True)

    def prop_host(self) -> list[Any]:
        return [vim.Datastore.HostMount(key=h.ref, mountInfo=vim.host.MountInfo(
            path=f"/vmfs/volumes/{volume_uuid(self)}", accessMode="readWrite", mounted=True, accessible=True))
            for h in self.vc.of_type(HostSystem) if self in h.datastores]


class Network(Unmodelled, ManagedEntity):
    """vim.Network (a standard port group)."""

    vim_type = vim.Network
    dynamic_properties = frozenset({"vm"})

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if self in vm.networks]

    def prop_host(self) -> list[Any]:
        return [h.ref for h in self.vc.of_type(HostSystem) if self in h.networks]

    def prop_summary(self) -> Any:
        return vim.Network.Summary(network=self.ref, name=self.name, accessible=True)


def datacenter_of(entity: ManagedEntity) -> Datacenter | None:
    """The datacenter an entity lives in."""
    node: Any = entity
    while node is not None and not isinstance(node, Datacenter):
        node = node.parent
    return node
