"""A waiter's own PropertyCollector and its ListView: their life, their members, their faults. A
:class:`CollectorView` owns a dedicated collector (CreatePropertyCollector) and one ListView
(ViewManager.CreateListView) of the tasks it follows and the VMs it watches, under two filters
(tasks', VMs') that live as long as the collector: a member joins with one ModifyListView, and
finished tasks and destroyed VMs leave in the next one, where a filter of its own would cost a
CreateFilter and a DestroyPropertyFilter (see client/pacing.py). It keeps the filters of single
waits on objects outside the view, marks an object found gone (it leaves the view, a filter naming
it is destroyed), and replaces a collector that is really lost at a bounded rate, with a new view
of every member, the old ones destroyed. The waits are client/waiter.py's; one WaitForUpdatesEx and
where its updates go, client/collector_updates.py's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import faults

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

States = dict[Any, dict[str, Any]]


#: What a task wait watches: not the whole ``info``, whose progress changes would wake the wait
#: (and cost a WaitForUpdatesEx) many times per task, nor its state, but its completion time: set
#: once, with the final result or error, so a task costs one update when it ends and none for
#: queued -> running. The identity fields and the queue time never change after the first report.
TASK_PATHS = ("info.completeTime", "info.error", "info.result", "info.descriptionId", "info.entityName",
              "info.queueTime")

#: What a VM watch reports of the VM itself.
VM_WATCH_PATHS = ("guest.toolsRunningStatus", "runtime.powerState")

#: Collector re-creations: the pause before the n-th one within a minute (first at once), capped.
_RECREATE_WINDOW = 60.0
_RECREATE_BASE_DELAY = 2.0
_RECREATE_MAX_DELAY = 20.0


@dataclass
class Watch:
    """One VM in the waiter's view for its whole life (its power state and Tools status)."""

    vm: Any
    states: States = field(default_factory=dict)
    gone: bool = False  # the VM left the view: it was destroyed


def _view_filter_specs(view: Any) -> list[Any]:
    """The view's filters: one for its tasks' ends, one for its VMs' states.

    One filter per type, not one with a PropertySpec per type: govmomi's vcsim 0.24 fails a
    WaitForUpdatesEx (its PropertyFilter.matches looks the object up to compare a second type) when
    a destroyed member changed just before it went, and loses the updates pending then.
    """
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    members = pc.TraversalSpec(name="members", type=vim.view.ListView, path="view", skip=False)
    return [pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[members])],
                          propSet=[pc.PropertySpec(type=kind, pathSet=list(paths), all=False)])
            for kind, paths in ((vim.Task, TASK_PATHS), (vim.VirtualMachine, VM_WATCH_PATHS))]


def _spec_objects(spec: Any) -> frozenset[str]:
    return frozenset(str(o.obj._moId) for o in spec.objectSet or ())


def not_found_obj(exc: BaseException) -> str:
    """The moId of the object a ManagedObjectNotFound names ("" if none)."""
    gone = getattr(exc, "obj", None)
    return str(getattr(gone, "_moId", "")) if gone is not None else ""


