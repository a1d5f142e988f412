"""Waiting on tasks and properties through PropertyCollector filters and WaitForUpdatesEx.

No property is read in a loop: a filter reports the initial values and then only changes,
each WaitForUpdatesEx long-polls for at most ``max_wait_seconds``, and an overall
timeout ends the wait with an error that says what was awaited and what was last seen.

Tasks are followed through the Task objects themselves, never through an entity's
``recentTask``: the API reference for ManagedEntity.recentTask says "In releases after vSphere
API 5.0, vSphere Servers might not generate property collector update notifications for this
property."

Each :class:`Waiter` owns a dedicated PropertyCollector (CreatePropertyCollector), so
waiters in different threads never see each other's updates. A single waiter serialises
its waits; give each thread its own. The tasks it follows and the VMs it watches are one
ListView (ViewManager.CreateListView) under two filters (tasks', VMs') that live as long as
the collector: following a task or watching a VM is one ModifyListView (finished tasks and
destroyed VMs leave the view in the same call), where a filter of its own would cost a
CreateFilter and a DestroyPropertyFilter (see client/pacing.py). A watched object that is destroyed leaves its
watch (an ObjectUpdate of kind ``leave``, or a ManagedObjectNotFound fault naming it, which some
servers send instead); a collector that is really lost is replaced at a bounded rate (with a
new view), and the old one destroyed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import WaitTimeout
from .pacing import SECOND_LOOK, TaskPace
from .task_reads import FINISHED as _FINISHED
from .task_reads import TASK_READ_PATHS as _TASK_READ_PATHS
from .task_reads import TasksStillRunning as TasksStillRunning
from .task_reads import TaskView
from .task_reads import describe_task as describe_task
from .task_reads import describe_task_infos as describe_task_infos
from .task_reads import poll_tasks as poll_tasks
from .task_reads import read_task_infos as read_task_infos
from .task_reads import task_finished as task_finished
from .task_reads import task_method as task_method
from .task_reads import task_results as _results

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

States = dict[Any, dict[str, Any]]


def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: What a task wait watches: not the whole ``info``, whose progress changes would wake the wait
#: (and cost a WaitForUpdatesEx) many times per task, nor its state, but its completion time: set
#: once, with the final result or error, so a task costs one update when it ends and none for
#: queued -> running. The identity fields and the queue time never change after the first report.
TASK_PATHS = ("info.completeTime", "info.error", "info.result", "info.descriptionId", "info.entityName",
              "info.queueTime")


def _task_info(states: States, task: Any) -> TaskView | None:
    values = states.get(task)
    if not values or not values.get("__seen__"):
        return None
    view = TaskView(values)
    view.state = view.state or "queued or running"  # a watched task not finished yet
    return view


#: What a VM watch reports of the VM itself.
VM_WATCH_PATHS = ("guest.toolsRunningStatus", "runtime.powerState")

#: Collector re-creations: the pause before the n-th one within a minute (first at once), capped.
_RECREATE_WINDOW = 60.0
_RECREATE_BASE_DELAY = 2.0
_RECREATE_MAX_DELAY = 20.0


@dataclass
class _Watch:
    """One VM in the waiter's view for its whole life (its power state and Tools status)."""

    vm: Any
    states: States = field(default_factory=dict)
    gone: bool = False  # the VM left the view: it was destroyed


class _NotInView(Exception):
    """The server could not resolve a task added to the view: follow it by reading it instead."""


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


def _not_found_obj(exc: BaseException) -> str:
    gone = getattr(exc, "obj", None)
    return str(getattr(gone, "_moId", "")) if gone is not None else ""


