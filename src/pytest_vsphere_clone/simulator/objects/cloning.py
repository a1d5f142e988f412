"""CloneVM_Task (full and linked), InstantClone_Task and PromoteDisks_Task."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..provisioning_limits import provisioning_costs
from .base import vmomi_method
from .devices import check_device_changes, check_instant_changes, copy_extra_disks
from .disks import MAX_CHAIN_LENGTH, DiskLayer
from .events import post_clone_events, post_vm_event
from .snapshots import SnapshotMethods

if TYPE_CHECKING:
    from ..vcenter import CallContext
    from .inventory import Datastore, Folder, HostSystem, ResourcePool
    from .virtual_machine import VirtualMachine


LINKED = "createNewChildDiskBacking"
SHARING_MOVE_TYPES = {LINKED, "moveChildMostDiskBacking", "moveAllDiskBackingsAndAllowSharing",
                      "moveAllDiskBackingsAndDisallowSharing", "moveAllDiskBackingsAndConsolidate"}


#: What an ESXi host answers to a clone (vmodl.fault.NotSupported: "Thrown if the method is not supported
#: on the server. Not all methods are supported on all servers (for example, an ESX Server host supports
#: less functionality than a VirtualCenter server)"). Real hosts start the task and fail it (govmomi #1469,
#: pyvmomi-community-samples #628: "ESXi does not support the Clone API"); the vSphere SDK guide's
#: "Limitations of Instant Clones": not available when connected directly to ESXi.
HOST_AGENT_REFUSAL = "The operation is not supported on the object."


class CloneMethods(SnapshotMethods):
    """Cloning operations of a VirtualMachine (mixed into it)."""

    def _refuse_on_host_agent(self) -> None:
        """On a direct ESXi connection cloning ends with NotSupported (see HOST_AGENT_REFUSAL)."""
        if self.vc.options.host_agent:
            raise vmodl.fault.NotSupported(msg=HOST_AGENT_REFUSAL)

    def _placement(self, ctx: CallContext, location: Any, folder_ref: Any) -> tuple[Folder, ResourcePool,
                                                                                    HostSystem, Datastore]:
        """Resolve where a clone goes (caller holds the lock); defaults are the source's own."""
        from .inventory import Datastore, Folder, HostSystem, ResourcePool

        vc = self.vc
        folder = vc.lookup_as(folder_ref, Folder) if folder_ref is not None else self.folder()
        if "VirtualMachine" not in folder.props["childType"]:
            raise vmodl.fault.InvalidArgument(msg=f"Folder '{folder.name}' cannot hold virtual machines",
                                              invalidProperty="folder")
        pool = vc.lookup_as(location.pool, ResourcePool) if location and location.pool else self.pool
        host = vc.lookup_as(location.host, HostSystem) if location and location.host else self.host
        datastore = (vc.lookup_as(location.datastore, Datastore) if location and location.datastore
                     else self.datastore)
        ctx.require("VirtualMachine.Inventory.CreateFromExisting", folder)
        ctx.require("Resource.AssignVMToPool", pool)
        ctx.require("Datastore.AllocateSpace", datastore)
        return folder, pool, host, datastore

    def _new_clone(self, name: str, folder: Folder, pool: ResourcePool, host: HostSystem,
                   datastore: Datastore) -> VirtualMachine:
        from .virtual_machine import VirtualMachine, new_mac

        if any(child.name == name for child in folder.children()):
            raise vim.fault.DuplicateName(msg=f"The name '{name}' already exists.", name=name, object=folder.ref)
        clone = VirtualMachine(self.vc, self.vc.new_id("vm"), name, folder, pool=pool, host=host,
                               datastore=datastore, networks=self.networks, guest_id=self.guest_id,
                               num_cpu=self.num_cpu, memory_mb=self.memory_mb)
        clone.extra_config = dict(self.extra_config)
        clone.annotation = self.annotation
        clone.tools_installed = self.tools_installed
        clone.hot_plug = replace(self.hot_plug)  # the source's configuration, CPU and memory hot plug included
        copy_extra_disks(self, clone)
        for source_nic, nic in zip(self.nics, clone.nics, strict=True):
            nic.start_connected = source_nic.start_connected
        # A vCenter never hands out an assigned MAC twice; random ones collide after a few thousand clones.
        taken = {n.mac for vm in self.vc.of_type(VirtualMachine) for n in vm.nics}
        for nic in clone.nics:
            while nic.mac in taken:
                nic.mac = new_mac()
            taken.add(nic.mac)
        return clone

    def _register(self, clone: VirtualMachine, folder: Folder) -> None:
        self.vc.add(clone)
        folder.attach(clone)

    def _unregister_failed(self, clone: VirtualMachine) -> None:
        """Take a clone whose creation failed out of the inventory, with the disk layer made for it."""
        with self.vc.lock:
            clone.alive = False
            clone.power_state = "poweredOff"
            clone.folder().detach(clone)
            self.vc.remove(clone)
            self.vc.disks.release(clone.disk, self.vc.disk_tops(), self.vc.pinned_layers())
            clone.disk = None
            self.changed()

    def clone_privilege(self, to_template: bool) -> str:
        """CloneVM_Task's privilege on this source (API reference): "The privilege required on the source
        virtual machine depends on the source and destination types: source is virtual machine, destination is
        virtual machine - VirtualMachine.Provisioning.Clone; source is virtual machine, destination is template -
        VirtualMachine.Provisioning.CreateTemplateFromVM; source is template, destination is virtual machine -
        VirtualMachine.Provisioning.DeployTemplate; source is template, destination is template -
        VirtualMachine.Provisioning.CloneTemplate"."""
        if self.template:
            return "VirtualMachine.Provisioning." + ("CloneTemplate" if to_template else "DeployTemplate")
        return "VirtualMachine.Provisioning." + ("CreateTemplateFromVM" if to_template else "Clone")

    # pyVmomi gives CloneVM_Task no privilege of its own (it depends on the source): checked in the method.
    @vmomi_method()
    def CloneVM_Task(self, ctx: CallContext, folder: Any, name: str, spec: Any) -> Any:
        with self.vc.lock:
            ctx.require(self.clone_privilege(bool(spec.template)), self)
            # Privileges and references fail the call itself. Cloning costs 1 against the hosts it
            # involves (vSphere docs, "Limits on Simultaneous Migrations": "other provisioning
            # operations", such as cloning); more than the maximum cost of a host queue.
            _, _, target_host, _ = self._placement(ctx, spec.location, folder)
            # CloneVM_Task (API reference): "If customization is requested in the CloneSpec, then the
            # VirtualMachine.Provisioning.Customize privilege must also be held on the source virtual
            # machine." It names no privilege for CloneSpec.config (numCPUs, memoryMB, extraConfig,
            # deviceChange) or location.deviceChange: those are not checked change by change as
            # ReconfigVM_Task's are (virtual_machine.py), so none is required here.
            if spec.customization is not None:
                ctx.require("VirtualMachine.Provisioning.Customize", self)
            costs = provisioning_costs(self.host, target_host)
        move_type = spec.location.diskMoveType if spec.location else None
        operation = "clone.linked" if move_type == LINKED else "clone.full"

        def clone() -> Any:
            self._refuse_on_host_agent()
            with self.vc.lock:
                target_folder, pool, host, datastore = self._placement(ctx, spec.location, folder)
                post_clone_events(self, name, target_folder, host)
                if self.disk is None:
                    raise vim.fault.InvalidState(msg="The source has no disk.")
                snapshot_node = self.find_snapshot(spec.snapshot) if spec.snapshot else None
                snapshot = snapshot_node.layer if snapshot_node is not None else None
                if move_type == LINKED and snapshot is None:
                    raise vmodl.fault.InvalidArgument(
                        msg="A specified parameter was not correct: spec.snapshot "
                            "(createNewChildDiskBacking needs a snapshot to branch from)",
                        invalidProperty="spec.snapshot")
                if move_type is not None and move_type not in SHARING_MOVE_TYPES:
                    raise vmodl.fault.InvalidArgument(msg=f"Unknown diskMoveType {move_type}",
                                                      invalidProperty="spec.location.diskMoveType")
                new_vm = self._new_clone(name, target_folder, pool, host, datastore)
                if snapshot_node is not None:
                    # CloneSpec.snapshot: "the newly created virtual machine will have the same
                    # configuration as the virtual machine at the time the snapshot was taken."
                    snapshot_node.settings.apply_to(new_vm)
                base: DiskLayer = snapshot or self.disk
                if move_type == LINKED:
                    if base.depth() >= MAX_CHAIN_LENGTH:
                        raise vim.fault.TooManySnapshotLevels(msg="Exceeded the maximum number of permitted "
                                                                  "snapshots.")
                    new_vm.disk = self.vc.disks.create_delta(name, new_vm.mo_id, datastore, base)
                else:
                    new_vm.disk = self.vc.disks.copy_flat(base, name, new_vm.mo_id, datastore)
                try:
                    if spec.config is not None:
                        new_vm.apply_config_spec(spec.config)
                    if spec.location and spec.location.deviceChange:
                        new_vm.apply_device_changes(spec.location.deviceChange)
                except Exception:  # a refused spec makes no clone: its disk goes too
                    self.vc.disks.release(new_vm.disk, self.vc.disk_tops(), self.vc.pinned_layers())
                    raise
                new_vm.template = bool(spec.template)
                self._register(new_vm, target_folder)
            guests = self._guests()
            if guests is not None:
                guests.clone_disk(self, new_vm)
            post_clone_events(self, name, target_folder, host, clone=new_vm)
            if spec.powerOn and not spec.template:
                with self.vc.lock:
                    new_vm.power_state = "poweredOn"
                    new_vm.boot_time = new_vm.created
                    new_vm.changed()
                    post_vm_event(new_vm, vim.event.VmPoweredOnEvent)
                new_vm.start_guest()
            return new_vm.ref

        return self.vc.tasks.start(ctx, self, "CloneVM_Task", operation, clone, costs=costs)

    # InstantClone_Task: "The original virtual machine must be in a powered-on state", which a template never
    # is (MarkAsTemplate: "A VirtualMachine marked as a template cannot be powered on"): InvalidPowerState below.
    @vmomi_method("VirtualMachine.Provisioning.Clone")
    def InstantClone_Task(self, ctx: CallContext, spec: Any) -> Any:
        location = spec.location
        with self.vc.lock:
            folder, _, _, _ = self._placement(ctx, location, location.folder if location else None)
            # InstantClone_Task (API reference): "The privilege required for Instant Clone operation are:
            # VirtualMachine.Provisioning.Clone, VirtualMachine.Interact.PowerOn,
            # VirtualMachine.Inventory.CreateFromExisting, Datastore.AllocateSpace, Resource.AssignVMToPool".
            # The clone is made running in the folder whose permissions it inherits: PowerOn is checked
            # there. Nothing is named for InstantCloneSpec.config (extraConfig) or location.deviceChange
            # (NIC edits), so neither adds a privilege.
            ctx.require("VirtualMachine.Interact.PowerOn", folder)
            costs = provisioning_costs(self.host)  # a provisioning operation on the source's host

        def instant_clone() -> Any:
            self._refuse_on_host_agent()
            with self.vc.lock:
                if self.power_state != "poweredOn":
                    raise vim.fault.InvalidPowerState(
                        msg="Instant clone needs a powered-on (running or frozen) source virtual machine.",
                        requestedState="poweredOn", existingState=self.power_state)
                folder, pool, host, datastore = self._placement(ctx, location, location.folder if location else None)
                post_clone_events(self, spec.name, folder, host)
                if host is not self.host:
                    raise vmodl.fault.InvalidArgument(
                        msg="An instant clone must be placed on the host of its source virtual machine.",
                        invalidProperty="spec.location.host")
                if self.disk is None:
                    raise vim.fault.InvalidState(msg="The source has no disk.")
                if location and location.deviceChange:
                    check_instant_changes(location.deviceChange)
                    check_device_changes(self, location.deviceChange)  # the clone's NICs are the source's
                new_vm = self._new_clone(spec.name, folder, pool, host, datastore)
                if self.frozen:
                    # A frozen source writes nothing: one delta on it, shared by every clone.
                    if self.frozen_shared_layer is None:
                        self.frozen_shared_layer = self.disk
                        self.disk = self.vc.disks.create_delta(self.name, self.mo_id, self.datastore, self.disk)
                    parent = self.frozen_shared_layer
                else:
                    # A running source keeps writing: each clone freezes its current layer.
                    if self.disk.depth() >= MAX_CHAIN_LENGTH:
                        raise vim.fault.TooManySnapshotLevels(
                            msg=f"Cannot instant clone '{self.name}': its disk chain reached the limit of "
                                f"{MAX_CHAIN_LENGTH} delta disks (KB 67186). Collapse the source's delta disks.")
                    parent = self.disk
                    self.disk = self.vc.disks.create_delta(self.name, self.mo_id, self.datastore, self.disk)
                new_vm.disk = self.vc.disks.create_delta(spec.name, new_vm.mo_id, datastore, parent)
                for option in spec.config or ():
                    new_vm.extra_config[option.key] = str(option.value)
                for source_nic, nic in zip(self.nics, new_vm.nics, strict=True):
                    nic.connected = source_nic.connected
                if location and location.deviceChange:
                    new_vm.apply_device_changes(location.deviceChange)
                if spec.biosUuid:
                    new_vm.uuid = spec.biosUuid
                else:
                    new_vm.uuid = str(uuid.uuid4())
                new_vm.power_state = "poweredOn"
                new_vm.boot_time = self.boot_time
                new_vm.tools.running = self.tools.running or self.frozen
                self._register(new_vm, folder)
                self.changed()
            guests = self._guests()
            if guests is not None:
                try:
                    guests.instant_clone(self, new_vm)
                except Exception as exc:
                    # A failed InstantClone_Task creates nothing: the clone is unregistered (its guest
                    # and disk directory are gone already) and its delta disk deleted.
                    self._unregister_failed(new_vm)
                    if isinstance(exc, vmodl.MethodFault):
                        raise
                    raise vmodl.fault.SystemError(msg=f"A general system error occurred: instant clone "
                                                      f"{spec.name} of {self.name} failed: {exc}",
                                                  reason=str(exc)) from None
            post_clone_events(self, spec.name, folder, host, clone=new_vm)
            return new_vm.ref

        return self.vc.tasks.start(ctx, self, "InstantClone_Task", "clone.instant", instant_clone, costs=costs)

    @vmomi_method("VirtualMachine.Provisioning.PromoteDisks")
    def PromoteDisks_Task(self, ctx: CallContext, unlink: bool, disks: list[Any] | None = None) -> Any:
        def promote() -> None:
            with self.vc.lock:
                if self.disk is None:
                    return
                if self.all_snapshots():
                    raise vim.fault.InvalidState(msg="Disks cannot be promoted while the virtual machine has "
                                                     "snapshots.")
                if unlink:
                    old = self.disk
                    self.disk = self.vc.disks.copy_flat(old, self.name, self.mo_id, self.datastore)
                    self.vc.disks.release(old, self.vc.disk_tops(exclude=self), self.vc.pinned_layers())
                else:
                    self.consolidate_chain()
                self.frozen_shared_layer = None
                self.changed()

        return self.vc.tasks.start(ctx, self, "PromoteDisks_Task", "promote", promote)
