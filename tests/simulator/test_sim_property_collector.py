"""PropertyCollector: RetrievePropertiesEx with traversal specs and paging, filters and WaitForUpdatesEx, Fetch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import VmomiSupport, vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator
from pytest_vsphere_clone.simulator.latency import LatencyProfile

PC = vmodl.query.PropertyCollector


def _inventory_traversal() -> list[Any]:
    """The classic traversal from the root folder down to every VM and host."""
    folder_children = PC.TraversalSpec(name="folderChildren", type=vim.Folder, path="childEntity", skip=False,
                                       selectSet=[PC.SelectionSpec(name="folderChildren"),
                                                  PC.SelectionSpec(name="dcVms"),
                                                  PC.SelectionSpec(name="dcHosts"),
                                                  PC.SelectionSpec(name="clusterHosts")])
    dc_vms = PC.TraversalSpec(name="dcVms", type=vim.Datacenter, path="vmFolder", skip=False,
                              selectSet=[PC.SelectionSpec(name="folderChildren")])
    dc_hosts = PC.TraversalSpec(name="dcHosts", type=vim.Datacenter, path="hostFolder", skip=False,
                                selectSet=[PC.SelectionSpec(name="folderChildren")])
    cluster_hosts = PC.TraversalSpec(name="clusterHosts", type=vim.ComputeResource, path="host", skip=False)
    return [folder_children, dc_vms, dc_hosts, cluster_hosts]


def _vm_view_spec(view: Any, paths: list[str]) -> Any:
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])


def _props(content: Any) -> dict[str, Any]:
    return {p.name: p.val for p in content.propSet}


def test_retrieve_properties_ex_with_traversal_specs(shared_si: Any) -> None:
    content = shared_si.content
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.rootFolder, skip=True, selectSet=_inventory_traversal())],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"]),
                 PC.PropertySpec(type=vim.HostSystem, pathSet=["name"])])
    result = content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions())
    assert result.token is None
    by_name = {_props(o)["name"]: o for o in result.objects if isinstance(o.obj, vim.VirtualMachine)}
    assert _props(by_name["linux-template"])["runtime.powerState"] == "poweredOff"
    assert _props(by_name["linux-frozen"])["runtime.powerState"] == "poweredOn"
    hosts = sorted(_props(o)["name"] for o in result.objects if isinstance(o.obj, vim.HostSystem))
    assert hosts == ["esx1", "esx2"]
    # Folders and datacenters were traversed but no property was asked of them.
    assert all(isinstance(o.obj, vim.VirtualMachine | vim.HostSystem) for o in result.objects)
    assert len({o.obj._moId for o in result.objects}) == len(result.objects)  # no duplicates


def test_retrieve_properties_ex_all_properties_and_missing_objects(shared_si: Any) -> None:
    pc = shared_si.content.propertyCollector
    vm = vm_by_name(shared_si, "linux-template")
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine,
                                                                                     all=True)])
    [content] = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions()).objects
    props = _props(content)
    assert {"name", "config", "runtime", "summary", "snapshot", "layoutEx"} <= set(props)
    gone = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vim.VirtualMachine("vm-987654"))],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])])
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        pc.RetrievePropertiesEx(specSet=[gone], options=PC.RetrieveOptions())
    # With reportMissingObjectsInResults a retrieval simply omits the missing object.
    gone.objectSet.append(PC.ObjectSpec(obj=vm))
    gone.reportMissingObjectsInResults = True
    result = pc.RetrievePropertiesEx(specSet=[gone], options=PC.RetrieveOptions())
    assert [o.obj for o in result.objects] == [vm]


def test_retrieve_properties_ex_invalid_property(shared_si: Any) -> None:
    vm = vm_by_name(shared_si, "linux-template")
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.noSuchThing"])])
    with pytest.raises(vmodl.query.InvalidProperty):
        shared_si.content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions())


def test_paging_with_max_objects_and_continue(sim: Simulator, si: Any) -> None:
    content = si.content
    template = vm_by_name(si, "linux-template")
    for i in range(3):
        wait(template.CloneVM_Task(folder=template.parent, name=f"page-{i}",
                                   spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    pc = content.propertyCollector
    spec = _vm_view_spec(view, ["name"])
    page = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions(maxObjects=2))
    pages = [page]
    while page.token:
        page = pc.ContinueRetrievePropertiesEx(token=page.token)
        pages.append(page)
    # 7 VMs at 2 per page: the page size asked for holds on every continuation.
    assert [len(p.objects) for p in pages] == [2, 2, 2, 1]
    names = [_props(o)["name"] for p in pages for o in p.objects]
    assert sorted(names) == sorted(sim.vm_names())
    with pytest.raises(vmodl.fault.InvalidArgument):
        pc.ContinueRetrievePropertiesEx(token=pages[0].token)  # a used token is gone
    first = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions(maxObjects=3))
    pc.CancelRetrievePropertiesEx(token=first.token)
    with pytest.raises(vmodl.fault.InvalidArgument):
        pc.ContinueRetrievePropertiesEx(token=first.token)
    view.DestroyView()


def test_fetch_nested_properties(shared_si: Any) -> None:
    """pyVmomi reads properties with the Fetch pseudo-method; a path may go into data objects."""
    vm = vm_by_name(shared_si, "linux-frozen")
    stub = shared_si._stub

    def fetch(path: str, kind: Any) -> Any:
        info = VmomiSupport.Object(name=path, type=kind, version=stub.version, flags=0)
        return stub.InvokeAccessor(vm, info)

    assert fetch("runtime.powerState", vim.VirtualMachine.PowerState) == "poweredOn"
    assert fetch("runtime.instantCloneFrozen", bool) is True
    assert fetch("config.hardware.numCPU", int) == vm.config.hardware.numCPU
    assert fetch("summary.config.name", str) == "linux-frozen"
    assert vm.runtime.host.name in ("esx1", "esx2")  # a reference inside a fetched data object
    with pytest.raises(vmodl.query.InvalidProperty):
        fetch("runtime.bogus", str)
    with pytest.raises(vmodl.query.InvalidProperty):
        fetch("bogus", str)


def _vm_filter(si: Any, vm: Any, paths: list[str]) -> Any:
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine,
                                                                                     pathSet=paths)])
    return si.content.propertyCollector.CreateFilter(spec=spec, partialUpdates=False)


def _changes(update_set: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """(kind, object, {path: value}) for every object update of an UpdateSet."""
    return [(u.kind, u.obj, {c.name: c.val for c in u.changeSet})
            for fs in update_set.filterSet for u in fs.objectSet]


def test_wait_for_updates_observes_a_task_to_completion(sim: Simulator, si: Any) -> None:
    # Slow the task down (queue 0.3 s, clone 0.6 s in 4 progress steps) so each state can be watched.
    assert sim.vc is not None
    sim.vc.options.profile = LatencyProfile("watchable", {"task.queue": (0.3, 0.3), "clone.linked": (0.6, 0.6)})
    template = vm_by_name(si, "linux-template")
    task = template.CloneVM_Task(folder=template.parent, name="watched",
                                 spec=linked_clone_spec(template.snapshot.currentSnapshot))
    pc = si.content.propertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=task)],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info.progress"])])
    flt = pc.CreateFilter(spec=spec, partialUpdates=False)
    version = ""
    versions: list[int] = []
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        update = pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=5))
        assert update is not None, "no update within maxWaitSeconds while the task ran"
        version = update.version
        versions.append(int(version))
        [(kind, obj, changes)] = _changes(update)
        assert obj == task
        assert kind == ("enter" if len(seen) == 0 else "modify")
        seen.append(changes)
        if changes.get("info.state") in ("success", "error"):
            break
    assert versions == sorted(set(versions)), "versions must strictly advance"
    states = [c["info.state"] for c in seen if "info.state" in c]
    assert states == ["queued", "running", "success"]
    progress = [c["info.progress"] for c in seen if "info.progress" in c]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 3
    # Incremental: after the first update only what changed is sent, one path at a time here.
    assert seen[0].keys() == {"info.state", "info.progress"}
    assert all(len(c) == 1 for c in seen[1:] if "info.state" not in c)
    # Nothing more happens: the next wait times out with no update set.
    assert pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    flt.DestroyPropertyFilter()
    info = task.info
    assert info.state == "success" and info.result.name == "watched"


def test_wait_for_updates_reports_a_vm_destroyed_mid_wait(sim: Simulator, si: Any,
                                                          client_factory: Callable[..., Any]) -> None:
    template = vm_by_name(si, "linux-template")
    doomed = wait(template.CloneVM_Task(folder=template.parent, name="doomed",
                                        spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    content = si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    pc = content.propertyCollector
    view_filter = pc.CreateFilter(spec=_vm_view_spec(view, ["name"]), partialUpdates=False)
    direct_filter = _vm_filter(si, doomed, ["name", "runtime.powerState"])
    initial = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=1))
    entered = [(kind, obj) for kind, obj, _ in _changes(initial)]
    assert ("enter", doomed) in entered and entered.count(("enter", doomed)) == 2  # once per filter
    result: dict[str, Any] = {}

    def waiter() -> None:
        start = time.monotonic()
        result["update"] = pc.WaitForUpdatesEx(version=initial.version, options=PC.WaitOptions(maxWaitSeconds=10))
        result["waited"] = time.monotonic() - start

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.3)  # the waiter is blocked inside WaitForUpdatesEx now
    other = client_factory(sim)
    wait(other.content.searchIndex.FindByInventoryPath("dc1/vm/doomed").Destroy_Task())
    thread.join(10)
    assert not thread.is_alive()
    assert result["waited"] < 5
    update = result["update"]
    assert int(update.version) > int(initial.version)
    by_filter = {fs.filter: [(u.kind, u.obj) for u in fs.objectSet] for fs in update.filterSet}
    assert by_filter[view_filter] == [("leave", doomed)]
    assert by_filter[direct_filter] == [("leave", doomed)]
    view_filter.DestroyPropertyFilter()
    direct_filter.DestroyPropertyFilter()
    view.DestroyView()


def test_wait_for_updates_max_wait_seconds_returns_none(si: Any) -> None:
    pc = si.content.propertyCollector
    flt = _vm_filter(si, vm_by_name(si, "linux-template"), ["name"])
    first = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=1))
    assert [k for k, _, _ in _changes(first)] == ["enter"]
    start = time.monotonic()
    assert pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=1)) is None
    assert 0.9 <= time.monotonic() - start < 3
    start = time.monotonic()
    assert pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    assert time.monotonic() - start < 0.5
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx(version="9999", options=PC.WaitOptions(maxWaitSeconds=0))
    flt.DestroyPropertyFilter()


def test_wait_for_updates_sends_only_changed_properties(si: Any) -> None:
    template = vm_by_name(si, "linux-template")
    vm = wait(template.CloneVM_Task(folder=template.parent, name="incremental",
                                    spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    # WaitForTask waits on the session's default collector, so watch with a collector of our own.
    pc = si.content.propertyCollector.CreatePropertyCollector()
    flt = _vm_filter_on(pc, vm, ["name", "runtime.powerState", "config.annotation"])
    first = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=1))
    [(kind, _, changes)] = _changes(first)
    assert kind == "enter"
    assert changes["name"] == "incremental" and changes["runtime.powerState"] == "poweredOff"
    assert changes.get("config.annotation", "") == ""
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="hello")))
    second = pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=2))
    assert _changes(second) == [("modify", vm, {"config.annotation": "hello"})]
    wait(vm.PowerOnVM_Task())
    third = pc.WaitForUpdatesEx(version=second.version, options=PC.WaitOptions(maxWaitSeconds=2))
    assert _changes(third) == [("modify", vm, {"runtime.powerState": "poweredOn"})]
    assert int(first.version) < int(second.version) < int(third.version)
    flt.DestroyPropertyFilter()
    wait(vm.PowerOffVM_Task())
    assert pc.WaitForUpdatesEx(version=third.version, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    pc.DestroyPropertyCollector()


def test_filters_belong_to_their_session(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    alice = client_factory(sim)
    bob = client_factory(sim)
    alice_pc = alice.content.propertyCollector
    bob_pc = bob.content.propertyCollector
    assert alice_pc == bob_pc  # the same well-known reference...
    flt = _vm_filter(alice, vm_by_name(alice, "linux-template"), ["name"])
    assert alice_pc.filter == [flt]
    assert bob_pc.filter == []  # ...but each session sees only its own filters
    assert bob_pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)) is None
    alice_first = alice_pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    assert [k for k, _, _ in _changes(alice_first)] == ["enter"]
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vmodl.query.PropertyCollector.Filter(flt._moId, bob._stub).DestroyPropertyFilter()
    assert alice_pc.filter == [flt]
    # Versions are per session too: bob cannot use alice's version.
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        bob_pc.WaitForUpdatesEx(version=alice_first.version, options=PC.WaitOptions(maxWaitSeconds=0))
    # Logging out drops the session's filters.
    alice.content.sessionManager.Logout()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = vmodl.query.PropertyCollector.Filter(flt._moId, bob._stub).spec


def test_private_property_collector(si: Any) -> None:
    pc = si.content.propertyCollector.CreatePropertyCollector()
    flt = _vm_filter_on(pc, vm_by_name(si, "linux-frozen"))
    update = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    assert [k for k, _, _ in _changes(update)] == ["enter"]
    assert si.content.propertyCollector.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)) \
        is None
    pc.DestroyPropertyCollector()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = flt.spec


def _vm_filter_on(pc: Any, vm: Any, paths: tuple[str, ...] | list[str] = ("name",)) -> Any:
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine,
                                                                                     pathSet=list(paths))])
    return pc.CreateFilter(spec=spec, partialUpdates=False)


def test_empty_array_properties_read_as_empty_lists(shared_si: Any) -> None:
    vm = vm_by_name(shared_si, "linux-frozen")
    assert list(vm.rootSnapshot) == []
    assert list(vm.triggeredAlarmState) == []
    assert vm.snapshot is None  # an unset data object property


def test_wait_for_updates_max_object_updates_truncates(si: Any) -> None:
    content = si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    pc = content.propertyCollector
    flt = pc.CreateFilter(spec=_vm_view_spec(view, ["name"]), partialUpdates=False)
    first = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0, maxObjectUpdates=3))
    assert first.truncated is True and len(_changes(first)) == 3
    second = pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=0,
                                                                               maxObjectUpdates=3))
    assert not second.truncated and len(_changes(second)) == 1
    entered = {obj for _, obj, _ in _changes(first) + _changes(second)}
    assert entered == set(view.view)
    flt.DestroyPropertyFilter()
    view.DestroyView()


def test_cancel_wait_for_updates(si: Any) -> None:
    pc = si.content.propertyCollector
    flt = _vm_filter(si, vm_by_name(si, "linux-template"), ["name"])
    version = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)).version
    outcome: dict[str, Any] = {}

    def waiter() -> None:
        try:
            outcome["result"] = pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=10))
        except vmodl.fault.RequestCanceled as exc:
            outcome["fault"] = exc

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.3)
    pc.CancelWaitForUpdates()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome.get("fault"), vmodl.fault.RequestCanceled)
    flt.DestroyPropertyFilter()


def test_session_ending_during_wait_is_not_authenticated(sim: Simulator, si: Any) -> None:
    pc = si.content.propertyCollector
    _vm_filter(si, vm_by_name(si, "linux-template"), ["name"])
    version = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)).version
    outcome: dict[str, Any] = {}

    def waiter() -> None:
        try:
            outcome["result"] = pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=10))
        except vim.fault.NotAuthenticated as exc:
            outcome["fault"] = exc

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    sim.expire_sessions()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome.get("fault"), vim.fault.NotAuthenticated)


# --- "since version" semantics --------------------------------------------------------


def _watched_clone(si: Any, name: str) -> tuple[Any, Any, Any]:
    """A fresh linked clone, a private collector and a filter on the clone's name and annotation."""
    template = vm_by_name(si, "linux-template")
    vm = wait(template.CloneVM_Task(folder=template.parent, name=name,
                                    spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    # pyVim's WaitForTask uses the session's default collector: watch with one of our own.
    pc = si.content.propertyCollector.CreatePropertyCollector()
    flt = _vm_filter_on(pc, vm, ["name", "config.annotation"])
    return vm, pc, flt


def test_wait_for_updates_answers_changes_since_the_version_passed(si: Any) -> None:
    vm, pc, _ = _watched_clone(si, "since")
    first = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    assert [k for k, _, _ in _changes(first)] == ["enter"]
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="one")))
    second = pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=0))
    assert _changes(second) == [("modify", vm, {"config.annotation": "one"})]
    # The same (older) version again: the same changes again, not "nothing since the last answer".
    again = pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=0))
    assert _changes(again) == [("modify", vm, {"config.annotation": "one"})]
    # Both answered versions stay usable: nothing changed since either of them.
    assert pc.WaitForUpdatesEx(version=second.version, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    assert pc.WaitForUpdatesEx(version=again.version, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="two")))
    # From the first version the net change is reported; from the second, the last step.
    since_first = pc.WaitForUpdatesEx(version=first.version, options=PC.WaitOptions(maxWaitSeconds=0))
    assert _changes(since_first) == [("modify", vm, {"config.annotation": "two"})]
    since_second = pc.WaitForUpdatesEx(version=second.version, options=PC.WaitOptions(maxWaitSeconds=0))
    assert _changes(since_second) == [("modify", vm, {"config.annotation": "two"})]
    # The initial version "" (and None) is the whole state again, as "enter".
    for initial in ("", None):
        full = pc.WaitForUpdatesEx(version=initial, options=PC.WaitOptions(maxWaitSeconds=0))
        assert _changes(full) == [("enter", vm, {"name": "since", "config.annotation": "two"})]
    # The legacy calls read the same versions.
    assert pc.CheckForUpdates(version=since_second.version) is None
    legacy = pc.CheckForUpdates(version=first.version)
    assert _changes(legacy) == [("modify", vm, {"config.annotation": "two"})]
    assert _changes(pc.WaitForUpdates(version=second.version)) == [("modify", vm, {"config.annotation": "two"})]
    pc.DestroyPropertyCollector()


