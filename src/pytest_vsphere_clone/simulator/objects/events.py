"""EventManager and EventHistoryCollector: the vCenter's event history.

Events are posted by the simulated operations (a task's TaskEvent, VM creation,
cloning, power changes, removal, logins). Each carries the reference's fields:
``key`` (increasing), ``chainId`` (the key of the TaskEvent that opened the
chain, so a task and what it caused share it: TaskInfo.eventChainId),
``createdTime``, ``userName`` and ``fullFormattedMessage``.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .base import ManagedEntity, SimObject, vmomi_method
from .task_descriptions import task_label
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

#: Events kept; older ones are purged as a vCenter's event.maxAge purges them.
HISTORY_LIMIT = 20000
#: QueryEvents answers at most this many events (the latest), as a vCenter does; collectors page further.
QUERY_LIMIT = 1000
#: HistoryCollector pages: the default "viewable latest page" size and the largest page a read may ask for.
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
#: EventManager.maxCollector: "For each client, the maximum number of event collectors that can exist
#: simultaneously."
MAX_COLLECTORS = 32

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
_ARGUMENTS = {"datacenter": "datacenter", "computeResource": "computeResource", "host": "host", "vm": "vm",
              "ds": "datastore", "net": "network"}
_current = threading.local()


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


@dataclass
class EventRecord:
    """A posted event and the entities it concerns (kept after those entities are gone)."""

    event: Any
    primary: str | None  # the mo_id of the entity the event is about
    parents: set[str] = field(default_factory=set)  # that entity's direct containers
    ancestors: set[str] = field(default_factory=set)  # every container above it


def _ancestry(entity: SimObject | None) -> tuple[set[str], set[str]]:
    """(direct containers, all containers) of an entity: its folder chain, and for a VM its pool and host."""
    from .virtual_machine import VirtualMachine

    if not isinstance(entity, ManagedEntity):
        return set(), set()
    starts: list[Any] = [entity.parent]
    if isinstance(entity, VirtualMachine):
        starts += [entity.pool, entity.host]
    parents = {node.mo_id for node in starts if node is not None}
    ancestors: set[str] = set()
    for node in starts:
        while isinstance(node, SimObject):
            ancestors.add(node.mo_id)
            node = getattr(node, "parent", None)
    return parents, ancestors


def _primary_ref(event: Any) -> Any:
    if isinstance(event, vim.event.TaskEvent):
        return event.info.entity
    for name in ("vm", "host", "computeResource", "ds", "net", "datacenter"):
        argument = getattr(event, name, None)
        if argument is not None:
            return getattr(argument, _ARGUMENTS[name])
    return None


def set_current_task(task: Any) -> None:
    """Record the task this thread is running (its events join the task's chain)."""
    _current.task = task


def current_task() -> Any:
    return getattr(_current, "task", None)


def event_manager(vc: VCenter) -> EventManager | None:
    manager = vc.objects.get("EventManager")
    return manager if isinstance(manager, EventManager) else None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class EventManager(Unmodelled):
    """vim.event.EventManager (``EventManager``)."""

    vim_type = vim.event.EventManager

    def __init__(self, vc: VCenter, mo_id: str = "EventManager") -> None:
        super().__init__(vc, mo_id)
        self.history: deque[EventRecord] = deque(maxlen=HISTORY_LIMIT)
        self.next_key = 1
        #: Live collectors, told of each new event their filter selects.
        self.collectors: set[EventHistoryCollector] = set()

    # --- posting -----------------------------------------------------------------------

    def post(self, event: Any, *, chain_id: int | None = None, entity: SimObject | None = None) -> Any:
        """Give ``event`` its key, chain, time and message, keep it and update the collectors."""
        with self.vc.lock:
            event.key = self.next_key
            self.next_key += 1
            task = current_task()
            if chain_id is None and task is not None:
                chain_id = task.info.eventChainId
            event.chainId = chain_id if chain_id is not None else event.key
            event.createdTime = _utcnow()
            if not event.userName:  # pyVmomi leaves an unset required string empty
                context = self.vc.current_context()
                event.userName = task.info.reason.userName if task is not None else (
                    context.user if context is not None else "")
            event.fullFormattedMessage = format_message(event)
            primary_ref = _primary_ref(event)
            if entity is None and primary_ref is not None:
                entity = self.vc.objects.get(primary_ref._moId)
            parents, ancestors = _ancestry(entity)
            record = EventRecord(event, primary_ref._moId if primary_ref is not None else None, parents, ancestors)
            self.history.append(record)
            self.changed()
            for collector in [c for c in self.collectors if c.alive]:
                if collector.matches(record):
                    collector.changed()
        return event

    def post_task_event(self, info: Any, entity: SimObject | None) -> None:
        """A new task's TaskEvent opens its event chain: TaskInfo.eventChainId is that event's key."""
        event = vim.event.TaskEvent(info=copy.copy(info), userName=info.reason.userName)
        if isinstance(entity, ManagedEntity):
            self._set_entity_arguments(event, entity)
        with self.vc.lock:
            chain = self.next_key
            info.eventChainId = chain
            self.post(event, chain_id=chain, entity=entity)

    def _set_entity_arguments(self, event: Any, entity: ManagedEntity) -> None:
        from .inventory import ClusterComputeResource, Datastore, HostSystem, datacenter_of
        from .virtual_machine import VirtualMachine

        dc = datacenter_of(entity)
        if dc is not None:
            event.datacenter = vim.event.DatacenterEventArgument(name=dc.name, datacenter=dc.ref)
        host = entity.host if isinstance(entity, VirtualMachine) else entity if isinstance(entity, HostSystem) \
            else None
        if host is not None:
            event.host = vim.event.HostEventArgument(name=host.name, host=host.ref)
            cluster = host.parent
            if isinstance(cluster, ClusterComputeResource):
                event.computeResource = vim.event.ComputeResourceEventArgument(name=cluster.name,
                                                                               computeResource=cluster.ref)
        if isinstance(entity, VirtualMachine):
            event.vm = vim.event.VmEventArgument(name=entity.name, vm=entity.ref)
            event.ds = vim.event.DatastoreEventArgument(name=entity.datastore.name, datastore=entity.datastore.ref)
        elif isinstance(entity, Datastore):
            event.ds = vim.event.DatastoreEventArgument(name=entity.name, datastore=entity.ref)

    def vm_event(self, kind: type, vm: SimObject, **fields: Any) -> Any:
        """Post a VmEvent of type ``kind`` about ``vm`` (its host, cluster, datacenter, datastore filled in)."""
        assert isinstance(vm, ManagedEntity)
        event = kind(template=bool(getattr(vm, "template", False)), **fields)
        self._set_entity_arguments(event, vm)
        return self.post(event, entity=vm)

    # --- properties --------------------------------------------------------------------

    def prop_latestEvent(self) -> Any:
        return self.history[-1].event if self.history else None

    def prop_maxCollector(self) -> int:
        return MAX_COLLECTORS

    def prop_description(self) -> Any:
        categories = [vim.ElementDescription(key=k, label=k.capitalize(), summary=k.capitalize())
                      for k in ("info", "warning", "error", "user")]
        details = [vim.event.EventDescription.EventDetail(
            key=VmomiSupport.GetWsdlType("urn:vim25", kind), description=description, category=category,
            formatOnDatacenter=full, formatOnComputeResource=full, formatOnHost=full, formatOnVm=full,
            fullFormat=full)
            for kind, (category, description, full) in EVENT_FORMATS.items()]
        return vim.event.EventDescription(category=categories, eventInfo=details)

    # --- queries -----------------------------------------------------------------------

    def matching(self, spec: Any) -> list[EventRecord]:
        """The kept events that ``spec`` selects, oldest first."""
        check = _FilterCheck(self.vc, spec)
        return [record for record in self.history if check(record)]

    @vmomi_method()
    def QueryEvents(self, ctx: CallContext, filter: Any) -> list[Any]:
        with self.vc.lock:
            _FilterCheck(self.vc, filter)  # validates the filter
            limit = filter.maxCount if filter.maxCount else QUERY_LIMIT
            if not 0 < limit <= QUERY_LIMIT:
                raise vmodl.fault.InvalidArgument(msg=f"maxCount must be between 1 and {QUERY_LIMIT}",
                                                  invalidProperty="filter.maxCount")
            found = self.matching(filter)[-limit:]
            # Newest first, as a collector's latest page: the order govc and PowerCLI read them in.
            return [_presented(r.event, filter) for r in reversed(found)]

    @vmomi_method()
    def CreateCollectorForEvents(self, ctx: CallContext, filter: Any) -> Any:
        with self.vc.lock:
            _FilterCheck(self.vc, filter)
            session = ctx.session.key if ctx.session else None
            for stale in list(self.collectors):
                if not stale.alive or (stale.session_key is not None
                                       and self.vc.sessions.peek(stale.session_key) is None):
                    self.collectors.discard(stale)  # destroyed, or its session ended: collectors do not
                    self.vc.remove(stale)  # outlive their session
            live = [c for c in self.collectors if c.session_key == session]
            if len(live) >= MAX_COLLECTORS:
                # CreateCollectorForEvents: InvalidState "if there are more than the maximum number of
                # event collectors".
                raise vim.fault.InvalidState(msg="Too many event collectors to create.")
            collector = EventHistoryCollector(self.vc, self.vc.new_id("session[events]"), self, filter, session)
            self.vc.add(collector)
            self.collectors.add(collector)
            return collector.ref

    @vmomi_method("Global.LogEvent")
    def PostEvent(self, ctx: CallContext, eventToPost: Any, taskInfo: Any = None) -> None:
        # PostEvent: "key, chainId, createdTime ... any caller-supplied values will be overwritten by the
        # system"; the chain is the given task's.
        with self.vc.lock:
            for name in _ARGUMENTS:
                argument = getattr(eventToPost, name, None)
                if argument is not None:
                    self.vc.lookup(getattr(argument, _ARGUMENTS[name]))
            chain = taskInfo.eventChainId if taskInfo is not None else None
            if not eventToPost.userName:
                eventToPost.userName = ctx.user
            self.post(eventToPost, chain_id=chain)

    @vmomi_method("Global.LogEvent")
    def LogUserEvent(self, ctx: CallContext, entity: Any, msg: str) -> None:
        with self.vc.lock:
            target = self.vc.lookup_as(entity, ManagedEntity)
            if not msg:
                raise vmodl.fault.InvalidArgument(msg="The message is empty.", invalidProperty="msg")
            event = vim.event.GeneralUserEvent(message=msg, userName=ctx.user,
                                               entity=vim.event.ManagedEntityEventArgument(name=target.name,
                                                                                           entity=target.ref))
            self._set_entity_arguments(event, target)
            self.post(event, entity=target)

    @vmomi_method()
    def RetrieveArgumentDescription(self, ctx: CallContext, eventTypeId: str) -> list[Any]:
        try:
            kind = VmomiSupport.GetWsdlType("urn:vim25", eventTypeId)
        except KeyError:
            return []
        if not issubclass(kind, vim.event.Event):
            return []
        return [vim.event.EventDescription.EventArgDesc(name=p.name, type=VmomiSupport.GetWsdlName(p.type))
                for p in kind._GetPropertyList() if issubclass(p.type, vim.event.EventArgument)]


def _presented(event: Any, spec: Any) -> Any:
    # EventFilterSpec.disableFullMessage: "Flag to specify whether or not to prepare the full formatted
    # message for each event." Messages are sent unless the flag is true, as a vCenter does.
    if spec is not None and spec.disableFullMessage:
        event = copy.copy(event)
        event.fullFormattedMessage = None
    return event


class _FilterCheck:
    """An EventFilterSpec, validated, as a predicate on EventRecords."""

    def __init__(self, vc: VCenter, spec: Any) -> None:
        if spec is None:
            raise vmodl.fault.InvalidArgument(msg="The filter is required.", invalidProperty="filter")
        self.spec = spec
        self.entity: str | None = None
        self.recursion = "all"
        if spec.entity is not None:
            self.entity = vc.lookup_as(spec.entity.entity, ManagedEntity).mo_id
            self.recursion = spec.entity.recursion or "all"
            if self.recursion not in ("self", "children", "all"):
                raise vmodl.fault.InvalidArgument(msg=f"Unknown recursion {self.recursion}",
                                                  invalidProperty="filter.entity.recursion")
        if spec.eventTypeId and spec.type:
            # EventFilterSpec.eventTypeId: "if both eventTypeId and type are specified, an exception may
            # be thrown by CreateCollectorForEvents".
            raise vmodl.fault.InvalidArgument(msg="Set eventTypeId or type, not both.",
                                              invalidProperty="filter.eventTypeId")
        self.type_ids = set(spec.eventTypeId or ())
        self.types = tuple(spec.type or ())
        self.categories = set(spec.category or ())

    def __call__(self, record: EventRecord) -> bool:
        spec, event = self.spec, record.event
        if self.entity is not None:
            if self.recursion == "self":
                related = {record.primary}
            elif self.recursion == "children":
                related = {record.primary, *record.parents}
            else:
                related = {record.primary, *record.ancestors}
            if self.entity not in related:
                return False
        if spec.time is not None:
            if spec.time.beginTime is not None and event.createdTime < spec.time.beginTime:
                return False
            if spec.time.endTime is not None and event.createdTime > spec.time.endTime:
                return False
        if spec.userName is not None:
            users = set(spec.userName.userList or ())
            system = not event.userName
            if not ((system and spec.userName.systemUser) or (not system and event.userName in users)):
                return False
        if spec.eventChainId is not None and event.chainId != spec.eventChainId:
            return False
        if spec.alarm is not None or spec.scheduledTask is not None:
            return False  # the simulator has no alarms nor scheduled tasks, so no events of theirs
        kind = VmomiSupport.GetWsdlName(type(event))
        if self.type_ids:
            type_id = event.eventTypeId if isinstance(event, vim.event.EventEx) else kind
            if type_id not in self.type_ids:
                return False
        if self.types and not isinstance(event, self.types):
            return False
        category = getattr(event, "severity", None) or EVENT_FORMATS.get(kind, ("info",))[0]
        return not (self.categories and category not in self.categories)


class EventHistoryCollector(Unmodelled):
    """vim.event.EventHistoryCollector: a session's pages over the events its filter selects.

    The "scrollable view" is a cursor between event keys: ReadNextEvents reads forward from it,
    ReadPreviousEvents backward; RewindCollector puts it before the oldest event (the default),
    ResetCollector just before the latest page (HistoryCollector).
    """

    vim_type = vim.event.EventHistoryCollector

    def __init__(self, vc: VCenter, mo_id: str, manager: EventManager, spec: Any, session_key: str | None) -> None:
        super().__init__(vc, mo_id)
        self.manager = manager
        self.spec = spec
        self.check = _FilterCheck(vc, spec)
        self.session_key = session_key
        self.page_size = DEFAULT_PAGE_SIZE
        self.cursor = 0  # events with a key above it are "next", at or below it "previous"

    def matches(self, record: EventRecord) -> bool:
        return self.check(record)

    def _events(self) -> list[Any]:
        return [r.event for r in self.manager.history if self.check(r)]

    def _latest(self) -> list[Any]:
        return self._events()[-self.page_size:] if self.page_size else []

    def prop_filter(self) -> Any:
        return self.spec

    def prop_initialized(self) -> bool:
        return True  # the collector fills its page when it is created (EventFilterSpec.delayedInit unset)

    def prop_latestPage(self) -> list[Any]:
        return [_presented(e, self.spec) for e in reversed(self._latest())]

    def _own(self, ctx: CallContext) -> None:
        # CreateCollectorForEvents: "Event collectors do not persist beyond the current client session."
        if self.session_key is not None and (ctx.session is None or ctx.session.key != self.session_key):
            raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted or has not been "
                                                        "completely created", obj=self.ref)

    @staticmethod
    def _count(count: int, what: str) -> int:
        if not 0 < count <= MAX_PAGE_SIZE:
            raise vmodl.fault.InvalidArgument(msg=f"{what} must be between 1 and {MAX_PAGE_SIZE}",
                                              invalidProperty="maxCount")
        return count

    @vmomi_method()
    def ReadNextEvents(self, ctx: CallContext, maxCount: int) -> list[Any]:
        with self.vc.lock:
            self._own(ctx)
            page = [e for e in self._events() if e.key > self.cursor][: self._count(maxCount, "maxCount")]
            if page:
                self.cursor = page[-1].key
            return [_presented(e, self.spec) for e in page]

    @vmomi_method()
    def ReadPreviousEvents(self, ctx: CallContext, maxCount: int) -> list[Any]:
        with self.vc.lock:
            self._own(ctx)
            older = [e for e in self._events() if e.key <= self.cursor]
            page = older[-self._count(maxCount, "maxCount"):]
            if page:
                self.cursor = page[0].key - 1
            # readPrev: items come "from the newest item to the oldest item".
            return [_presented(e, self.spec) for e in reversed(page)]

    @vmomi_method()
    def RewindCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            self.cursor = 0

    @vmomi_method()
    def ResetCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            latest = self._latest()
            events = self._events()
            self.cursor = latest[0].key - 1 if latest else (events[-1].key if events else 0)

    @vmomi_method()
    def SetCollectorPageSize(self, ctx: CallContext, maxCount: int) -> None:
        with self.vc.lock:
            self._own(ctx)
            if not 0 <= maxCount <= MAX_PAGE_SIZE:
                raise vmodl.fault.InvalidArgument(msg=f"maxCount must be between 0 and {MAX_PAGE_SIZE}",
                                                  invalidProperty="maxCount")
            self.page_size = maxCount
            self.changed()

    @vmomi_method()
    def DestroyCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            self.manager.collectors.discard(self)
            self.vc.remove(self)


