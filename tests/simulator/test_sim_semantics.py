"""vSphere semantics the simulator models, each as the API reference states it (no real guests).

Snapshot power states and reverts, RelocateVM_Task, RebootGuest, and a frozen source's Tools.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import close, connect, disk_chain, linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


def _fresh_vm(si: Any, name: str) -> Any:
    template = vm_by_name(si, "linux-template")
    return wait(template.CloneVM_Task(folder=template.parent, name=name,
                                      spec=linked_clone_spec(template.snapshot.currentSnapshot)))


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a client-visible condition (no timing is asserted: the deadline only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# --- snapshots: power state recorded and restored ---------------------------------------------


def test_snapshot_without_memory_is_powered_off_and_revert_powers_off(shared_si: Any,
                                                                       unique: Callable[[str], str]) -> None:
    # CreateSnapshot_Task, memory: "When set to FALSE, the power state of the snapshot is set to powered off."
    vm = _fresh_vm(shared_si, unique("nomem"))
    wait(vm.PowerOnVM_Task())
    snapshot = wait(vm.CreateSnapshot_Task(name="disk-only", memory=False, quiesce=False))
    assert vm.snapshot.rootSnapshotList[0].state == "poweredOff"
    assert vm.runtime.powerState == "poweredOn"  # taking it changes nothing
    wait(snapshot.RevertToSnapshot_Task())
    assert vm.runtime.powerState == "poweredOff"
    assert vm.runtime.bootTime is None
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"


def test_snapshot_with_memory_restores_the_running_state(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("mem"))
    wait(vm.PowerOnVM_Task())
    snapshot = wait(vm.CreateSnapshot_Task(name="running", memory=True, quiesce=False))
    assert vm.snapshot.rootSnapshotList[0].state == "poweredOn"
    wait(vm.RevertToCurrentSnapshot_Task())
    assert vm.runtime.powerState == "poweredOn"  # still running
    wait(vm.PowerOffVM_Task())
    wait(snapshot.RevertToSnapshot_Task())
    assert vm.runtime.powerState == "poweredOn"  # powered on again, to the snapshot's state
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning")
    wait(vm.PowerOffVM_Task())
    # suppressPowerOn: "the virtual machine will not be powered on regardless of the power state
    # when the snapshot was created."
    wait(snapshot.RevertToSnapshot_Task(suppressPowerOn=True))
    assert vm.runtime.powerState == "poweredOff"


def test_memory_snapshot_of_a_powered_off_vm_is_powered_off(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("offmem"))
    wait(vm.CreateSnapshot_Task(name="off", memory=True, quiesce=False))
    assert vm.snapshot.rootSnapshotList[0].state == "poweredOff"
    wait(vm.RevertToCurrentSnapshot_Task())
    assert vm.runtime.powerState == "poweredOff"


# --- RelocateVM_Task ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_datastores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator whose datacenter has datastore1 and datastore2, and two clusters."""
    path = Path(tmp_path_factory.mktemp("inventory")) / "inventory.json"
    path.write_text(json.dumps({"datacenters": [{
        "name": "dc1",
        "datastores": [{"name": "datastore1"}, {"name": "datastore2"}],
        "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}, {"name": "cluster2", "hosts": ["esx3"]}],
        "vms": [{"name": "linux-template", "snapshots": ["base"]}, {"name": "in-sub", "folder": "sub"}],
    }]}))
    with Simulator(SimulatorConfig(inventory=path)) as simulator:
        yield simulator


@pytest.fixture
def ds_si(two_datastores: Simulator) -> Iterator[Any]:
    si = connect(two_datastores)
    yield si
    close(si)


def _entity(si: Any, kind: type, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return next(obj for obj in view.view if obj.name == name)
    finally:
        view.DestroyView()


def test_relocate_to_another_host_of_the_cluster(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("vmotion"))
    wait(vm.PowerOnVM_Task())
    esx1, esx2 = _entity(shared_si, vim.HostSystem, "esx1"), _entity(shared_si, vim.HostSystem, "esx2")
    assert vm.runtime.host == esx1
    chain = disk_chain(vm)
    assert wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=esx2))) is None
    assert vm.runtime.host == esx2 and vm in esx2.vm and vm not in esx1.vm
    assert vm.runtime.powerState == "poweredOn"  # a vMotion keeps it running
    assert disk_chain(vm) == chain  # no datastore change: the disks stay


def test_relocate_to_another_datastore_copies_the_linked_clone(ds_si: Any) -> None:
    vm = _fresh_vm(ds_si, "moved")
    datastore2 = _entity(ds_si, vim.Datastore, "datastore2")
    assert disk_chain(vm)[0].startswith("[datastore1] linux-template/")  # shares the template's base
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=datastore2)))
    chain = disk_chain(vm)
    # The default diskMoveType is moveAllDiskBackingsAndDisallowSharing: every backing moves, the
    # clone no longer shares the template's.
    assert chain and all(name.startswith("[datastore2] moved/") for name in chain)
    assert list(vm.datastore) == [datastore2]
    assert vm.config.files.vmPathName == "[datastore2] moved/moved.vmx"
    assert vm in datastore2.vm
    template = vm_by_name(ds_si, "linux-template")
    assert disk_chain(template)[0] == "[datastore1] linux-template/linux-template.vmdk"  # untouched
    wait(vm.Destroy_Task())