@pytest.mark.parametrize("version", ["9999", "garbage", "-1", "1_2"])
def test_unknown_collector_version_is_refused(si: Any, version: str) -> None:
    _, pc, _ = _watched_clone(si, "unknown-version")
    pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=0))
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.CheckForUpdates(version=version)
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdates(version=version)
    pc.DestroyPropertyCollector()


def test_versions_of_another_collector_are_unknown(si: Any) -> None:
    _, pc, _ = _watched_clone(si, "other-collector")
    mine = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    other = si.content.propertyCollector.CreatePropertyCollector()
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        other.WaitForUpdatesEx(version=mine.version, options=PC.WaitOptions(maxWaitSeconds=0))
    other.DestroyPropertyCollector()
    pc.DestroyPropertyCollector()


def test_old_versions_expire_after_the_kept_window(si: Any) -> None:
    from pytest_vsphere_clone.simulator.objects.collector_state import KEPT_VERSIONS

    _, pc, _ = _watched_clone(si, "window")
    oldest = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)).version
    kept = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)).version
    for _ in range(KEPT_VERSIONS - 2):
        pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    # A version is kept by use: touching ``kept`` makes ``oldest`` the one to go next.
    assert pc.WaitForUpdatesEx(version=kept, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0))
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx(version=oldest, options=PC.WaitOptions(maxWaitSeconds=0))
    assert pc.WaitForUpdatesEx(version=kept, options=PC.WaitOptions(maxWaitSeconds=0)) is None
    pc.DestroyPropertyCollector()