class CollectorView:
    """A connection's dedicated collector, its view of followed tasks and watched VMs, and the
    filters of single waits; see the module docstring. Callers hold ``_lock`` (:meth:`close` takes it)."""

    def __init__(self, conn: VSphereConnection) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._collector: Any = None
        self._generation = -1
        self._version = ""
        self._watches: dict[str, Watch] = {}
        #: The ListView of followed tasks and watched VMs, and its filters (tasks', VMs').
        self._view: Any = None
        self._view_filters: list[Any] = []
        #: What the view holds (moId -> ref), and what leaves it with the next ModifyListView.
        self._members: dict[str, Any] = {}
        self._stale: dict[str, Any] = {}
        #: What the view's filter reported of its tasks.
        self._task_states: States = {}
        #: Every live filter of a single wait (not the view's): filter id -> the objects it names.
        self._filters: dict[str, frozenset[str]] = {}
        #: When each collector after the first was created (for the re-creation ceiling).
        self._recreated: deque[float] = deque()
        self._created_any = False
        self._lost = False  # the collector faulted as gone: replace it (and try to destroy it)

    def close(self) -> None:
        """Destroy the view and the collector (and with it every filter it still has)."""
        with self._lock:
            collector, self._collector = self._collector, None
            view, self._view = self._view, None
            self._watches.clear()
            self._filters.clear()
            self._members.clear()
            self._stale.clear()
            self._task_states.clear()
            if not (self.conn.connected and self._generation == self.conn.generation):
                return  # gone with its session already: nothing left to free
            for obj, method in ((view, "DestroyView"), (collector, "DestroyPropertyCollector")):
                if obj is None:
                    continue
                try:
                    getattr(obj, method)()
                except Exception as exc:  # gone already: nothing to free
                    log.debug("%s failed: %s", method, faults.describe(exc))

    # --- the view ----------------------------------------------------------------------

    def _view_usable(self) -> bool:
        return not self._lost and len(self._view_filters) == 2 and self._generation == self.conn.generation

    def _add_to_view(self, refs: Sequence[Any]) -> set[str]:
        """Make ``refs`` members of the view (with the stale ones leaving it); the moIds of those the
        server could not resolve."""
        new = [r for r in refs if r._moId not in self._members]
        for ref in refs:
            self._stale.pop(ref._moId, None)  # followed again: it stays
        if not self._view_usable():
            return self._ensure_collector(adding=new)
        if not new:
            return set()
        return self._modify_view(new)

    def _modify_view(self, add: list[Any]) -> set[str]:
        """One ModifyListView: ``add`` joins the view, the stale members leave it. The moIds of
        added objects the server could not resolve (ModifyListView returns them; some servers
        fault ManagedObjectNotFound naming one instead)."""
        remove = list(self._stale.values())
        unresolved: set[str] = set()
        while True:
            try:
                # ModifyListView: "May partially succeed if some objects could not be resolved ... the
                # list of those which failed is returned as the result."
                failed = self.conn.call(self._view.ModifyListView, add or None, remove or None,
                                        what="ModifyListView")
            except Exception as exc:
                moid = not_found_obj(exc) if faults.is_not_found(exc) else ""
                if not moid or moid not in {a._moId for a in add}:
                    raise
                unresolved.add(moid)
                add = [a for a in add if a._moId != moid]
                continue
            unresolved |= {str(f._moId) for f in failed or ()}
            break
        for ref in remove:
            self._members.pop(ref._moId, None)
            self._stale.pop(ref._moId, None)
            self._task_states.pop(ref, None)
        self._members.update((a._moId, a) for a in add if a._moId not in unresolved)
        return unresolved

    # --- collectors and filters ----------------------------------------------------------

    def _ensure_collector(self, adding: Sequence[Any] = ()) -> set[str]:
        """A live collector with its view and the view's filter (``adding`` joining the view); the
        moIds of ``adding`` the server could not resolve."""
        if self._lost or self._collector is None or self._generation != self.conn.generation:
            self._replace_collector()
        if len(self._view_filters) < 2:
            return self._build_view(adding)
        return self._modify_view(list(adding)) if adding else set()

    def _build_view(self, adding: Sequence[Any]) -> set[str]:
        """The view of every watch and followed task (and ``adding``), and its filters."""
        unresolved: set[str] = set()
        if self._view is None:
            views = self.conn.content.viewManager
            assert views is not None
            wanted = dict(self._members)
            wanted.update((r._moId, r) for r in adding)
            while True:
                try:
                    self._view = self.conn.call(views.CreateListView, list(wanted.values()), what="CreateListView")
                    break
                except Exception as exc:  # some servers fault for an object they cannot find
                    moid = not_found_obj(exc) if faults.is_not_found(exc) else ""
                    if moid not in wanted:
                        raise
                    unresolved.add(moid)
                    del wanted[moid]
            self._members = wanted
        elif adding:
            unresolved = self._modify_view(list(adding))
        for moid in unresolved:
            if moid in self._watches:
                self._watches[moid].gone = True
        for spec in _view_filter_specs(self._view)[len(self._view_filters):]:
            self._view_filters.append(self.conn.call(self._collector.CreateFilter, spec, False, what="CreateFilter"))
        return unresolved

    def _replace_collector(self) -> None:
        """A new collector; the old one and its view destroyed if their session lives. The next
        view holds every watch and followed task again.

        Re-creation is rate-limited (a pause doubling from 2 s to 20 s for each one within a minute):
        a server that keeps faulting must not get a storm of collectors from every client.
        """
        old, old_view, old_generation = self._collector, self._view, self._generation
        if self._created_any:
            now = time.monotonic()
            while self._recreated and now - self._recreated[0] > _RECREATE_WINDOW:
                self._recreated.popleft()
            if self._recreated:
                pause = min(_RECREATE_BASE_DELAY * 2 ** (len(self._recreated) - 1), _RECREATE_MAX_DELAY)
                log.info("property collector lost again; creating a new one in %.0f s", pause)
                time.sleep(pause)
            self._recreated.append(time.monotonic())
        self._collector, self._view, self._view_filters, self._lost = None, None, [], False
        self._filters.clear()
        if old_generation == self.conn.generation:
            for obj, method in ((old_view, "DestroyView"), (old, "DestroyPropertyCollector")):
                if obj is None:
                    continue
                try:  # a collector's filters go with it
                    self.conn.call(getattr(obj, method), what=method)
                except Exception as exc:  # already gone: nothing to free
                    log.debug("%s failed: %s", method, faults.describe(exc))
        root = self.conn.content.propertyCollector
        assert root is not None
        generation = self.conn.generation
        self._collector = self.conn.call(root.CreatePropertyCollector, what="CreatePropertyCollector")
        self._generation = generation
        self._created_any = True
        self._version = ""
        # Their initial values come again with the next view; a VM destroyed meanwhile cannot be
        # watched again (it has left its watch), and stale members are not wanted.
        self._task_states.clear()
        for watch in self._watches.values():
            watch.states.clear()
        self._members = {m: r for m, r in self._members.items()
                         if m not in self._stale and not (m in self._watches and self._watches[m].gone)}
        self._stale.clear()

    def _create_filter(self, spec: Any) -> Any:
        self._ensure_collector()
        return self._new_filter(spec)

    def _new_filter(self, spec: Any) -> Any:
        flt = self.conn.call(self._collector.CreateFilter, spec, False, what="CreateFilter")
        self._filters[str(flt._moId)] = _spec_objects(spec)
        return flt

    def _drop_filter(self, flt: Any) -> None:
        if flt is None or str(flt._moId) not in self._filters:
            return  # went with its collector, or was dropped when its object was found gone
        if self._collector is None or self._generation != self.conn.generation:
            return  # went with the old session
        self._destroy_filter(flt)

    def _destroy_filter(self, flt: Any) -> None:
        self._filters.pop(str(flt._moId), None)
        try:
            self.conn.call(flt.DestroyPropertyFilter, what="DestroyPropertyFilter")
        except Exception as exc:  # already gone: nothing to free
            log.debug("DestroyPropertyFilter failed: %s", faults.describe(exc))

    def _object_gone(self, moid: str, current: Any) -> bool:
        """An object the view or a wait's filter names no longer exists: it leaves the view (a
        watch's VM has left its watch, a followed task is gone) and a filter naming it is destroyed.
        True if ``current`` (the running wait's own filter) was one."""
        if moid in self._watches:
            self._watches[moid].gone = True
        if moid in self._members:
            ref = self._members[moid]
            if moid not in self._watches:
                self._task_states.setdefault(ref, {})["__gone__"] = True
            self._stale[moid] = ref
            if self._view is not None:
                try:  # this server keeps faulting while the view names it
                    self._modify_view([])
                except Exception as exc:
                    log.debug("ModifyListView failed: %s", faults.describe(exc))
        hit = False
        for flt_id, objects in list(self._filters.items()):
            if moid in objects:
                self._filters.pop(flt_id, None)
                if current is not None and str(current._moId) == flt_id:
                    hit = True
                    self._destroy_filter(current)
        return hit

    def _renewed(self, spec: Any) -> Any:
        """After the collector was lost: a new one (with the view), and the wait's filter anew."""
        self._ensure_collector()
        return None if spec is None else self._new_filter(spec)