def test_relocate_child_most_keeps_the_shared_parents(ds_si: Any) -> None:
    vm = _fresh_vm(ds_si, "childmost")
    before = disk_chain(vm)
    datastore2 = _entity(ds_si, vim.Datastore, "datastore2")
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=datastore2, diskMoveType="moveChildMostDiskBacking")))
    after = disk_chain(vm)
    assert after[:-1] == before[:-1] and after[-1].startswith("[datastore2] childmost/")
    wait(vm.Destroy_Task())


def test_relocate_keeps_snapshots_usable(ds_si: Any) -> None:
    vm = _fresh_vm(ds_si, "withsnap")
    snapshot = wait(vm.CreateSnapshot_Task(name="s1", memory=False, quiesce=False))
    datastore2 = _entity(ds_si, vim.Datastore, "datastore2")
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=datastore2)))
    assert all(name.startswith("[datastore2] ") for name in disk_chain(vm))
    wait(snapshot.RevertToSnapshot_Task())
    assert all(name.startswith("[datastore2] ") for name in disk_chain(vm))
    wait(vm.Destroy_Task())


def test_relocate_pool_folder_and_faults(ds_si: Any, two_datastores: Simulator,
                                         client_factory: Callable[..., Any]) -> None:
    vm = _fresh_vm(ds_si, "placed")
    esx3 = _entity(ds_si, vim.HostSystem, "esx3")
    cluster2 = _entity(ds_si, vim.ClusterComputeResource, "cluster2")
    # A host outside the VM's (unchanged) pool's cluster is refused before any task exists.
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=esx3))
    # With the other cluster's pool, the host there is chosen (RelocateSpec.host unset).
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=cluster2.resourcePool)))
    assert vm.runtime.host == esx3 and vm.resourcePool == cluster2.resourcePool
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"))
    sub = _entity(ds_si, vim.Folder, "sub")
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(folder=sub)))
    assert vm.parent == sub and vm in sub.childEntity
    assert ds_si.content.searchIndex.FindByInventoryPath("dc1/vm/sub/placed") == vm
    # Privileges: Resource.ColdMigrate on the VM, and Resource.HotMigrate when it is powered on.
    two_datastores.add_user("cold@vsphere.local", "pw", {"Resource.ColdMigrate"})
    two_datastores.add_user("hot@vsphere.local", "pw", {"Resource.HotMigrate"})
    cold = client_factory(two_datastores, "cold@vsphere.local", "pw")
    hot = client_factory(two_datastores, "hot@vsphere.local", "pw")
    cold_vm = vim.VirtualMachine(vm._moId, cold._stub)
    hot_vm = vim.VirtualMachine(vm._moId, hot._stub)
    with pytest.raises(vim.fault.NoPermission) as denied:
        cold_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec())
    assert denied.value.privilegeId == "Resource.ColdMigrate"
    wait(hot_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec()))  # powered off: no HotMigrate needed
    wait(vm.PowerOnVM_Task())
    with pytest.raises(vim.fault.NoPermission) as denied:
        hot_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec())
    assert denied.value.privilegeId == "Resource.HotMigrate"
    wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())


# --- RebootGuest and Tools -------------------------------------------------------------------


def test_reboot_guest_needs_running_tools_and_is_not_a_task(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("reboot"))
    with pytest.raises(vim.fault.InvalidPowerState):
        vm.RebootGuest()
    wait(vm.PowerOnVM_Task())
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning")
    boot_time = vm.runtime.bootTime
    assert vm.RebootGuest() is None  # returns at once, no task
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime == boot_time
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning")
    wait(vm.PowerOffVM_Task())


def test_frozen_source_reports_tools_not_running(shared_si: Any) -> None:
    # Instant clone sources that are frozen report VMware Tools as not running (field notes), so
    # RebootGuest and Guest Operations have no Tools to talk to.
    frozen = vm_by_name(shared_si, "linux-frozen")
    assert frozen.runtime.instantCloneFrozen is True
    assert frozen.runtime.powerState == "poweredOn"
    assert frozen.guest.toolsRunningStatus == "guestToolsNotRunning"
    assert frozen.guest.toolsStatus == "toolsNotRunning"
    assert frozen.guest.ipAddress is None
    assert frozen.summary.guest.toolsRunningStatus == "guestToolsNotRunning"
    assert frozen.guestHeartbeatStatus == "gray"
    with pytest.raises(vim.fault.ToolsUnavailable):
        frozen.RebootGuest()


def test_failed_relocate_of_a_destroyed_vm(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("gone"))
    wait(vm.Destroy_Task())
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.RelocateVM_Task(spec=vim.vm.RelocateSpec())
