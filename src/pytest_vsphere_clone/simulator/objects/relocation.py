"""RelocateVM_Task: move a VM to another host, resource pool, folder or datastore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..provisioning_limits import (
    STORAGE_VMOTION_DATASTORE_COST,
    STORAGE_VMOTION_HOST_COST,
    VMOTION_DATASTORE_COST,
    VMOTION_HOST_COST,
    provisioning_costs,
)
from .base import SimObject, vmomi_method
from .disks import DiskLayer
from .snapshots import SnapshotMethods

if TYPE_CHECKING:
    from ..vcenter import CallContext
    from .inventory import Datastore, Folder, HostSystem, ResourcePool

#: RelocateSpec.diskMoveType: "The default value is moveAllDiskBackingsAndDisallowSharing."
DEFAULT_MOVE_TYPE = "moveAllDiskBackingsAndDisallowSharing"
ALLOW_SHARING = "moveAllDiskBackingsAndAllowSharing"
CHILD_MOST = "moveChildMostDiskBacking"
CONSOLIDATE = "moveAllDiskBackingsAndConsolidate"
RELOCATE_MOVE_TYPES = {DEFAULT_MOVE_TYPE, ALLOW_SHARING, CHILD_MOST, CONSOLIDATE}


class RelocateMethods(SnapshotMethods):
    """RelocateVM_Task of a VirtualMachine (mixed into it)."""

    def _relocation(self, ctx: CallContext, spec: Any) -> tuple[Folder, ResourcePool, HostSystem, Datastore]:
        """Resolve and check where the VM goes (caller holds the lock); unset parts stay as they are."""
        from .inventory import ClusterComputeResource, Datastore, Folder, HostSystem, ResourcePool

        vc = self.vc
        if self.power_state == "poweredOn":
            # RelocateVM_Task: Resource.ColdMigrate, and Resource.HotMigrate for a powered-on VM.
            ctx.require("Resource.HotMigrate", self)
        pool = vc.lookup_as(spec.pool, ResourcePool) if spec.pool is not None else self.pool
        if spec.pool is not None:
            ctx.require("Resource.AssignVMToPool", pool)
        cluster = pool.owner
        hosts = list(cluster.hosts) if isinstance(cluster, ClusterComputeResource) else [self.host]
        if spec.host is not None:
            host = vc.lookup_as(spec.host, HostSystem)
            if host not in hosts:
                raise vmodl.fault.InvalidArgument(
                    msg=f"Host '{host.name}' does not belong to the compute resource of resource pool '{pool.name}'.",
                    invalidProperty="spec.host")
        else:
            # RelocateSpec.host: "if resource pool is specified, and the target pool represents a
            # DRS-enabled cluster, a host selected by DRS is used": the current one if it is there.
            host = self.host if self.host in hosts else hosts[0]
        datastore = vc.lookup_as(spec.datastore, Datastore) if spec.datastore is not None else self.datastore
        if spec.datastore is not None:
            ctx.require("Datastore.AllocateSpace", datastore)
        if datastore not in host.datastores:
            raise vim.fault.DatastoreNotWritableOnHost(
                msg=f"Datastore '{datastore.name}' is not accessible from host '{host.name}'.",
                datastore=datastore.ref, name=datastore.name, host=host.ref)
        folder = vc.lookup_as(spec.folder, Folder) if spec.folder is not None else self.folder()
        if folder is not self.folder():
            if "VirtualMachine" not in folder.props["childType"]:
                raise vmodl.fault.InvalidArgument(msg=f"Folder '{folder.name}' cannot hold virtual machines",
                                                  invalidProperty="spec.folder")
            ctx.require("VirtualMachine.Inventory.Move", folder)
            if any(child.name == self.name for child in folder.children()):
                raise vim.fault.DuplicateName(msg=f"The name '{self.name}' already exists.", name=self.name,
                                              object=folder.ref)
        move_type = spec.diskMoveType or DEFAULT_MOVE_TYPE
        if move_type not in RELOCATE_MOVE_TYPES:
            # createNewChildDiskBacking is a cloning option: a relocation has no source to branch from.
            raise vmodl.fault.InvalidArgument(msg=f"diskMoveType {move_type} is not valid for a relocation",
                                              invalidProperty="spec.diskMoveType")
        if datastore is not self.datastore and self.frozen:
            raise vim.fault.InvalidState(msg="The disks of a frozen instant-clone source cannot be moved.")
        if spec.deviceChange:
            raise vmodl.fault.NotSupported(msg="The simulator relocates without device changes.")
        return folder, pool, host, datastore

    @vmomi_method("Resource.ColdMigrate")
    def RelocateVM_Task(self, ctx: CallContext, spec: Any, priority: str | None = None) -> Any:
        with self.vc.lock:
            _, _, host, datastore = self._relocation(ctx, spec)  # privileges and references fail the call itself
            costs = self._migration_costs(host, datastore)

        def relocate() -> None:
            with self.vc.lock:
                if not self.alive:
                    raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted", obj=self.ref)
                folder, pool, host, datastore = self._relocation(ctx, spec)
                if datastore is not self.datastore:
                    self._move_disks(datastore, spec.diskMoveType or DEFAULT_MOVE_TYPE)
                    self.datastore = datastore
                self.host = host  # a powered-on VM keeps running: its guest is not touched (vMotion)
                self.pool = pool
                if folder is not self.folder():
                    self.folder().detach(self)
                    folder.attach(self)
                self.changed()

        return self.vc.tasks.start(ctx, self, "RelocateVM_Task", "relocate", relocate, costs=costs)

    def _migration_costs(self, host: HostSystem, datastore: Datastore) -> dict[SimObject, int]:
        """What moving to ``host`` and ``datastore`` costs (vSphere docs, "Limits on Simultaneous Migrations").

        Powered off it is a cold migration, one of the "other provisioning operations" (1 against
        each host). Powered on: vMotion costs 1 against each host and the shared datastore, Storage
        vMotion 4 against the host and 16 against the source and destination datastores; "vMotion
        without shared storage is equivalent to a Storage vMotion". A move of folder or pool only
        migrates nothing.
        """
        moves_host, moves_disks = host is not self.host, datastore is not self.datastore
        if not (moves_host or moves_disks):
            return {}
        if self.power_state != "poweredOn":
            return provisioning_costs(self.host, host)
        costs: dict[SimObject, int] = {}
        host_cost = STORAGE_VMOTION_HOST_COST if moves_disks else VMOTION_HOST_COST
        costs.update({self.host: host_cost, host: host_cost})
        if moves_disks:
            costs.update({self.datastore: STORAGE_VMOTION_DATASTORE_COST, datastore: STORAGE_VMOTION_DATASTORE_COST})
        else:
            costs[datastore] = VMOTION_DATASTORE_COST
        return costs

    def _move_disks(self, datastore: Datastore, move_type: str) -> None:
        """Copy the VM's disk chain (as the move type asks) to ``datastore``; caller holds the lock.

        moveChildMostDiskBacking moves only the top layer; AllowSharing keeps the bottom layers
        already on the target; the others move the whole chain, so a linked clone stops sharing its
        base. Snapshots follow their layers; what nothing else uses any more is deleted.
        """
        if self.disk is None:
            return
        chain = self.disk.chain()
        first = len(chain) - 1 if move_type == CHILD_MOST else 0
        if move_type == ALLOW_SHARING:
            first = next((i for i, layer in enumerate(chain) if layer.datastore is not datastore), len(chain))
        moved: dict[int, DiskLayer] = {}
        parent = chain[first].parent if first < len(chain) else None
        disks = self.vc.disks
        for layer in chain[first:]:
            if parent is None:
                copy = disks.create_base(self.name, self.mo_id, datastore, layer.size)
            else:
                copy = disks.create_delta(self.name, self.mo_id, datastore, parent)
                copy.size = layer.size
            moved[layer.key] = copy
            parent = copy
        old = self.disk
        self.disk = moved.get(old.key, old)
        for node in self.all_snapshots():
            node.layer = moved.get(node.layer.key, node.layer)
        disks.release(old, self.vc.disk_tops(), self.vc.pinned_layers())  # self.disk is the new top
        if move_type == CONSOLIDATE:
            self.consolidate_chain()
