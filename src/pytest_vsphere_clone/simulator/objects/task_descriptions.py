"""What a vCenter calls its tasks: TaskInfo.descriptionId and the words TaskManager.description gives it.

TaskInfo.descriptionId: "An identifier for this operation. This includes publicly visible internal
tasks and is a lookup in the TaskDescription methodInfo data object." A vCenter keys it by the
vmodl type and method ("VirtualMachine.powerOn"; "vm.Snapshot.remove" for RemoveSnapshot_Task,
"host.DatastoreBrowser.search" for SearchDatastore_Task); a method a managed entity inherits is
keyed by the entity's own type ("VirtualMachine.rename", "Folder.rename"). TaskEvent's message,
"Task: {info.descriptionId}", shows that key's label ("Task: Power On virtual machine").

The labels and summaries are a vCenter 8's own, as ``TaskManager.description.methodInfo`` lists
them (captured from a real server with ``govc object.collect -s -dump TaskManager:TaskManager
description``, govmomi simulator/vpx/task_manager.go), for the methods the simulator implements.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import VmomiSupport, vim

#: descriptionId -> (label, summary), as a vCenter 8 describes them.
METHOD_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "VirtualMachine.powerOn": ("Power On virtual machine", "Power On this virtual machine"),
    "VirtualMachine.powerOff": ("Power Off virtual machine", "Power Off this virtual machine"),
    "VirtualMachine.reset": ("Reset virtual machine", "Reset this virtual machine"),
    "VirtualMachine.shutdownGuest": ("Initiate guest OS shutdown", "Issues a command to the guest operating system "
                                     "to perform a clean shutdown of all services"),
    "VirtualMachine.rebootGuest": ("Initiate guest OS reboot", "Issues a command to the guest operating system "
                                   "asking it to perform a reboot"),
    "VirtualMachine.destroy": ("Delete virtual machine", "Delete this virtual machine. Deleting this virtual machine "
                               "also deletes its contents and removes it from its parent folder (if any)."),
    "VirtualMachine.rename": ("Rename virtual machine", "Rename the virtual machine"),
    "VirtualMachine.setCustomValue": ("Set virtual machine custom value",
                                      "Sets the value of a custom field of a virtual machine"),
    "VirtualMachine.reconfigure": ("Reconfigure virtual machine", "Reconfigure this virtual machine"),
    "VirtualMachine.clone": ("Clone virtual machine", "Creates a clone of this virtual machine"),
    # A vCenter 8 has no words of its own for InstantClone_Task: its label is the method's name.
    "VirtualMachine.instantClone": ("instantClone", "instantClone"),
    "VirtualMachine.relocate": ("Relocate virtual machine", "Relocate the virtual machine to a specific location"),
    "VirtualMachine.promoteDisks": ("Promote virtual machine disks",
                                    "Promote disks of the virtual machine that have delta disk backings"),
    "VirtualMachine.markAsTemplate": ("Mark virtual machine as template", "Virtual machine is marked as a template"),
    "VirtualMachine.markAsVirtualMachine": ("Mark as virtual machine",
                                            "Reassociate a virtual machine with a host or resource pool"),
    "VirtualMachine.createSnapshot": ("Create virtual machine snapshot", "Create a new snapshot of this virtual "
                                      "machine"),
    "VirtualMachine.removeAllSnapshots": ("Remove all snapshots",
                                          "Remove all the snapshots associated with this virtual machine"),
    "VirtualMachine.revertToCurrentSnapshot": ("Revert to current snapshot",
                                               "Reverts the virtual machine to the current snapshot"),
    "VirtualMachine.createScreenshot": ("Take virtual machine screenshot",
                                        "Take a screenshot of a virtual machine's guest OS console"),
    "VirtualMachine.consolidateDisks": ("Consolidate virtual machine disk files",
                                        "Consolidate disk files of this virtual machine"),
    "vm.Snapshot.remove": ("Remove snapshot", "Remove snapshot and delete its associated storage"),
    "vm.Snapshot.revert": ("Revert snapshot",
                           "Change the execution state of the virtual machine to the state of this snapshot"),
    "Folder.rename": ("Rename folder", "Rename the folder"),
    "Datacenter.rename": ("Rename datacenter", "Rename the datacenter"),
    "ClusterComputeResource.rename": ("Rename cluster", "Rename the compute-resource"),
    "HostSystem.rename": ("Rename host", "Rename this host"),
    "HostSystem.retrieveHardwareUptime": ("Retrieve host hardware uptime",
                                          "Retrieves the hardware uptime for the host in seconds"),
    "Datastore.rename": ("Rename datastore", "Renames a datastore"),
    "ResourcePool.rename": ("Rename resource pool", "Rename the resource pool"),
    "Network.rename": ("Rename network", "Rename network"),
    "host.DatastoreBrowser.search": ("Search datastore",
                                     "Returns the information for the files that match the given search criteria"),
    "host.DatastoreBrowser.searchSubFolders": ("Search datastore subfolders", "Returns the information for the "
                                               "files that match the given search criteria"),
    "FileManager.deleteFile": ("Delete file", "Delete the source file or folder from the datastore"),
    "FileManager.makeDirectory": ("Make Directory", "Create a directory using the specified name"),
    "Task.cancel": ("Cancel", "Cancels a running/queued task"),
    "EnvironmentBrowser.queryConfigOptionDescriptor": ("Query configuration option descriptor", "Get the list of "
                                                       "configuration option keys available in this browser"),
    "EnvironmentBrowser.queryConfigOption": ("Configure option query", "Search for a specific configuration option"),
    "EnvironmentBrowser.queryConfigOptionEx": ("queryConfigOptionEx", "queryConfigOptionEx"),
    "EnvironmentBrowser.queryConfigTarget": ("Query configuration target",
                                             "Search for a specific configuration target"),
    "EnvironmentBrowser.queryTargetCapabilities": ("Query target capabilities", "Query for compute-resource "
                                                   "capabilities associated with this browser"),
}

#: TaskInfo.state and TaskReason kinds, in a vCenter's words.
STATE_DESCRIPTIONS = {"queued": ("Queued", "Task is queued"), "running": ("Running", "Task is in progress"),
                      "success": ("Success", "Task completed successfully"),
                      "error": ("Error", "Task completed with a failure")}
REASON_DESCRIPTIONS = {vim.TaskReasonSchedule: ("Scheduled task", "Task started by a scheduled task"),
                       vim.TaskReasonUser: ("User task", "Task started by a specific user"),
                       vim.TaskReasonSystem: ("System task", "Task started by the server"),
                       vim.TaskReasonAlarm: ("Alarm task", "Task started by an alarm")}


def _vmodl_name(kind: type) -> str:
    """``vim.vm.Snapshot`` -> ``vm.Snapshot``: the type as a vCenter names it in descriptionIds."""
    return VmomiSupport.GetVmodlName(kind).removeprefix("vim.")


def description_id(entity_type: type, method: str) -> str:
    """The descriptionId of a task of WSDL method ``method`` run on (or about) an entity of ``entity_type``."""
    info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
    owner = entity_type if issubclass(entity_type, info.type) else info.type
    return f"{_vmodl_name(owner)}.{info.name[:1].lower()}{info.name[1:]}"


def task_label(description: str | None) -> str:
    """What a vCenter shows for a task's descriptionId: its methodInfo label (the key itself if it has none)."""
    if description is None:
        return ""
    return METHOD_DESCRIPTIONS.get(description, (description,))[0]


def task_description() -> Any:
    """TaskManager.description: the TaskDescription of every method, state and reason above."""
    return vim.TaskDescription(
        methodInfo=[vim.ElementDescription(key=key, label=label, summary=summary)
                    for key, (label, summary) in METHOD_DESCRIPTIONS.items()],
        state=[vim.ElementDescription(key=key, label=label, summary=summary)
               for key, (label, summary) in STATE_DESCRIPTIONS.items()],
        reason=[vim.TypeDescription(key=kind, label=label, summary=summary)
                for kind, (label, summary) in REASON_DESCRIPTIONS.items()])
