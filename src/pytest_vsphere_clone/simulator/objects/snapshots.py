"""Snapshots: the tree on a VM, the vim.vm.Snapshot objects and their methods."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import SimObject, vmomi_method
from .disks import DiskLayer
from .vm_state import DISK_KEY, VmState

if TYPE_CHECKING:
    from ..vcenter import CallContext



@dataclass(frozen=True)
class VmSettings:
    """The settings a snapshot keeps besides its disk state: those ReconfigVM_Task changes here.

    VirtualMachineSnapshot.config: "Information about the configuration of this virtual machine
    when this snapshot was taken", and RevertToSnapshot_Task: "Change the execution state of the
    virtual machine to the state of this snapshot": a revert brings these settings back with the disk.
    """

    annotation: str
    num_cpu: int
    memory_mb: int
    extra_config: dict[str, str]

    @classmethod
    def of(cls, vm: VmState) -> VmSettings:
        return cls(vm.annotation, vm.num_cpu, vm.memory_mb, dict(vm.extra_config))

    def apply_to(self, vm: VmState) -> None:
        vm.annotation = self.annotation
        vm.num_cpu = self.num_cpu
        vm.memory_mb = self.memory_mb
        vm.extra_config = dict(self.extra_config)

    def config_info(self, config: Any, layer: DiskLayer) -> Any:
        """``config`` (the VM's ConfigInfo) as it was at the snapshot; its disk names the snapshot's
        layer ("The datastore paths for the virtual machine disks point to the head of the disk
        chain that represents the disk at this given snapshot")."""
        config.annotation = self.annotation
        config.hardware.numCPU = self.num_cpu
        config.hardware.memoryMB = self.memory_mb
        config.extraConfig = [vim.option.OptionValue(key=k, value=v) for k, v in sorted(self.extra_config.items())]
        for device in config.hardware.device:
            # The first disk's chain is the snapshot's; the extra disks (devices.py) keep no chain of their
            # own in the simulator, nor do snapshots record the set of devices: those are the VM's current.
            if isinstance(device, vim.vm.device.VirtualDisk) and device.key == DISK_KEY:
                device.backing = layer.backing()
        return config


@dataclass(eq=False)
class SnapshotNode:
    """One snapshot: the disk layer it froze, its children and its managed object."""

    snapshot_id: int
    name: str
    description: str
    created: float
    layer: DiskLayer
    power_state: str
    quiesced: bool
    mo: VmSnapshot
    settings: VmSettings
    parent: SnapshotNode | None = None
    children: list[SnapshotNode] = field(default_factory=list)

    @property
    def ref(self) -> Any:
        return self.mo.ref

    def tree(self, vm: Any) -> Any:
        return vim.vm.SnapshotTree(
            snapshot=self.ref, vm=vm, name=self.name, description=self.description, id=self.snapshot_id,
            createTime=datetime.fromtimestamp(self.created, tz=timezone.utc), state=self.power_state,
            quiesced=self.quiesced, backupManifest="", childSnapshotList=[c.tree(vm) for c in self.children],
            replaySupported=False)

    def walk(self) -> list[SnapshotNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


class VmSnapshot(SimObject):
    """vim.vm.Snapshot."""

    vim_type = vim.vm.Snapshot

    def __init__(self, vm: SnapshotMethods, mo_id: str) -> None:
        super().__init__(vm.vc, mo_id)
        self.vm = vm
        self.node: SnapshotNode | None = None

    def prop_vm(self) -> Any:
        return self.vm.ref

    def prop_childSnapshot(self) -> list[Any]:
        return [c.ref for c in self.node.children] if self.node else []

    def prop_config(self) -> Any:
        node = self._live_node()
        return node.settings.config_info(self.vm.prop_config(), node.layer)

    @vmomi_method("VirtualMachine.State.RemoveSnapshot")
    def RemoveSnapshot_Task(self, ctx: CallContext, removeChildren: bool, consolidate: bool | None = None) -> Any:
        vm = self.vm

        def remove() -> None:
            with vm.vc.lock:
                node = self._live_node()
                vm.remove_snapshot_node(node, removeChildren)
                vm.consolidate_chain()
                vm.changed()

        # TaskInfo.entity must be a ManagedEntity: a vCenter names the snapshot's VM there.
        return vm.vc.tasks.start(ctx, vm, "RemoveSnapshot_Task", "snapshot.remove", remove)

    @vmomi_method("VirtualMachine.State.RevertToSnapshot")
    def RevertToSnapshot_Task(self, ctx: CallContext, host: Any = None, suppressPowerOn: bool | None = None) -> Any:
        vm = self.vm

        def revert() -> None:
            with vm.vc.lock:
                power = vm.revert_to(self._live_node(), bool(suppressPowerOn))
            vm.follow_power_change(power)

        return vm.vc.tasks.start(ctx, vm, "RevertToSnapshot_Task", "snapshot.create", revert)  # entity: the VM

    def _live_node(self) -> SnapshotNode:
        if not self.alive or self.node is None:
            raise vmodl.fault.ManagedObjectNotFound(msg="The snapshot has already been deleted", obj=self.ref)
        return self.node


class SnapshotMethods(VmState):
    """Snapshot operations of a VirtualMachine (mixed into it)."""

    snapshot_roots: list[SnapshotNode]
    current_snapshot: SnapshotNode | None

    def all_snapshots(self) -> list[SnapshotNode]:
        nodes: list[SnapshotNode] = []
        for root in self.snapshot_roots:
            nodes.extend(root.walk())
        return nodes

    def find_snapshot(self, ref: Any) -> SnapshotNode:
        for node in self.all_snapshots():
            if node.mo.mo_id == getattr(ref, "_moId", None):
                return node
        raise vmodl.fault.InvalidArgument(msg=f"Snapshot {ref} does not belong to {self.name}",
                                          invalidProperty="snapshot")

    def prop_snapshot(self) -> Any:
        if not self.snapshot_roots:
            return None
        return vim.vm.SnapshotInfo(currentSnapshot=self.current_snapshot.ref if self.current_snapshot else None,
                                   rootSnapshotList=[root.tree(self.ref) for root in self.snapshot_roots])

    def prop_rootSnapshot(self) -> list[Any]:
        return [root.ref for root in self.snapshot_roots]

    def take_snapshot(self, name: str, description: str, quiesced: bool, memory: bool = False) -> SnapshotNode:
        """Freeze the current disk layer under a new snapshot (caller holds the lock)."""
        assert self.disk is not None
        mo = VmSnapshot(self, self.vc.new_id("snapshot"))
        ids = [n.snapshot_id for n in self.all_snapshots()]
        # CreateSnapshot_Task, memory: "When set to FALSE, the power state of the snapshot is set to
        # powered off." Only a memory snapshot of a running VM records it powered on.
        state = "poweredOn" if memory and self.power_state == "poweredOn" else "poweredOff"
        node = SnapshotNode(max(ids, default=0) + 1, name, description, time.time(), self.disk,
                            state, quiesced, mo, VmSettings.of(self), parent=self.current_snapshot)
        mo.node = node
        self.vc.add(mo)
        if self.current_snapshot is None:
            self.snapshot_roots.append(node)
        else:
            self.current_snapshot.children.append(node)
        self.current_snapshot = node
        self.disk = self.vc.disks.create_delta(self.name, self.mo_id, self.datastore, self.disk)
        return node

    def remove_snapshot_node(self, node: SnapshotNode, remove_children: bool) -> None:
        removed = node.walk() if remove_children else [node]
        siblings = node.parent.children if node.parent else self.snapshot_roots
        index = siblings.index(node)
        siblings.remove(node)
        if not remove_children:
            for child in node.children:
                child.parent = node.parent
            siblings[index:index] = node.children
        for gone in removed:
            gone.mo.alive = False
            self.vc.remove(gone.mo)
        if self.current_snapshot in removed:
            self.current_snapshot = node.parent

    def drop_all_snapshot_objects(self) -> None:
        for node in self.all_snapshots():
            node.mo.alive = False
            self.vc.remove(node.mo)
        self.snapshot_roots = []
        self.current_snapshot = None

    def consolidate_chain(self) -> None:
        """Merge this VM's disk chain as far as no snapshot or other disk depends on it."""
        if self.disk is None:
            return
        self.disk = self.vc.disks.collapse(self.disk, self.vc.disk_tops(exclude=self), self.vc.pinned_layers())
        for node in self.all_snapshots():  # a merged layer keeps the key of the chain's lowest layer
            node.layer = self.vc.disks.layers.get(node.layer.key, node.layer)

    def revert_to(self, node: SnapshotNode, suppress_power_on: bool = False) -> str | None:
        """Go back to ``node`` (caller holds the lock); returns the power change to carry out.

        RevertToSnapshot_Task: "Change the execution state of the virtual machine to the state of
        this snapshot." A snapshot taken without memory is powered off (CreateSnapshot_Task), so
        the VM ends powered off; one taken with memory of a running VM powers it on again, unless
        suppressPowerOn: "If set to true, the virtual machine will not be powered on regardless of
        the power state when the snapshot was created." (A running guest is not rewound to the
        snapshot's memory: the simulator keeps it running as it is.)
        """
        old = self.disk
        self.disk = self.vc.disks.create_delta(self.name, self.mo_id, self.datastore, node.layer)
        self.current_snapshot = node
        self.vc.disks.release(old, self.vc.disk_tops(), self.vc.pinned_layers())
        node.settings.apply_to(self)
        change: str | None = None
        if node.power_state == "poweredOff" and self.power_state == "poweredOn":
            self.power_state = "poweredOff"
            self.frozen = False  # a power cycle loses the frozen state
            self.frozen_shared_layer = None
            self.boot_time = None
            change = "poweredOff"
        elif node.power_state == "poweredOn" and self.power_state == "poweredOff" and not suppress_power_on:
            self.power_state = "poweredOn"
            self.boot_time = time.time()
            change = "poweredOn"
        self.changed()
        return change

    def follow_power_change(self, change: str | None) -> None:
        """Stop or start the guest after a revert changed the power state (without the lock)."""
        if change == "poweredOff":
            self.stop_guest()
        elif change == "poweredOn":
            self.start_guest()

    @vmomi_method("VirtualMachine.State.CreateSnapshot")
    def CreateSnapshot_Task(self, ctx: CallContext, name: str, description: str | None = None,
                            memory: bool = False, quiesce: bool = False) -> Any:
        def create() -> Any:
            with self.vc.lock:
                if self.disk is None:
                    raise vim.fault.InvalidState(msg="The virtual machine has no disk to snapshot.")
                if self.frozen:
                    raise vim.fault.InvalidState(msg="The operation is not allowed in the current state "
                                                     "(the virtual machine is frozen).")
                if self.disk.depth() >= 255:
                    raise vim.fault.TooManySnapshotLevels(msg="Exceeded the maximum number of permitted snapshots.")
                node = self.take_snapshot(name, description or "", bool(quiesce), bool(memory))
                self.changed()
                return node.ref

        return self.vc.tasks.start(ctx, self, "CreateSnapshot_Task", "snapshot.create", create)

    @vmomi_method("VirtualMachine.State.RemoveSnapshot")
    def RemoveAllSnapshots_Task(self, ctx: CallContext, consolidate: bool | None = None,
                                spec: Any = None) -> Any:
        def remove_all() -> None:
            with self.vc.lock:
                self.drop_all_snapshot_objects()
                self.consolidate_chain()
                self.changed()

        return self.vc.tasks.start(ctx, self, "RemoveAllSnapshots_Task", "snapshot.remove", remove_all)

    @vmomi_method("VirtualMachine.State.RevertToSnapshot")
    def RevertToCurrentSnapshot_Task(self, ctx: CallContext, host: Any = None,
                                     suppressPowerOn: bool | None = None) -> Any:
        def revert() -> None:
            with self.vc.lock:
                if self.current_snapshot is None:
                    raise vim.fault.NotFound(msg="The virtual machine has no current snapshot.")
                power = self.revert_to(self.current_snapshot, bool(suppressPowerOn))
            self.follow_power_change(power)

        return self.vc.tasks.start(ctx, self, "RevertToCurrentSnapshot_Task", "snapshot.create", revert)

    @vmomi_method("VirtualMachine.State.RemoveSnapshot")
    def ConsolidateVMDisks_Task(self, ctx: CallContext) -> Any:
        def consolidate() -> None:
            with self.vc.lock:
                self.consolidate_chain()
                self.changed()

        return self.vc.tasks.start(ctx, self, "ConsolidateVMDisks_Task", "snapshot.remove", consolidate)
