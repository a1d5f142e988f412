"""What each event type says: its category, description and fullFormattedMessage.

``EVENT_FORMATS`` holds vCenter's EventDescription formats for the events the simulator posts;
``format_message`` fills one in from an event's arguments, as a vCenter writes fullFormattedMessage.
EventManager.description publishes the same table, and event filters read categories from it.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import VmomiSupport, vim

from .task_descriptions import task_label

#: Event type -> (category, description, full format). The formats are vCenter's EventDescription
#: fullFormat strings, with Python's {field} placeholders.
EVENT_FORMATS: dict[str, tuple[str, str, str]] = {
    "TaskEvent": ("info", "Task event", "Task: {task}"),
    "UserLoginSessionEvent": ("info", "User login", "User {userName}@{ipAddress} logged in as {userAgent}"),
    "UserLogoutSessionEvent": ("info", "User logout",
                               "User {userName}@{ipAddress} logged out (login time: {loginTime}, number of API "
                               "invocations: {callCount}, user agent: {userAgent})"),
    "GeneralUserEvent": ("user", "User logged event", "User logged event: {message}"),
    "VmCreatedEvent": ("info", "VM created", "Created virtual machine {vm} on {host} in {datacenter}"),
    "VmRegisteredEvent": ("info", "VM registered", "Registered {vm} on {host} in {datacenter}"),
    "VmBeingClonedEvent": ("info", "VM being cloned",
                           "Cloning {vm} on host {host} in {datacenter} to {destName} on host {destHost}"),
    "VmClonedEvent": ("info", "VM clone completed", "Clone of {sourceVm} completed"),
    "VmStartingEvent": ("info", "VM starting", "{vm} on host {host} in {datacenter} is starting"),
    "VmPoweredOnEvent": ("info", "VM powered on", "{vm} on {host} in {datacenter} is powered on"),
    "VmStoppingEvent": ("info", "VM stopping", "{vm} on host {host} in {datacenter} is stopping"),
    "VmPoweredOffEvent": ("info", "VM powered off", "{vm} on {host} in {datacenter} is powered off"),
    "VmResettingEvent": ("info", "VM resetting", "{vm} on {host} in {datacenter} is reset"),
    "VmGuestShutdownEvent": ("info", "Guest OS shut down",
                             "Guest OS shut down for {vm} on {host} in {datacenter}"),
    "VmGuestRebootEvent": ("info", "Guest reboot", "Guest OS reboot for {vm} on {host} in {datacenter}"),
    "VmReconfiguredEvent": ("info", "VM reconfigured", "Reconfigured {vm} on {host} in {datacenter}"),
    "VmRenamedEvent": ("info", "VM renamed", "Renamed {vm} from {oldName} to {newName} in {datacenter}"),
    "VmRemovedEvent": ("info", "VM removed", "Removed {vm} on {host} from {datacenter}"),
}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _name(argument: Any) -> str:
    return getattr(argument, "name", "") or ""


def format_message(event: Any) -> str:
    """The event's fullFormattedMessage, from its type's format."""
    kind = VmomiSupport.GetWsdlName(type(event))
    template = EVENT_FORMATS.get(kind, ("info", kind, kind))[2]
    fields = _Fields(userName=event.userName)
    for name in ("datacenter", "computeResource", "host", "vm", "ds", "net", "destHost", "sourceVm"):
        fields[name] = _name(getattr(event, name, None))
    for name in ("destName", "ipAddress", "userAgent", "callCount", "loginTime", "message", "oldName", "newName"):
        value = getattr(event, name, None)
        if value is not None:
            fields[name] = value
    if isinstance(event, vim.event.TaskEvent):
        # TaskEvent's fullFormat is "Task: {info.descriptionId}", which a vCenter writes as the task's
        # label in TaskManager.description.methodInfo: "Task: Power On virtual machine".
        fields["task"] = task_label(event.info.descriptionId)
    return template.format_map(fields)
