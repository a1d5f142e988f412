"""Which kept events an EventFilterSpec selects: the record kept per event, and the filter as a predicate.

An ``EventRecord`` keeps an event with the entities it concerns, so filters by entity (``self``,
``children``, ``all``) still work after those entities are gone. ``EventFilter`` validates a spec
as QueryEvents and CreateCollectorForEvents do and then matches records by entity, time, user,
chain, type and category; ``presented`` leaves out messages when the spec asks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .base import ManagedEntity
from .event_formats import EVENT_FORMATS

if TYPE_CHECKING:
    from ..vcenter import VCenter


@dataclass
class EventRecord:
    """A posted event and the entities it concerns (kept after those entities are gone)."""

    event: Any
    primary: str | None  # the mo_id of the entity the event is about
    parents: set[str] = field(default_factory=set)  # that entity's direct containers
    ancestors: set[str] = field(default_factory=set)  # every container above it


def presented(event: Any, spec: Any) -> Any:
    """``event`` as a reader of ``spec`` gets it: without its message if the spec disables messages."""
    # EventFilterSpec.disableFullMessage: "Flag to specify whether or not to prepare the full formatted
    # message for each event." Messages are sent unless the flag is true, as a vCenter does.
    if spec is not None and spec.disableFullMessage:
        event = copy.copy(event)
        event.fullFormattedMessage = None
    return event


class EventFilter:
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
