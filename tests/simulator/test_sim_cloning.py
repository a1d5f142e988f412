"""CloneVM_Task (full and linked), InstantClone_Task, PromoteDisks_Task and chain collapse, as a client sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import (
    backing_chain,
    disk_chain,
    linked_clone_spec,
    macs,
    snapshot_chain,
    vm_by_name,
    wait,
    wait_fault,
)

from pytest_vsphere_clone.simulator import Simulator

TEMPLATE_DISK = "[datastore1] linux-template/linux-template.vmdk"
FROZEN_DISK = "[datastore1] linux-frozen/linux-frozen.vmdk"


def _disk(vm: Any) -> Any:
    [disk] = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    return disk


def _linked_clone(si: Any, name: str, **spec: Any) -> Any:
    template = vm_by_name(si, "linux-template")
    return wait(template.CloneVM_Task(folder=template.parent, name=name,
                                      spec=linked_clone_spec(template.snapshot.currentSnapshot, **spec)))


def _instant_clone(source: Any, name: str, **spec: Any) -> Any:
    location = spec.pop("location", vim.vm.RelocateSpec())
    return wait(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name=name, location=location, **spec)))


# --- CloneVM_Task ------------------------------------------------------------------------------


def test_linked_clone_is_a_child_delta_of_the_snapshot_disk(shared_si: Any, unique: Callable[[str], str]) -> None:
    template = vm_by_name(shared_si, "linux-template")
    snapshot = template.snapshot.currentSnapshot
    name = unique("linked")
    clone = _linked_clone(shared_si, name)
    backing = _disk(clone).backing
    assert backing.fileName == f"[datastore1] {name}/{name}-000001.vmdk"
    assert backing.parent is not None and backing.parent.fileName == TEMPLATE_DISK
    assert backing.parent.parent is None
    # The parent is exactly the disk the template's snapshot holds.
    assert snapshot_chain(template, snapshot) == [TEMPLATE_DISK]
    assert backing.parent.uuid == _disk_backing_at(template, TEMPLATE_DISK).uuid
    assert disk_chain(clone) == [TEMPLATE_DISK, backing.fileName]
    assert backing_chain(clone) == disk_chain(clone)
    layout = clone.layoutEx
    types = {f.name: f.type for f in layout.file}
    assert types[backing.fileName] == "diskDescriptor"
    assert types[backing.fileName.replace(".vmdk", "-delta.vmdk")] == "diskExtent"
    assert clone.runtime.powerState == "poweredOff"
    assert clone.config.uuid != template.config.uuid and clone.config.instanceUuid != template.config.instanceUuid
    assert macs(clone) != macs(template)
    assert clone.parent == template.parent and clone.runtime.host == template.runtime.host
    # A second linked clone shares the same parent layer.
    sibling = _linked_clone(shared_si, unique("linked"))
    assert _disk(sibling).backing.parent.fileName == TEMPLATE_DISK


def _disk_backing_at(vm: Any, file_name: str) -> Any:
    backing = _disk(vm).backing
    while backing is not None and backing.fileName != file_name:
        backing = backing.parent
    assert backing is not None, f"{file_name} is not in {vm.name}'s chain"
    return backing


def test_full_clone_has_its_own_flat_disk(shared_si: Any, unique: Callable[[str], str]) -> None:
    template = vm_by_name(shared_si, "linux-template")
    name = unique("full")
    clone = wait(template.CloneVM_Task(folder=template.parent, name=name, spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec())))
    assert disk_chain(clone) == [f"[datastore1] {name}/{name}.vmdk"]
    assert _disk(clone).backing.parent is None
    files = {f.name: f.type for f in clone.layoutEx.file}
    assert files[f"[datastore1] {name}/{name}-flat.vmdk"] == "diskExtent"
    assert clone.snapshot is None


def test_clone_spec_placement_config_and_power(shared_si: Any, unique: Callable[[str], str]) -> None:
    index = shared_si.content.searchIndex
    esx2 = index.FindByInventoryPath("dc1/host/cluster1/esx2")
    name = unique("placed")
    clone = _linked_clone(
        shared_si, name, powerOn=True,
        config=vim.vm.ConfigSpec(annotation="made by a test",
                                 extraConfig=[vim.option.OptionValue(key="guestinfo.x", value="1")]),
        location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking", host=esx2))
    assert clone.runtime.host == esx2
    assert clone.runtime.powerState == "poweredOn"
    assert clone.config.annotation == "made by a test"
    assert ("guestinfo.x", "1") in {(o.key, o.value) for o in clone.config.extraConfig}
    as_template = _linked_clone(shared_si, unique("as-template"), template=True)
    assert as_template.config.template is True


def test_linked_clone_without_a_snapshot_is_a_fault(shared_si: Any, unique: Callable[[str], str]) -> None:
    template = vm_by_name(shared_si, "linux-template")
    name = unique("no-snapshot")
    fault = wait_fault(template.CloneVM_Task(folder=template.parent, name=name, spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"))))
    assert isinstance(fault, vmodl.fault.InvalidArgument)
    assert "snapshot" in fault.invalidProperty
    assert shared_si.content.searchIndex.FindByInventoryPath(f"dc1/vm/{name}") is None


def test_clone_with_a_duplicate_name_is_refused(shared_si: Any) -> None:
    template = vm_by_name(shared_si, "linux-template")
    fault = wait_fault(template.CloneVM_Task(folder=template.parent, name="linux-frozen",
                                             spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    assert isinstance(fault, vim.fault.DuplicateName)
    assert fault.name == "linux-frozen"


def test_clone_to_a_stale_folder_or_foreign_snapshot(shared_si: Any, unique: Callable[[str], str]) -> None:
    template = vm_by_name(shared_si, "linux-template")
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        template.CloneVM_Task(folder=vim.Folder("group-v424242"), name=unique("x"),
                              spec=linked_clone_spec(template.snapshot.currentSnapshot))
    foreign = vm_by_name(shared_si, "windows-template").snapshot.currentSnapshot
    fault = wait_fault(template.CloneVM_Task(folder=template.parent, name=unique("x"),
                                             spec=linked_clone_spec(foreign)))
    assert isinstance(fault, vmodl.fault.InvalidArgument)


def test_linked_clone_of_a_linked_clone_snapshot(shared_si: Any, unique: Callable[[str], str]) -> None:
    parent_name = unique("gen1")
    parent = _linked_clone(shared_si, parent_name)
    snapshot = wait(parent.CreateSnapshot_Task(name="gen1", memory=False, quiesce=False))
    child = wait(parent.CloneVM_Task(folder=parent.parent, name=unique("gen2"), spec=linked_clone_spec(snapshot)))
    chain = disk_chain(child)
    assert chain[:-1] == snapshot_chain(parent, snapshot) == [TEMPLATE_DISK,
                                                              f"[datastore1] {parent_name}/{parent_name}-000001.vmdk"]


# --- InstantClone_Task ----------------------------------------------------------------------------


def test_instant_clone_of_a_powered_off_source_is_invalid_power_state(shared_si: Any,
                                                                      unique: Callable[[str], str]) -> None:
    template = vm_by_name(shared_si, "linux-template")
    fault = wait_fault(template.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name=unique("ic"),
                                                                               location=vim.vm.RelocateSpec())))
    assert isinstance(fault, vim.fault.InvalidPowerState)
    assert fault.existingState == "poweredOff"


def test_frozen_source_stays_frozen_and_gets_exactly_one_delta(sim: Simulator, si: Any) -> None:
    source = vm_by_name(si, "linux-frozen")
    assert disk_chain(source) == [FROZEN_DISK]
    clones = [_instant_clone(source, f"ic-{i}") for i in range(3)]
    assert source.runtime.instantCloneFrozen is True and source.runtime.powerState == "poweredOn"
    assert disk_chain(source) == [FROZEN_DISK, "[datastore1] linux-frozen/linux-frozen-000001.vmdk"]
    for index, clone in enumerate(clones):
        # Every clone is a delta on the frozen source's disk, which the source no longer writes to.
        assert disk_chain(clone) == [FROZEN_DISK, f"[datastore1] ic-{index}/ic-{index}-000001.vmdk"]
        assert backing_chain(clone) == disk_chain(clone)
        runtime = clone.runtime
        assert runtime.powerState == "poweredOn" and runtime.instantCloneFrozen is False
        assert runtime.host == source.runtime.host
        assert clone.guest.toolsRunningStatus == "guestToolsRunning"
    all_macs = [m for vm in [source, *clones] for m in macs(vm)]
    assert len(set(all_macs)) == len(all_macs)
    uuids = [vm.config.uuid for vm in [source, *clones]]
    assert len(set(uuids)) == len(uuids)


def test_running_source_gains_one_delta_per_clone_and_collapses(sim: Simulator, si: Any) -> None:
    source = _linked_clone(si, "runner", powerOn=True)
    assert disk_chain(source) == [TEMPLATE_DISK, "[datastore1] runner/runner-000001.vmdk"]
    clones = []
    for index in range(4):
        before = disk_chain(source)
        clone = _instant_clone(source, f"rc-{index}")
        clones.append(clone)
        after = disk_chain(source)
        assert after[:-1] == before and len(after) == len(before) + 1
        # The clone branches from the layer the source just stopped writing to.
        assert disk_chain(clone) == [*before, f"[datastore1] rc-{index}/rc-{index}-000001.vmdk"]
        assert source.runtime.instantCloneFrozen is False
    assert len(disk_chain(source)) == 2 + 4
    # While the clones exist, consolidation cannot merge the layers they depend on.
    wait(source.ConsolidateVMDisks_Task())
    assert len(disk_chain(source)) == 6
    for clone in clones:
        wait(clone.PowerOffVM_Task())
        wait(clone.Destroy_Task())
    wait(source.ConsolidateVMDisks_Task())
    collapsed = disk_chain(source)
    assert collapsed == [TEMPLATE_DISK, "[datastore1] runner/runner-000001.vmdk"]
    assert backing_chain(source) == collapsed
    assert source.runtime.powerState == "poweredOn"


def test_running_source_chain_limit(sim: Simulator, si: Any) -> None:
    source = _linked_clone(si, "deep", powerOn=True)
    # Build the chain to 253 layers inside the simulator rather than with 251 instant clones.
    vm = sim.find_vm("deep")
    assert sim.vc is not None
    with sim.vc.lock:
        while vm.disk.depth() < 253:
            vm.disk = sim.vc.disks.create_delta(vm.name, vm.mo_id, vm.datastore, vm.disk)
        vm.changed()
    assert len(disk_chain(source)) == 253
    _instant_clone(source, "deep-1")
    last = _instant_clone(source, "deep-2")
    assert len(disk_chain(source)) == 255 and len(disk_chain(last)) == 255
    fault = wait_fault(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="deep-3",
                                                                             location=vim.vm.RelocateSpec())))
    assert isinstance(fault, vim.fault.TooManySnapshotLevels)
    assert "255" in fault.msg
    assert "deep-3" not in sim.vm_names()
    assert len(disk_chain(source)) == 255  # the failed clone left the source as it was


def test_instant_clone_honours_config_and_nic_device_change(shared_si: Any, unique: Callable[[str], str]) -> None:
    source = vm_by_name(shared_si, "windows-frozen")
    [nic] = [d for d in source.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    nic.connectable.connected = False
    nic.connectable.startConnected = False
    name = unique("ic-config")
    clone = _instant_clone(
        source, name,
        config=[vim.option.OptionValue(key="guestinfo.ic.ip", value="10.0.0.7"),
                vim.option.OptionValue(key="guestinfo.ic.name", value=name)],
        location=vim.vm.RelocateSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)]))
    extra = {(o.key, o.value) for o in clone.config.extraConfig}
    assert {("guestinfo.ic.ip", "10.0.0.7"), ("guestinfo.ic.name", name)} <= extra
    [clone_nic] = [d for d in clone.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert clone_nic.connectable.connected is False and clone_nic.connectable.startConnected is False
    assert clone_nic.macAddress != nic.macAddress
    [source_nic] = [d for d in source.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert source_nic.connectable.connected is True  # the source is untouched
    assert clone.config.guestId == source.config.guestId


def test_instant_clone_on_another_host_is_refused(shared_si: Any, unique: Callable[[str], str]) -> None:
    source = vm_by_name(shared_si, "linux-frozen")
    other = next(h for h in shared_si.content.searchIndex.FindByInventoryPath("dc1/host/cluster1").host
                 if h != source.runtime.host)
    fault = wait_fault(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(
        name=unique("ic-away"), location=vim.vm.RelocateSpec(host=other))))
    assert isinstance(fault, vmodl.fault.InvalidArgument)


def test_instant_clone_duplicate_name(shared_si: Any) -> None:
    source = vm_by_name(shared_si, "linux-frozen")
    fault = wait_fault(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="linux-template",
                                                                             location=vim.vm.RelocateSpec())))
    assert isinstance(fault, vim.fault.DuplicateName)


# --- PromoteDisks_Task -------------------------------------------------------------------------


def test_promote_disks_unlink_makes_an_independent_disk(shared_si: Any, unique: Callable[[str], str]) -> None:
    name = unique("promote")
    clone = _linked_clone(shared_si, name)
    assert len(disk_chain(clone)) == 2
    wait(clone.PromoteDisks_Task(unlink=True))
    assert disk_chain(clone) == [f"[datastore1] {name}/{name}.vmdk"]
    assert _disk(clone).backing.parent is None
    # The template and its other linked clones keep their disks.
    assert disk_chain(vm_by_name(shared_si, "linux-template"))[0] == TEMPLATE_DISK


def test_promote_disks_without_unlink_collapses_own_layers(sim: Simulator, si: Any) -> None:
    source = _linked_clone(si, "promote-runner", powerOn=True)
    clone = _instant_clone(source, "promote-ic")
    wait(clone.PowerOffVM_Task())
    wait(clone.Destroy_Task())
    assert len(disk_chain(source)) == 3
    wait(source.PromoteDisks_Task(unlink=False))
    assert disk_chain(source) == [TEMPLATE_DISK, "[datastore1] promote-runner/promote-runner-000001.vmdk"]


def test_promote_disks_with_snapshots_is_refused(shared_si: Any, unique: Callable[[str], str]) -> None:
    clone = _linked_clone(shared_si, unique("promote-snap"))
    wait(clone.CreateSnapshot_Task(name="s", memory=False, quiesce=False))
    assert isinstance(wait_fault(clone.PromoteDisks_Task(unlink=True)), vim.fault.InvalidState)