def test_concurrent_waits_from_one_version_both_see_the_change(si: Any) -> None:
    vm, pc, _ = _watched_clone(si, "two-waiters")
    version = pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=0)).version
    results: list[Any] = []

    def waiter() -> None:
        results.append(pc.WaitForUpdatesEx(version=version, options=PC.WaitOptions(maxWaitSeconds=10)))

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # both are blocked inside WaitForUpdatesEx now
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="news")))
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    # Neither wait took the change away from the other (each answers from its own version).
    assert [_changes(r) for r in results] == [[("modify", vm, {"config.annotation": "news"})]] * 2
    assert results[0].version != results[1].version
    pc.DestroyPropertyCollector()


def test_truncated_versions_continue_once_and_only_through_wait_for_updates_ex(si: Any) -> None:
    content = si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    pc = content.propertyCollector.CreatePropertyCollector()
    pc.CreateFilter(spec=_vm_view_spec(view, ["name"]), partialUpdates=False)
    options = PC.WaitOptions(maxWaitSeconds=0, maxObjectUpdates=1)
    first = pc.WaitForUpdatesEx(version="", options=options)
    assert first.truncated is True and len(_changes(first)) == 1
    # A partial version is no version for the legacy calls, and such a call retires it.
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.CheckForUpdates(version=first.version)
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx(version=first.version, options=options)
    # Collect everything page by page: each partial version continues where the last stopped.
    seen: list[Any] = []
    partials: list[str] = []
    update = pc.WaitForUpdatesEx(version="", options=options)
    while True:
        seen.extend(obj for _, obj, _ in _changes(update))
        if not update.truncated:
            break
        partials.append(update.version)
        update = pc.WaitForUpdatesEx(version=update.version, options=options)
    assert len(partials) == len(view.view) - 1
    assert sorted(o._moId for o in seen) == sorted(v._moId for v in view.view)
    assert len(seen) == len(view.view)
    # Only the last call's partial version may be continued.
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx(version=partials[-1], options=options)
    # The final, complete version is an ordinary version for every call.
    assert pc.CheckForUpdates(version=update.version) is None
    pc.DestroyPropertyCollector()
    view.DestroyView()


@pytest.mark.parametrize(("max_wait", "max_updates", "bad"), [(-1, None, "maxWaitSeconds"),
                                                               (0, 0, "maxObjectUpdates"),
                                                               (0, -3, "maxObjectUpdates")])
def test_illegal_wait_options_are_refused(shared_si: Any, max_wait: int, max_updates: int | None,
                                          bad: str) -> None:
    pc = shared_si.content.propertyCollector.CreatePropertyCollector()
    with pytest.raises(vmodl.fault.InvalidArgument) as caught:
        pc.WaitForUpdatesEx(version="", options=PC.WaitOptions(maxWaitSeconds=max_wait,
                                                               maxObjectUpdates=max_updates))
    assert caught.value.invalidProperty == bad
    pc.DestroyPropertyCollector()
