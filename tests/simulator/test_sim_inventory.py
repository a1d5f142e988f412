"""The default inventory, inventories loaded from JSON, SearchIndex and container views."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.inventory import InventoryError

TEMPLATES = {
    # name: (power state, frozen, snapshot names, guest family)
    "linux-template": ("poweredOff", False, ["base"], "linux"),
    "linux-frozen": ("poweredOn", True, [], "linux"),
    "windows-template": ("poweredOff", False, ["base"], "windows"),
    "windows-frozen": ("poweredOn", True, [], "windows"),
}


def _snapshot_names(vm: Any) -> list[str]:
    if vm.snapshot is None:
        return []
    names: list[str] = []
    stack = list(vm.snapshot.rootSnapshotList)
    while stack:
        node = stack.pop(0)
        names.append(node.name)
        stack.extend(node.childSnapshotList)
    return names


def test_default_inventory_shape(shared_si: Any) -> None:
    content = shared_si.content
    [dc] = [e for e in content.rootFolder.childEntity if e.name == "dc1"]
    assert isinstance(dc, vim.Datacenter)
    [cluster] = dc.hostFolder.childEntity
    assert isinstance(cluster, vim.ClusterComputeResource)
    assert cluster.name == "cluster1"
    assert sorted(h.name for h in cluster.host) == ["esx1", "esx2"]
    assert all(h.runtime.connectionState == "connected" for h in cluster.host)
    assert [d.name for d in dc.datastore] == ["datastore1"]
    assert [n.name for n in dc.network] == ["VM Network", "VM Network 2"]
    assert dc.datastore[0].summary.capacity > dc.datastore[0].summary.freeSpace > 0
    assert isinstance(cluster.resourcePool, vim.ResourcePool)


def test_the_four_templates_and_their_state(shared_si: Any) -> None:
    for name, (power, frozen, snapshots, family) in TEMPLATES.items():
        vm = vm_by_name(shared_si, name)
        assert vm.runtime.powerState == power, name
        assert vm.runtime.instantCloneFrozen is frozen, name
        assert _snapshot_names(vm) == snapshots, name
        assert vm.config.guestId.startswith("windows" if family == "windows" else "ubuntu"), name
        assert vm.runtime.host.name in ("esx1", "esx2")
        assert vm.datastore[0].name == "datastore1"
        assert [n.name for n in vm.network] == ["VM Network"]
        if snapshots:
            assert vm.snapshot.currentSnapshot is not None
        macs = [d.macAddress for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert len(macs) == 1 and macs[0].startswith("00:50:56:")


def test_search_index_find_by_inventory_path(shared_si: Any) -> None:
    index = shared_si.content.searchIndex
    dc = index.FindByInventoryPath("dc1")
    assert isinstance(dc, vim.Datacenter)
    assert index.FindByInventoryPath("/dc1/") == dc
    vm = index.FindByInventoryPath("dc1/vm/linux-template")
    assert isinstance(vm, vim.VirtualMachine) and vm.name == "linux-template"
    cluster = index.FindByInventoryPath("dc1/host/cluster1")
    assert isinstance(cluster, vim.ClusterComputeResource)
    host = index.FindByInventoryPath("dc1/host/cluster1/esx2")
    assert isinstance(host, vim.HostSystem) and host.name == "esx2"
    assert index.FindByInventoryPath("dc1/datastore/datastore1").name == "datastore1"
    assert index.FindByInventoryPath("dc1/network/VM Network").name == "VM Network"
    assert index.FindByInventoryPath("dc1/vm/no-such-vm") is None
    assert index.FindByInventoryPath("dc9") is None


def test_search_index_find_child(shared_si: Any) -> None:
    index = shared_si.content.searchIndex
    dc = index.FindChild(entity=shared_si.content.rootFolder, name="dc1")
    assert isinstance(dc, vim.Datacenter)
    vm = index.FindChild(entity=dc.vmFolder, name="windows-frozen")
    assert vm.name == "windows-frozen"
    assert index.FindChild(entity=dc.vmFolder, name="nope") is None
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        index.FindChild(entity=vim.Folder("group-v999999"), name="x")


def test_search_index_by_uuid_and_datastore_path(shared_si: Any) -> None:
    index = shared_si.content.searchIndex
    vm = vm_by_name(shared_si, "linux-frozen")
    dc = index.FindByInventoryPath("dc1")
    assert index.FindByUuid(uuid=vm.config.uuid, vmSearch=True) == vm
    assert index.FindByUuid(uuid=vm.config.instanceUuid, vmSearch=True, instanceUuid=True) == vm
    assert index.FindByUuid(uuid="00000000-0000-0000-0000-000000000000", vmSearch=True) is None
    assert index.FindByDatastorePath(datacenter=dc, path=vm.config.files.vmPathName) == vm


def test_container_views(shared_si: Any) -> None:
    content = shared_si.content
    views = content.viewManager
    vm_view = views.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine], recursive=True)
    host_view = views.CreateContainerView(container=content.rootFolder, type=[vim.HostSystem], recursive=True)
    dc = content.searchIndex.FindByInventoryPath("dc1")
    shallow = views.CreateContainerView(container=dc, type=[], recursive=False)
    try:
        assert set(TEMPLATES) <= {vm.name for vm in vm_view.view}
        assert all(isinstance(vm, vim.VirtualMachine) for vm in vm_view.view)
        assert sorted(h.name for h in host_view.view) == ["esx1", "esx2"]
        assert sorted(f.name for f in shallow.view) == ["datastore", "host", "network", "vm"]
        assert vm_view.container == content.rootFolder
        assert vm_view.recursive is True
        assert vm_view in views.viewList
    finally:
        for view in (vm_view, host_view, shallow):
            view.DestroyView()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = vm_view.view


def test_container_view_follows_the_inventory(shared_si: Any, unique: Callable[[str], str]) -> None:
    content = shared_si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    try:
        template = vm_by_name(shared_si, "linux-template")
        name = unique("view-clone")
        clone = wait(template.CloneVM_Task(folder=template.parent, name=name,
                                           spec=linked_clone_spec(template.snapshot.currentSnapshot)))
        assert clone in view.view
        wait(clone.Destroy_Task())
        assert clone not in view.view
    finally:
        view.DestroyView()


def test_container_view_refuses_a_non_container(shared_si: Any) -> None:
    vm = vm_by_name(shared_si, "linux-template")
    with pytest.raises(vmodl.fault.InvalidArgument):
        shared_si.content.viewManager.CreateContainerView(container=vm, type=[], recursive=True)


CUSTOM_INVENTORY: dict[str, Any] = {
    "datacenters": [
        {
            "name": "lab",
            "datastores": [{"name": "fast-ssd", "capacity_gb": 100}, {"name": "slow-hdd"}],
            "networks": ["lab-net", "mgmt-net"],
            "clusters": [{"name": "gold", "hosts": ["g1"]}, {"name": "silver", "hosts": ["s1", "s2", "s3"]}],
            "vms": [
                {"name": "centos", "guest_id": "rhel9_64Guest", "folder": "images/linux", "snapshots": ["a", "b"],
                 "cluster": "silver", "host": "s2", "cpus": 4, "memory_mb": 8192, "networks": ["mgmt-net", "lab-net"]},
                {"name": "runner", "power": "poweredOn", "frozen": True, "host": "g1"},
            ],
        },
        {"name": "dr", "clusters": [{"name": "c", "hosts": ["h"]}]},
    ],
    "users": [{"name": "viewer@lab", "password": "viewer-pw", "denied": ["VirtualMachine.Interact.*"]}],
}


def test_inventory_loaded_from_a_json_file(tmp_path: Path, client_factory: Callable[..., Any]) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(CUSTOM_INVENTORY))
    with Simulator(SimulatorConfig(inventory=path)) as simulator:
        si = client_factory(simulator)
        index = si.content.searchIndex
        assert sorted(dc.name for dc in si.content.rootFolder.childEntity) == ["dr", "lab"]
        lab = index.FindByInventoryPath("lab")
        assert sorted(d.name for d in lab.datastore) == ["fast-ssd", "slow-hdd"]
        assert index.FindByInventoryPath("lab/datastore/fast-ssd").summary.capacity == 100 * 1024**3
        assert sorted(n.name for n in lab.network) == ["lab-net", "mgmt-net"]
        assert sorted(c.name for c in lab.hostFolder.childEntity) == ["gold", "silver"]
        assert len(index.FindByInventoryPath("lab/host/silver").host) == 3
        centos = index.FindByInventoryPath("lab/vm/images/linux/centos")
        assert centos is not None
        assert centos.runtime.host.name == "s2"
        assert centos.config.hardware.numCPU == 4 and centos.config.hardware.memoryMB == 8192
        assert centos.config.guestId == "rhel9_64Guest"
        # One NIC per named port group, in order; a VM naming none gets the datacenter's first.
        assert [d.backing.deviceName for d in centos.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualEthernetCard)] == ["mgmt-net", "lab-net"]
        assert [n.name for n in index.FindByInventoryPath("lab/vm/runner").network] == ["lab-net"]
        assert _snapshot_names(centos) == ["a", "b"]
        assert centos.snapshot.currentSnapshot == centos.snapshot.rootSnapshotList[0].childSnapshotList[0].snapshot
        runner = index.FindByInventoryPath("lab/vm/runner")
        assert runner.runtime.powerState == "poweredOn" and runner.runtime.instantCloneFrozen
        assert index.FindByInventoryPath("dr/host/c/h") is not None
        assert index.FindByInventoryPath("dc1") is None  # the default inventory is not added
        viewer = client_factory(simulator, "viewer@lab", "viewer-pw")
        with pytest.raises(vim.fault.NoPermission) as raised:
            viewer.content.searchIndex.FindByInventoryPath("lab/vm/runner").PowerOffVM_Task()
        assert raised.value.privilegeId == "VirtualMachine.Interact.PowerOff"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    ('{"vms": []}', "needs a top-level 'datacenters' list"),
    ('{"datacenters": [{"name": "x"}]}', "needs at least one cluster with one host"),
    ('{"datacenters": [{"clusters": [{"name": "c", "hosts": ["h"]}]}]}', "every datacenter needs a 'name'"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"host": "zz"}]}]}', "unknown host 'zz'"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"frozen": true}]}]}', "a frozen VM must be poweredOn"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"power": "on"}]}]}', "power must be poweredOn or poweredOff"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"guest_id": "x"}]}]}',
     "every VM needs a 'name'"),
    ('{"datacenters": [], "users": [{"name": "u", "password": "p", "denied": ["Nope.*"]}]}',
     "matches no known privilege"),
    ('{"datacenters": [], "users": [{"name": "u"}]}', "lacks 'password'"),
    ('{"datacenters": [{"name": "d", "clusters": [{"hosts": ["h"]}]}]}', "every cluster needs a 'name'"),
    ('{"datacenters": [{"name": "d", "datastores": [{}], "clusters": [{"name": "c", "hosts": ["h"]}]}]}',
     "every datastore needs a 'name'"),
    ('{"datacenters": ["dc1"]}', "malformed inventory entry"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"cpus": "many"}]}]}', "malformed inventory entry: ValueError"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v"}, '
     '{"name": "v"}]}]}', "the name is used twice"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"cluster": "zz"}]}]}', "unknown cluster 'zz'"),
    ('{"datacenters": [{"name": "d", "clusters": [{"name": "c", "hosts": ["h"]}], "vms": [{"name": "v", '
     '"networks": ["VM Network", "Lab"]}]}]}', "VM v: networks must name port groups of its datacenter "
                                               r"\(VM Network\), not Lab"),
])
def test_bad_inventory_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InventoryError, match=message) as raised:
        Simulator(SimulatorConfig(inventory=path)).start()
    assert str(path) in str(raised.value)  # the message says which file to fix


def test_missing_inventory_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(InventoryError, match=r"cannot read inventory file .*absent\.json"):
        Simulator(SimulatorConfig(inventory=path)).start()
