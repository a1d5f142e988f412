"""One WaitForUpdatesEx of a waiter's collector, its faults, and where each update goes.
:class:`CollectorUpdates` long-polls the collector of its :class:`~.collector_view.CollectorView`
once per call: a single wait's filter updates that wait's states (a ``leave`` ends the wait: its
object was destroyed), the view's filters update the watched VMs and the followed tasks (a member's
``leave``: it is gone). A ManagedObjectNotFound naming a member or a filtered object (some servers
send it instead of a ``leave``) marks that object gone and the collector lives; one naming the
collector, or a refused initial version, replaces the collector; a refused later version starts
over from the initial one (every filter reports afresh); a renewed session gets a new collector,
view and filter.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from . import faults
from .collector_view import CollectorView, States, not_found_obj

log = logging.getLogger(__name__)


class CollectorUpdates(CollectorView):
    """A :class:`CollectorView` that waits for its updates and applies them; see the module docstring."""

    def _poll(self, flt: Any, spec: Any, states: States, seconds: float) -> Any:
        """One WaitForUpdatesEx; applies changes of ``flt`` to ``states`` (and of the view to the
        watches and followed tasks); returns the (maybe new) filter. ``flt`` None: a wait on the view."""
        from pyVmomi import vmodl

        pc = vmodl.query.PropertyCollector
        if self._lost or self._collector is None or self._generation != self.conn.generation:
            # The session was renewed (or the collector lost): a fresh collector, view and filter.
            states.clear()
            flt = self._renewed(spec)
        collector = self._collector
        generation = self.conn.generation
        options = pc.WaitOptions(maxWaitSeconds=max(1, math.ceil(seconds)))
        try:
            update = self.conn.call(collector.WaitForUpdatesEx, self._version, options, what="WaitForUpdatesEx")
        except vmodl.fault.ManagedObjectNotFound as exc:
            moid = not_found_obj(exc)
            if moid and moid != str(collector._moId) and (
                    moid in self._members or any(moid in objs for objs in self._filters.values())):
                # An object the view or a filter names was destroyed and this server faults instead of
                # sending a "leave": it leaves its watch (or ends the wait that named it); the collector lives.
                if self._object_gone(moid, flt):
                    raise deleted(exc.obj) from None
                return flt
            log.info("property collector lost (%s); replacing it", faults.describe(exc))
            self._lost = True
            states.clear()
            return self._renewed(spec)
        except vmodl.query.InvalidCollectorVersion as exc:
            if self._version == "":
                log.info("property collector refused its initial version (%s); replacing it",
                         faults.describe(exc))
                self._lost = True
                states.clear()
                return self._renewed(spec)
            # WaitForUpdatesEx: "InvalidCollectorVersion: Thrown if the data version does not match a
            # valid version": start over from the initial version; every filter reports afresh.
            log.info("property collector version refused (%s); starting over", faults.describe(exc))
            self._version = ""
            states.clear()
            self._task_states.clear()
            for watch in self._watches.values():
                watch.states.clear()
            return flt
        if self.conn.generation != generation:
            states.clear()
            return self._renewed(spec)
        if update is None:
            return flt
        self._version = update.version
        for filter_update in update.filterSet or ():
            if flt is not None and filter_update.filter == flt:
                for object_update in filter_update.objectSet or ():
                    _apply(states, object_update)
            elif filter_update.filter in self._view_filters:
                for object_update in filter_update.objectSet or ():
                    self._apply_member(object_update)
            # else: a dropped filter's late news
        return flt

    def _apply_member(self, object_update: Any) -> None:
        """An update of the view's filter: a watched VM's, or a followed task's."""
        moid = str(object_update.obj._moId)
        watch = self._watches.get(moid)
        if object_update.kind == "leave":
            # A member the server dropped (destroyed, or a task it forgot); one we removed is no
            # member any more and its leave is news to nobody.
            ref = self._members.pop(moid, None)
            self._stale.pop(moid, None)
            if ref is None:
                return
            if watch is not None:
                watch.gone = True
            else:
                self._task_states.setdefault(ref, {})["__gone__"] = True
            return
        if watch is not None:
            _apply_changes(watch.states, object_update)
        elif moid in self._members:
            _apply_changes(self._task_states, object_update)


def deleted(obj: Any) -> Exception:
    """The fault a wait ends with when its object was destroyed meanwhile."""
    from pyVmomi import vmodl

    return vmodl.fault.ManagedObjectNotFound(msg=f"{obj._moId} was deleted while being waited on", obj=obj)


def _apply_changes(states: States, object_update: Any) -> None:
    values = states.setdefault(object_update.obj, {})
    values["__seen__"] = True
    for change in object_update.changeSet or ():
        if change.op in ("remove", "indirectRemove") or change.val is None:
            values.pop(change.name, None)
        else:
            values[change.name] = change.val


def _apply(states: States, object_update: Any) -> None:
    if object_update.kind == "leave":
        raise deleted(object_update.obj)
    _apply_changes(states, object_update)