def post_vm_event(vm: SimObject, kind: type, **fields: Any) -> None:
    """Post a VmEvent about ``vm`` if the vCenter keeps events (the hook the VM operations call)."""
    manager = event_manager(vm.vc)
    if manager is not None:
        manager.vm_event(kind, vm, **fields)


def post_task_event(vc: VCenter, info: Any, entity: SimObject | None) -> None:
    """Open a new task's event chain (the hook TaskRunner calls)."""
    manager = event_manager(vc)
    if manager is not None:
        manager.post_task_event(info, entity)


def post_clone_events(source: SimObject, name: str, folder: SimObject, host: SimObject,
                      clone: SimObject | None = None) -> None:
    """A clone's events: VmBeingClonedEvent on the source when it starts, VmClonedEvent on the clone when done.

    The API has no event type of its own for InstantClone_Task: an instant clone posts the same two.
    """
    manager = event_manager(source.vc)
    if manager is None:
        return
    if clone is None:
        manager.vm_event(vim.event.VmBeingClonedEvent, source, destName=name,
                         destFolder=vim.event.FolderEventArgument(name=getattr(folder, "name", ""), folder=folder.ref),
                         destHost=vim.event.HostEventArgument(name=getattr(host, "name", ""), host=host.ref))
    else:
        manager.vm_event(vim.event.VmClonedEvent, clone,
                         sourceVm=vim.event.VmEventArgument(name=getattr(source, "name", ""), vm=source.ref))
