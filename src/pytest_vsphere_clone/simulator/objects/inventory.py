"""Inventory containers: folders, datacenters, clusters, hosts, pools, datastores, networks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from .base import ManagedEntity

if TYPE_CHECKING:
    from ..vcenter import VCenter

GB = 1024**3


class Folder(ManagedEntity):
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


class Datacenter(ManagedEntity):
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


class ResourcePool(ManagedEntity):
    """vim.ResourcePool (the cluster's root pool, or a child pool)."""

    vim_type = vim.ResourcePool
    dynamic_properties = frozenset({"vm"})

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


class HostSystem(ManagedEntity):
    """vim.HostSystem (an ESXi host of a cluster)."""

    vim_type = vim.HostSystem
    dynamic_properties = frozenset({"vm"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.datastores: list[Datastore] = []
        self.networks: list[Network] = []
        self.props["runtime"] = vim.host.RuntimeInfo(connectionState="connected", powerState="poweredOn",
                                                     inMaintenanceMode=False)

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if vm.host is self]

    def prop_datastore(self) -> list[Any]:
        return [d.ref for d in self.datastores]

    def prop_network(self) -> list[Any]:
        return [n.ref for n in self.networks]

    def prop_summary(self) -> Any:
        return vim.host.Summary(
            host=self.ref, runtime=self.props["runtime"], overallStatus="green", rebootRequired=False,
            managementServerIp="127.0.0.1",
            config=vim.host.Summary.ConfigSummary(name=self.name, port=443, vmotionEnabled=True,
                                                  faultToleranceEnabled=False),
            quickStats=vim.host.Summary.QuickStats(),
        )


class ClusterComputeResource(ManagedEntity):
    """vim.ClusterComputeResource with hosts and a root resource pool."""

    vim_type = vim.ClusterComputeResource

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.hosts: list[HostSystem] = []
        self.root_pool = ResourcePool(vc, vc.new_id("resgroup"), "Resources", self, self)
        vc.add(self.root_pool)

    def children(self) -> list[ManagedEntity]:
        return [*self.hosts, self.root_pool]

    def prop_host(self) -> list[Any]:
        return [h.ref for h in self.hosts]

    def prop_resourcePool(self) -> Any:
        return self.root_pool.ref

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

    def prop_summary(self) -> Any:
        return vim.ClusterComputeResource.Summary(
            numHosts=len(self.hosts), numEffectiveHosts=len(self.hosts), totalCpu=0, totalMemory=0,
            effectiveCpu=0, effectiveMemory=0, numCpuCores=0, numCpuThreads=0, overallStatus="green")


class Datastore(ManagedEntity):
    """vim.Datastore."""

    vim_type = vim.Datastore
    dynamic_properties = frozenset({"vm"})

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: ManagedEntity | None,
                 capacity: int = 2048 * GB) -> None:
        super().__init__(vc, mo_id, name, parent)
        self.capacity = capacity
        self.url = f"ds:///vmfs/volumes/{mo_id}/"

    def prop_vm(self) -> list[Any]:
        from .virtual_machine import VirtualMachine

        return [vm.ref for vm in self.vc.of_type(VirtualMachine) if vm.datastore is self]

    def used_bytes(self) -> int:
        return sum(layer.size for layer in self.vc.disks.layers.values() if layer.datastore is self)

    def prop_summary(self) -> Any:
        return vim.Datastore.Summary(datastore=self.ref, name=self.name, url=self.url, capacity=self.capacity,
                                     freeSpace=self.capacity - self.used_bytes(), accessible=True, type="VMFS",
                                     multipleHostAccess=True)

    def prop_info(self) -> Any:
        return vim.host.VmfsDatastoreInfo(name=self.name, url=self.url, freeSpace=self.capacity - self.used_bytes(),
                                          maxFileSize=62 * 1024 * GB)

    def prop_host(self) -> list[Any]:
        return [vim.Datastore.HostMount(key=h.ref, mountInfo=vim.host.MountInfo(accessMode="readWrite"))
                for h in self.vc.of_type(HostSystem) if self in h.datastores]


class Network(ManagedEntity):
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