class Waiter:
    """Waits on tasks and properties of one connection; see the module docstring.

    :meth:`watch` keeps a VM in the waiter's view for its whole life: waits on its power state
    and its Tools share the view's filter instead of creating (and destroying) one each, and a
    task that acts on it (``on=vm``) learns from it when the VM is gone.
    """

    def __init__(self, conn: VSphereConnection, *, max_wait_seconds: int = 20) -> None:
        self.conn = conn
        # A long poll must end before the socket timeout, or it would look like a dead connection.
        self.max_wait_seconds = max(1, min(int(max_wait_seconds), int(conn.timeout) - 1))
        self._lock = threading.Lock()
        self._collector: Any = None
        self._generation = -1
        self._version = ""
        self._watches: dict[str, _Watch] = {}
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
        self.pace = TaskPace()

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # --- VM watches --------------------------------------------------------------------

    def watch(self, vm: Any) -> None:
        """Start watching ``vm`` (see the class docstring); a second call is a no-op."""
        with self._lock:
            if vm._moId in self._watches:
                return
            watch = self._watches[vm._moId] = _Watch(vm)
            if vm in self._task_states:  # still in the view (its removal failed): what it reported
                watch.states[vm] = self._task_states.pop(vm)
            try:
                if vm._moId in self._add_to_view([vm]):
                    watch.gone = True  # the server could not resolve it: it is no more
            except BaseException:
                self._watches.pop(vm._moId, None)
                if vm._moId in self._members:  # joined a view whose filters failed: it leaves with the next change
                    self._stale[vm._moId] = vm
                raise

    def unwatch(self, vm: Any) -> None:
        """Stop watching ``vm``. A destroyed VM leaves the view with the next ModifyListView instead
        of by a request of its own; one that lives leaves it now (its changes would wake waits)."""
        with self._lock:
            watch = self._watches.pop(vm._moId, None)
            if watch is None or vm._moId not in self._members:
                return
            self._stale[vm._moId] = vm
            if not watch.gone and self._view_usable():
                try:
                    self._modify_view([])
                except Exception as exc:  # it leaves with the next change instead
                    log.debug("ModifyListView failed: %s", faults.describe(exc))

    def watching(self, vm: Any) -> bool:
        return vm._moId in self._watches

    def watched_power_state(self, vm: Any, timeout: float) -> str | None:
        """``runtime.powerState`` of a watched ``vm`` (one WaitForUpdatesEx if its watch has not
        reported yet, which the next wait on the watch would have cost anyway); None when gone."""
        values = self.wait_for_properties(vm, ["runtime.powerState"], lambda v: True, timeout,
                                          f"the power state of {vm._moId}")
        state = values.get("runtime.powerState")
        return None if state is None else str(state)

    # --- public waits ------------------------------------------------------------------

    def wait_for_task(self, task: Any, timeout: float, what: str | None = None, *, on: Any = None,
                      destroys: bool = False, paced: str | None = None) -> Any:
        """The task's result once it succeeded; raises the task's fault if it failed.

        ``on``: the watched VM the task acts on (its watch tells when the VM is gone); ``destroys``:
        the task destroys that VM, so the VM leaving its watch is the task's success. ``paced``: a
        kind of task (any label) whose first look is paced (client/pacing.py): one read of the task
        once most of its kind had ended, and the view only if it has not; for waits where a little
        latency is cheap.
        """
        return self.wait_for_tasks([task], timeout, what, on=on, destroys=destroys, paced=paced)[0]

    def wait_for_tasks(self, tasks: Sequence[Any], timeout: float, what: str | None = None, *,
                       return_errors: bool = False, on: Any = None, destroys: bool = False,
                       paced: str | None = None) -> list[Any]:
        """Results of all ``tasks`` (in order) once every one has finished.

        A failed task raises its fault (the first in order) after all have finished, or,
        with ``return_errors``, puts the fault in its place in the list. ``on``, ``destroys``
        and ``paced`` as for :meth:`wait_for_task`.
        """
        if not tasks:
            return []
        started = time.monotonic()
        deadline = started + timeout
        watch = self._watches.get(on._moId) if on is not None else None
        label = what or ("task " + ", ".join(t._moId for t in tasks))
        try:
            states: States | None = None
            pause = min(self.pace.first_look(paced), timeout / 2) if paced is not None else 0.0
            if pause > 0:
                time.sleep(pause)
                states = self._read_ended(tasks)
                if states is None:  # among the slowest of its kind: most such end soon (client/pacing.py)
                    time.sleep(min(pause * SECOND_LOOK, max(0.0, deadline - time.monotonic()) / 2))
                    states = self._read_ended(tasks)
            if states is None:
                states = self._follow(list(tasks), watch, deadline, timeout, label)
        except Exception as exc:
            if isinstance(exc, WaitTimeout) or faults.is_not_found(exc):
                raise
            # The waiting machinery failed (a fault or a lost connection on WaitForUpdatesEx or
            # ModifyListView), not the task: the task goes on, so learn its end by reading it instead.
            log.info("waiting for %s failed (%s); reading the task until it ends", label, faults.describe(exc))
            with self._lock:
                self._version = ""  # what the collector reported meanwhile is unknown: start over
                self._task_states.clear()
                for watch_ in self._watches.values():
                    watch_.states.clear()
            return _results(tasks, poll_tasks(self.conn, tasks, max(1.0, deadline - time.monotonic()), label),
                            return_errors)
        if paced is not None:
            self.pace.record(paced, _duration(states, tasks, time.monotonic() - started))
        if watch is not None and watch.gone and not all(_task_state(states, t) in _FINISHED for t in tasks):
            if destroys:
                return [None for _ in tasks]
            raise _deleted(watch.vm)
        if destroys and watch is not None and all(_task_state(states, t) == "success" for t in tasks):
            watch.gone = True  # destroyed: it leaves the view with the next change, not by a request
        results: list[Any] = []
        for task in tasks:
            info = _task_info(states, task)
            assert info is not None
            if info.state == "error":
                if not return_errors:
                    raise info.error
                results.append(info.error)
            else:
                results.append(info.result)
        return results

    def wait_for_property(self, obj: Any, path: str, predicate: Callable[[Any], bool], timeout: float,
                          what: str | None = None) -> Any:
        """The value of ``path`` on ``obj`` once ``predicate(value)`` holds (None when unset)."""
        values = self.wait_for_properties(obj, [path], lambda v: predicate(v.get(path)), timeout,
                                          what or f"{path} of {obj._moId}")
        return values.get(path)

    def wait_for_properties(self, obj: Any, paths: Sequence[str], predicate: Callable[[dict[str, Any]], bool],
                            timeout: float, what: str | None = None) -> dict[str, Any]:
        """All ``paths`` of ``obj`` (unset ones absent) once ``predicate(values)`` holds."""

        def done(states: States) -> bool:
            return obj in states and states[obj].get("__seen__", False) and predicate(_visible(states[obj]))

        def last_seen(states: States) -> str:
            values = _visible(states.get(obj, {}))
            return ", ".join(f"{p}={_short(values.get(p))}" for p in paths)

        label = what or f"{', '.join(paths)} of {obj._moId}"
        watch = self._watches.get(getattr(obj, "_moId", ""))
        if watch is not None and set(paths) <= set(VM_WATCH_PATHS):
            states = self._wait_on_watch(watch, lambda st: watch.gone or done(st), timeout, label, last_seen)
            if watch.gone:
                raise _deleted(obj)
            return _visible(states[obj])
        states = self._wait([obj], {type(obj): list(paths)}, done, timeout, label, last_seen)
        return _visible(states[obj])

    # --- machinery ---------------------------------------------------------------------

    def _read_ended(self, tasks: Sequence[Any]) -> States | None:
        """The tasks' reported parts from one read (RetrievePropertiesEx of the Task objects), if every
        one has ended; None if one has not (or the server no longer knows it): follow them then."""
        from . import props

        try:
            found = props.retrieve(self.conn, tasks, _TASK_READ_PATHS)
        except Exception as exc:
            if faults.is_not_found(exc):
                return None
            raise
        states: States = {}
        for task in tasks:
            values = dict(found[task]) if task in found else {}
            if str(values.get("info.state")) not in _FINISHED:
                return None
            states[task] = {**values, "__seen__": True}
        return states

    def _follow(self, tasks: list[Any], watch: _Watch | None, deadline: float, timeout: float,
                label: str) -> States:
        """Follow ``tasks`` through the view until each has ended (or ``watch``'s VM is gone)."""
        states = self._task_states

        def done() -> bool:
            return all(_task_state(states, t) in _FINISHED for t in tasks) or (watch is not None and watch.gone)

        def check(now: float) -> float:
            for task in tasks:
                if states.get(task, {}).get("__gone__") and _task_state(states, task) not in _FINISHED:
                    raise _deleted(task)
            remaining = deadline - now
            if remaining <= 0:
                seen = "; ".join(f"{t._moId}: {describe_task(_task_info(states, t))}" for t in tasks)
                raise WaitTimeout(label, timeout, seen or "nothing yet")
            return remaining

        with self._lock:
            try:
                missing = self._add_to_view(tasks)
                if missing:
                    raise _NotInView(f"the server could not resolve {', '.join(sorted(missing))}")
                while not done():
                    remaining = check(time.monotonic())
                    self._poll(None, None, {}, min(remaining, self.max_wait_seconds))
                # A copy: the next change of the view drops these tasks' entries.
                return {t: dict(states[t]) for t in tasks if t in states}
            finally:
                for task in tasks:  # leaves the view with the next change, without a request of its own
                    if task._moId in self._members:
                        self._stale[task._moId] = task

    def _wait(self, objects: list[Any], paths: dict[type, list[str]], done: Callable[[States], bool],
              timeout: float, what: str, last_seen: Callable[[States], str]) -> States:
        """A wait on properties of objects that are not watched: a filter of its own for the wait."""
        from pyVmomi import vmodl

        pc = vmodl.query.PropertyCollector
        spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=o, skip=False) for o in objects],
                             propSet=[pc.PropertySpec(type=kind, pathSet=p, all=False) for kind, p in paths.items()])
        states: States = {}
        deadline = time.monotonic() + timeout
        with self._lock:
            flt = self._create_filter(spec)
            try:
                while True:
                    if done(states):
                        return states
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WaitTimeout(what, timeout, last_seen(states) or "nothing yet")
                    flt = self._poll(flt, spec, states, min(remaining, self.max_wait_seconds))
            finally:
                self._drop_filter(flt)

    def _wait_on_watch(self, watch: _Watch, done: Callable[[States], bool], timeout: float, what: str,
                       last_seen: Callable[[States], str]) -> States:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if done(watch.states):
                    return watch.states
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(what, timeout, last_seen(watch.states) or "nothing yet")
                self._poll(None, None, {}, min(remaining, self.max_wait_seconds))

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
                moid = _not_found_obj(exc) if faults.is_not_found(exc) else ""
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
                    moid = _not_found_obj(exc) if faults.is_not_found(exc) else ""
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
            moid = _not_found_obj(exc)
            if moid and moid != str(collector._moId) and (
                    moid in self._members or any(moid in objs for objs in self._filters.values())):
                # An object the view or a filter names was destroyed and this server faults instead of
                # sending a "leave": it leaves its watch (or ends the wait that named it); the collector lives.
                if self._object_gone(moid, flt):
                    raise _deleted(exc.obj) from None
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

    def _renewed(self, spec: Any) -> Any:
        """After the collector was lost: a new one (with the view), and the wait's filter anew."""
        self._ensure_collector()
        return None if spec is None else self._new_filter(spec)


def _visible(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("__")}


def _duration(states: States, tasks: Sequence[Any], waited: float) -> float:
    """How long ``tasks`` took by the server's clock (queueTime to completeTime, the longest), or
    ``waited`` when a task's times were not reported (a destroy learned from its VM leaving)."""
    durations = []
    for task in tasks:
        values = states.get(task, {})
        queued, completed = values.get("info.queueTime"), values.get("info.completeTime")
        if queued is None or completed is None:
            return waited
        durations.append(max(0.0, (completed - queued).total_seconds()))
    return max(durations)


def _task_state(states: States, task: Any) -> str | None:
    info = _task_info(states, task)
    return None if info is None else str(info.state)


def _deleted(obj: Any) -> Exception:
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
        raise _deleted(object_update.obj)
    _apply_changes(states, object_update)
