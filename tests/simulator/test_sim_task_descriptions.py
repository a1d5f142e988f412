"""Tasks are named as a vCenter names them: descriptionId, TaskManager.description and TaskEvent messages."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator
from pytest_vsphere_clone.simulator.objects.task_descriptions import METHOD_DESCRIPTIONS, description_id

EF = vim.event.EventFilterSpec


def _task_event(si: Any, task: Any) -> Any:
    [event] = si.content.eventManager.QueryEvents(filter=EF(eventChainId=task.info.eventChainId,
                                                            eventTypeId=["TaskEvent"]))
    return event


def test_task_events_read_the_tasks_description_in_words(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    labels = {item.key: item.label for item in si.content.taskManager.description.methodInfo}
    power_on = vm.PowerOnVM_Task()
    wait(power_on)
    assert power_on.info.descriptionId == "VirtualMachine.powerOn"
    # TaskEvent: "Task: {info.descriptionId}", written with the key's TaskManager.description label.
    assert labels["VirtualMachine.powerOn"] == "Power On virtual machine"
    assert _task_event(si, power_on).fullFormattedMessage == "Task: Power On virtual machine"
    clone = vm.CloneVM_Task(folder=vm.parent, name="described", spec=linked_clone_spec(vm.snapshot.currentSnapshot))
    wait(clone)
    assert _task_event(si, clone).fullFormattedMessage == "Task: Clone virtual machine"
    snapshot = vm.snapshot.currentSnapshot
    reconfigure = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="described"))
    wait(reconfigure)
    assert _task_event(si, reconfigure).fullFormattedMessage == "Task: Reconfigure virtual machine"
    wait(vm.PowerOffVM_Task())
    revert = snapshot.RevertToSnapshot_Task()
    wait(revert)
    # A snapshot's methods are keyed by its own type, though the task's entity is the VM.
    assert revert.info.descriptionId == "vm.Snapshot.revert" and revert.info.entity == vm
    assert _task_event(si, revert).fullFormattedMessage == "Task: Revert snapshot"


def test_browser_and_inherited_methods_are_keyed_like_a_vcenters(sim: Simulator, si: Any) -> None:
    [datastore] = vm_by_name(si, "linux-template").datastore
    search = datastore.browser.SearchDatastoreSubFolders_Task(datastorePath=f"[{datastore.name}]")
    wait(search)
    assert search.info.descriptionId == "host.DatastoreBrowser.searchSubFolders"
    rename = si.content.rootFolder.Rename_Task("Datacenters")
    wait(rename)
    assert rename.info.descriptionId == "Folder.rename"
    assert _task_event(si, rename).fullFormattedMessage == "Task: Rename folder"


def test_task_manager_describes_states_reasons_and_every_task_the_simulator_runs(shared_sim: Simulator,
                                                                                shared_si: Any) -> None:
    description = shared_si.content.taskManager.description
    assert {s.key: s.label for s in description.state} == {"queued": "Queued", "running": "Running",
                                                            "success": "Success", "error": "Error"}
    assert vim.TaskReasonUser in {r.key for r in description.reason}
    described = {item.key for item in description.methodInfo}
    assert shared_sim.vc is not None
    with shared_sim.vc.lock:
        kinds = {type(obj) for obj in shared_sim.vc.objects.values()}
    tasks = {description_id(kind.vim_type, method) for kind in kinds
             for method in kind.implemented_methods() if method.endswith("_Task")}
    assert tasks and tasks <= described, sorted(tasks - described)
    assert described == set(METHOD_DESCRIPTIONS)
