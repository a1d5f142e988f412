"""Snapshots: create, revert, remove one, remove all; their disk layers as the client sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import backing_chain, disk_chain, linked_clone_spec, snapshot_chain, vm_by_name, wait, wait_fault

TEMPLATE_DISK = "[datastore1] linux-template/linux-template.vmdk"


def _fresh_vm(si: Any, name: str) -> Any:
    template = vm_by_name(si, "linux-template")
    return wait(template.CloneVM_Task(folder=template.parent, name=name,
                                      spec=linked_clone_spec(template.snapshot.currentSnapshot)))


def _tree(vm: Any) -> list[tuple[str, list[Any]]]:
    """(name, children) of the root snapshots, recursively."""
    def walk(nodes: Any) -> list[Any]:
        return [(n.name, walk(n.childSnapshotList)) for n in nodes]

    return walk(vm.snapshot.rootSnapshotList) if vm.snapshot else []


def test_create_snapshots_build_a_tree_and_grow_the_chain(shared_si: Any, unique: Callable[[str], str]) -> None:
    name = unique("snap")
    vm = _fresh_vm(shared_si, name)
    start = disk_chain(vm)
    assert start == [TEMPLATE_DISK, f"[datastore1] {name}/{name}-000001.vmdk"]
    first = wait(vm.CreateSnapshot_Task(name="one", description="first", memory=False, quiesce=False))
    assert isinstance(first, vim.vm.Snapshot)
    assert vm.snapshot.currentSnapshot == first
    after_one = disk_chain(vm)
    assert after_one[:-1] == start and len(after_one) == 3
    assert snapshot_chain(vm, first) == start  # the snapshot froze the layers below the new top
    second = wait(vm.CreateSnapshot_Task(name="two", memory=False, quiesce=True))
    assert _tree(vm) == [("one", [("two", [])])]
    assert vm.snapshot.currentSnapshot == second
    assert len(disk_chain(vm)) == 4
    assert backing_chain(vm) == disk_chain(vm)
    [root] = vm.snapshot.rootSnapshotList
    assert root.description == "first" and root.state == "poweredOff" and root.id >= 1
    assert root.childSnapshotList[0].quiesced is True
    assert second.vm == vm and list(first.childSnapshot) == [second]
    assert list(vm.rootSnapshot) == [first]


def test_revert_to_current_and_to_a_named_snapshot(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("revert"))
    base = wait(vm.CreateSnapshot_Task(name="off", memory=False, quiesce=False))
    wait(vm.PowerOnVM_Task())
    top_before = disk_chain(vm)[-1]
    wait(vm.RevertToCurrentSnapshot_Task())
    chain = disk_chain(vm)
    assert chain[:-1] == snapshot_chain(vm, base)
    assert chain[-1] != top_before  # the running point is a fresh delta on the snapshot
    assert vm.runtime.powerState == "poweredOff"  # the snapshot was taken powered off
    second = wait(vm.CreateSnapshot_Task(name="later", memory=False, quiesce=False))
    assert vm.snapshot.currentSnapshot == second
    wait(base.RevertToSnapshot_Task())
    assert vm.snapshot.currentSnapshot == base
    assert disk_chain(vm)[:-1] == snapshot_chain(vm, base)
    assert _tree(vm) == [("off", [("later", [])])]


def test_revert_without_snapshot_is_not_found(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("nosnap"))
    assert isinstance(wait_fault(vm.RevertToCurrentSnapshot_Task()), vim.fault.NotFound)


def test_remove_snapshot_consolidates_and_the_object_is_gone(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("remove"))
    start = disk_chain(vm)
    one = wait(vm.CreateSnapshot_Task(name="one", memory=False, quiesce=False))
    two = wait(vm.CreateSnapshot_Task(name="two", memory=False, quiesce=False))
    wait(one.RemoveSnapshot_Task(removeChildren=False))
    assert _tree(vm) == [("two", [])]  # the child moved up
    assert vm.snapshot.currentSnapshot == two
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        one.RemoveSnapshot_Task(removeChildren=False)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = one.config
    wait(two.RemoveSnapshot_Task(removeChildren=True))
    assert vm.snapshot is None
    # Every layer the VM alone owned merged back into one delta on the template's disk.
    chain = disk_chain(vm)
    assert chain == start
    assert backing_chain(vm) == chain


def test_remove_snapshot_with_children_removes_the_subtree(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("subtree"))
    one = wait(vm.CreateSnapshot_Task(name="one", memory=False, quiesce=False))
    two = wait(vm.CreateSnapshot_Task(name="two", memory=False, quiesce=False))
    wait(one.RemoveSnapshot_Task(removeChildren=True))
    assert vm.snapshot is None
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = two.config
    assert len(disk_chain(vm)) == 2


def test_remove_all_snapshots_collapses_the_chain(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("removeall"))
    start = disk_chain(vm)
    for index in range(4):
        wait(vm.CreateSnapshot_Task(name=f"s{index}", memory=False, quiesce=False))
    assert len(disk_chain(vm)) == len(start) + 4
    wait(vm.RemoveAllSnapshots_Task())
    assert vm.snapshot is None and list(vm.rootSnapshot) == []
    assert disk_chain(vm) == start
    assert backing_chain(vm) == start
    # A snapshot the template's linked clones depend on is never merged away.
    assert disk_chain(vm)[0] == TEMPLATE_DISK


def test_snapshot_of_a_frozen_vm_is_refused(shared_si: Any) -> None:
    frozen = vm_by_name(shared_si, "linux-frozen")
    fault = wait_fault(frozen.CreateSnapshot_Task(name="nope", memory=False, quiesce=False))
    assert isinstance(fault, vim.fault.InvalidState)
    assert frozen.snapshot is None
