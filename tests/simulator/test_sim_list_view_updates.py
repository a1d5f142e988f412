"""A property filter over a ListView, as the reference describes it: the view's members are what the
filter reports, so a member joining it enters, and one that leaves it (removed, or destroyed) leaves.

ListView: "The view list always represents the current configuration of the virtual environment and
reflects any subsequent changes that occur." ObjectUpdateKind: ``enter`` "This object has entered the
set of objects being monitored by this filter", ``leave`` "This object has left the set ...".
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait

PC = vmodl.query.PropertyCollector


def _view_filter(si: Any, view: Any) -> Any:
    """A collector of its own with a filter on the view's tasks' ends and VMs' power states."""
    collector = si.content.propertyCollector.CreatePropertyCollector()
    members = PC.TraversalSpec(name="members", type=vim.view.ListView, path="view", skip=False)
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[members])],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.completeTime"]),
                                  PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
    collector.CreateFilter(spec, partialUpdates=False)
    return collector


def _updates(collector: Any, version: str) -> tuple[str, dict[str, str]]:
    """One WaitForUpdatesEx that does not wait: the new version and each object's update kind."""
    update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=0))
    if update is None:
        return version, {}
    kinds = {o.obj._moId: o.kind for f in update.filterSet for o in f.objectSet}
    return update.version, kinds


def test_members_enter_and_leave_a_filter_over_the_view(si: Any) -> None:
    template = vm_by_name(si, "linux-template")
    spec = linked_clone_spec(template.snapshot.currentSnapshot)
    clone = wait(template.CloneVM_Task(folder=template.parent, name="lv1", spec=spec))
    view = si.content.viewManager.CreateListView(obj=[clone])
    collector = _view_filter(si, view)
    try:
        version, kinds = _updates(collector, "")
        assert kinds == {clone._moId: "enter"}
        task = clone.PowerOnVM_Task()
        wait(task)
        # The task joins the view: it enters with the values it has (here, its end); the VM's change comes too.
        assert view.ModifyListView(add=[task]) == []
        version, kinds = _updates(collector, version)
        assert kinds == {task._moId: "enter", clone._moId: "modify"}
        # Removed from the view, it leaves the filter; nothing else changed.
        view.ModifyListView(remove=[task])
        version, kinds = _updates(collector, version)
        assert kinds == {task._moId: "leave"}
        # A destroyed member leaves the view, and with it the filter, without a ModifyListView.
        wait(clone.PowerOffVM_Task())
        version, _ = _updates(collector, version)
        wait(clone.Destroy_Task())
        version, kinds = _updates(collector, version)
        assert kinds == {clone._moId: "leave"}
        assert view.view == []
        # An object that no longer exists cannot join: ModifyListView returns it, unresolved.
        assert [r._moId for r in view.ModifyListView(add=[clone])] == [clone._moId]
    finally:
        collector.DestroyPropertyCollector()
        view.DestroyView()
