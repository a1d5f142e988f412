"""EventManager: the vCenter's event history, and the hooks that post to it.

Events are posted by the simulated operations (a task's TaskEvent, VM creation,
cloning, power changes, removal, logins). Each carries the reference's fields:
``key`` (increasing), ``chainId`` (the key of the TaskEvent that opened the
chain, so a task and what it caused share it: TaskInfo.eventChainId),
``createdTime``, ``userName`` and ``fullFormattedMessage``.

This module is the EventManager (posting, queries, collectors' creation) and the posting hooks the
operations call; messages are event_formats.py's, filters event_filters.py's, the collectors
event_history_collector.py's.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .base import ManagedEntity, SimObject, vmomi_method
from .event_filters import EventFilter, EventRecord, presented
from .event_formats import EVENT_FORMATS, format_message
from .event_history_collector import EventHistoryCollector
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

#: Events kept; older ones are purged as a vCenter's event.maxAge purges them.
HISTORY_LIMIT = 20000
#: QueryEvents answers at most this many events (the latest), as a vCenter does; collectors page further.
QUERY_LIMIT = 1000
#: EventManager.maxCollector: "For each client, the maximum number of event collectors that can exist
#: simultaneously."
MAX_COLLECTORS = 32

_ARGUMENTS = {"datacenter": "datacenter", "computeResource": "computeResource", "host": "host", "vm": "vm",
              "ds": "datastore", "net": "network"}
_current = threading.local()


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
        check = EventFilter(self.vc, spec)
        return [record for record in self.history if check(record)]

    @vmomi_method()
    def QueryEvents(self, ctx: CallContext, filter: Any) -> list[Any]:
        with self.vc.lock:
            EventFilter(self.vc, filter)  # validates the filter
            limit = filter.maxCount if filter.maxCount else QUERY_LIMIT
            if not 0 < limit <= QUERY_LIMIT:
                raise vmodl.fault.InvalidArgument(msg=f"maxCount must be between 1 and {QUERY_LIMIT}",
                                                  invalidProperty="filter.maxCount")
            found = self.matching(filter)[-limit:]
            # Newest first, as a collector's latest page: the order govc and PowerCLI read them in.
            return [presented(r.event, filter) for r in reversed(found)]

    @vmomi_method()
    def CreateCollectorForEvents(self, ctx: CallContext, filter: Any) -> Any:
        with self.vc.lock:
            EventFilter(self.vc, filter)
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
