"""Waiting on tasks and properties through PropertyCollector filters and WaitForUpdatesEx.

No property is read in a loop: a filter reports the initial values and then only changes,
each WaitForUpdatesEx long-polls for at most ``max_wait_seconds``, and an overall
timeout ends the wait with an error that says what was awaited and what was last seen.

Tasks are followed through the Task objects themselves (a filter on ``info``), never through
an entity's ``recentTask``: the API reference for ManagedEntity.recentTask says "In releases
after vSphere API 5.0, vSphere Servers might not generate property collector update
notifications for this property."

Each :class:`Waiter` owns a dedicated PropertyCollector (CreatePropertyCollector), so
waiters in different threads never see each other's updates. A single waiter serialises
its waits; give each thread its own. A watched object that is destroyed leaves its watch
(an ObjectUpdate of kind ``leave``, or a ManagedObjectNotFound fault naming it, which some
servers send instead); a collector that is really lost is replaced at a bounded rate, and
the old one destroyed.
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
from .pacing import TaskPace

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

#: Task filters of finished waits are kept (tasks no longer change) and dropped in bulk.
_MAX_RETIRED_FILTERS = 16
_FINISHED = ("success", "error")

States = dict[Any, dict[str, Any]]
def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: What a task wait watches: not the whole ``info``, whose progress changes would wake the wait
#: (and cost a WaitForUpdatesEx) many times per task, nor its state, but its completion time: set
#: once, with the final result or error, so a task costs one update when it ends and none for
#: queued -> running. The identity fields never change after the first report.
TASK_PATHS = ("info.completeTime", "info.error", "info.result", "info.descriptionId", "info.entityName")


class _TaskView:
    """The watched parts of a TaskInfo, shaped like one for :func:`describe_task`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.state = values.get("info.state")
        if self.state is None and "info.completeTime" in values:  # a watched task: only its end is reported
            self.state = "error" if values.get("info.error") is not None else "success"
        self.error: Any = values.get("info.error")
        self.result = values.get("info.result")
        self.progress = values.get("info.progress")
        self.descriptionId = values.get("info.descriptionId")
        self.entityName = values.get("info.entityName")
        self.name = values.get("info.name")


def _task_info(states: States, task: Any) -> _TaskView | None:
    values = states.get(task)
    if not values or not values.get("__seen__"):
        return None
    view = _TaskView(values)
    view.state = view.state or "queued or running"  # a watched task not finished yet
    return view


def describe_task(info: Any) -> str:
    """``state=running progress=40% (VirtualMachine.clone on linux-template)``."""
    if info is None:
        return "no task info yet"
    parts = [f"state={info.state}"]
    if info.progress is not None:
        parts.append(f"progress={info.progress}%")
    if info.error is not None:
        parts.append(f"error={faults.describe(info.error)}")
    label = " on ".join(str(x) for x in (info.descriptionId, info.entityName) if x)
    return " ".join(parts) + (f" ({label})" if label else "")


#: What a VM watch reports of the VM itself.
VM_WATCH_PATHS = ("guest.toolsRunningStatus", "runtime.powerState")

#: Collector re-creations: the pause before the n-th one within a minute (first at once), capped.
_RECREATE_WINDOW = 60.0
_RECREATE_BASE_DELAY = 2.0
_RECREATE_MAX_DELAY = 20.0


@dataclass
class _Watch:
    """One VM's long-lived filter on the VM's own properties (its tasks have filters of their own)."""

    vm: Any
    spec: Any
    flt: Any
    states: States = field(default_factory=dict)
    gone: bool = False  # the VM left the filter: it was destroyed


def _watch_spec(vm: Any) -> Any:
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    return pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vm, skip=False)],
                         propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=list(VM_WATCH_PATHS), all=False)])


def _spec_objects(spec: Any) -> frozenset[str]:
    return frozenset(str(o.obj._moId) for o in spec.objectSet or ())


class Waiter:
    """Waits on tasks and properties of one connection; see the module docstring.

    :meth:`watch` keeps one filter on a VM for its whole life: waits on its power state and its
    Tools share that filter instead of creating (and destroying) one each, and a task that acts
    on it (``on=vm``) learns from it when the VM is gone.
    """

    def __init__(self, conn: VSphereConnection, *, max_wait_seconds: int = 20) -> None:
        self.conn = conn
        # A long poll must end before the socket timeout, or it would look like a dead connection.
        self.max_wait_seconds = max(1, min(int(max_wait_seconds), int(conn.timeout) - 1))
        self._lock = threading.Lock()
        self._collector: Any = None
        self._generation = -1
        self._version = ""
        self._retired: list[Any] = []
        self._watches: dict[str, _Watch] = {}
        #: Every live filter of the current collector: filter id -> the objects it names.
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
        """Destroy the collector (and with it every filter it still has)."""
        with self._lock:
            collector, self._collector = self._collector, None
            self._retired.clear()
            self._watches.clear()
            self._filters.clear()
            if collector is not None and self.conn.connected and self._generation == self.conn.generation:
                try:
                    collector.DestroyPropertyCollector()
                except Exception as exc:  # gone with its session already: nothing left to free
                    log.debug("DestroyPropertyCollector failed: %s", faults.describe(exc))

    # --- VM watches --------------------------------------------------------------------

    def watch(self, vm: Any) -> None:
        """Start watching ``vm`` (see the class docstring); a second call is a no-op."""
        with self._lock:
            if vm._moId not in self._watches:
                spec = _watch_spec(vm)
                self._watches[vm._moId] = _Watch(vm, spec, self._create_filter(spec))

    def unwatch(self, vm: Any) -> None:
        """Stop watching ``vm``. A destroyed VM's filter reports nothing more: it is dropped with
        the retired ones, in bulk, instead of by a request of its own."""
        with self._lock:
            watch = self._watches.pop(vm._moId, None)
            if watch is not None:
                self._drop_filter(watch.flt, retire=watch.gone)

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
        kind of task (any label) whose first look is paced (client/pacing.py), for waits where a
        little latency is cheap.
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
        from pyVmomi import vim

        started = time.monotonic()
        if paced is not None:
            time.sleep(min(self.pace.first_look(paced), timeout / 2))
            timeout -= time.monotonic() - started

        watch = self._watches.get(on._moId) if on is not None else None

        def done(states: States) -> bool:
            return all(_task_state(states, t) in _FINISHED for t in tasks) or (watch is not None and watch.gone)

        def last_seen(states: States) -> str:
            return "; ".join(f"{t._moId}: {describe_task(_task_info(states, t))}" for t in tasks)

        label = what or ("task " + ", ".join(t._moId for t in tasks))
        deadline = started + timeout
        try:
            # The task's own filter, whether or not its VM is watched: see the module docstring.
            states = self._wait(list(tasks), {vim.Task: list(TASK_PATHS)}, done, timeout, label, last_seen,
                                retire=True)
        except Exception as exc:
            if isinstance(exc, WaitTimeout) or faults.is_not_found(exc):
                raise
            # The waiting machinery failed (a fault or a lost connection on WaitForUpdatesEx or
            # CreateFilter), not the task: the task goes on, so learn its end by reading it instead.
            log.info("waiting for %s failed (%s); reading the task until it ends", label, faults.describe(exc))
            with self._lock:
                self._version = ""  # what the collector reported meanwhile is unknown: start over
                for watch in self._watches.values():
                    watch.states.clear()
            return _results(tasks, poll_tasks(self.conn, tasks, max(1.0, deadline - time.monotonic()), label),
                            return_errors)
        if paced is not None:
            self.pace.record(paced, time.monotonic() - started)
        if watch is not None and watch.gone and not all(_task_state(states, t) in _FINISHED for t in tasks):
            if destroys:
                return [None for _ in tasks]
            raise _deleted(watch.vm)
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
        states = self._wait([obj], {type(obj): list(paths)}, done, timeout, label, last_seen, retire=False)
        return _visible(states[obj])

    # --- machinery ---------------------------------------------------------------------

    def _wait(self, objects: list[Any], paths: dict[type, list[str]], done: Callable[[States], bool],
              timeout: float, what: str, last_seen: Callable[[States], str], retire: bool) -> States:
        from pyVmomi import vmodl

        pc = vmodl.query.PropertyCollector
        spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=o, skip=False) for o in objects],
                             propSet=[pc.PropertySpec(type=kind, pathSet=p, all=False) for kind, p in paths.items()])
        states: States = {}
        deadline = time.monotonic() + timeout
        with self._lock:
            flt = self._create_filter(spec)
            finished = False
            try:
                while True:
                    if done(states):
                        finished = True
                        return states
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WaitTimeout(what, timeout, last_seen(states) or "nothing yet")
                    flt = self._poll(flt, spec, states, min(remaining, self.max_wait_seconds))
            finally:
                self._drop_filter(flt, retire and finished)

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

    def _ensure_collector(self) -> Any:
        if self._lost or self._collector is None or self._generation != self.conn.generation:
            self._replace_collector()
        return self._collector

    def _replace_collector(self) -> None:
        """A new collector with every watch renewed; the old one destroyed if its session lives.

        Re-creation is rate-limited (a pause doubling from 2 s to 20 s for each one within a minute):
        a server that keeps faulting must not get a storm of collectors from every client.
        """
        old, old_generation = self._collector, self._generation
        if self._created_any:
            now = time.monotonic()
            while self._recreated and now - self._recreated[0] > _RECREATE_WINDOW:
                self._recreated.popleft()
            if self._recreated:
                pause = min(_RECREATE_BASE_DELAY * 2 ** (len(self._recreated) - 1), _RECREATE_MAX_DELAY)
                log.info("property collector lost again; creating a new one in %.0f s", pause)
                time.sleep(pause)
            self._recreated.append(time.monotonic())
        self._collector, self._lost = None, False
        self._filters.clear()
        self._retired.clear()
        if old is not None and old_generation == self.conn.generation:
            try:  # its filters go with it
                self.conn.call(old.DestroyPropertyCollector, what="DestroyPropertyCollector")
            except Exception as exc:  # already gone: nothing to free
                log.debug("DestroyPropertyCollector failed: %s", faults.describe(exc))
        root = self.conn.content.propertyCollector
        assert root is not None
        generation = self.conn.generation
        self._collector = self.conn.call(root.CreatePropertyCollector, what="CreatePropertyCollector")
        self._generation = generation
        self._created_any = True
        self._version = ""
        # Watches went with the old collector: renew them (their initial values come again). A VM
        # destroyed meanwhile cannot be watched again: it has left its watch.
        for watch in self._watches.values():
            watch.states.clear()
            if watch.gone:
                continue
            try:
                watch.flt = self._new_filter(watch.spec)
            except Exception as exc:
                if not faults.is_not_found(exc):
                    raise
                watch.gone = True

    def _create_filter(self, spec: Any) -> Any:
        self._ensure_collector()
        return self._new_filter(spec)

    def _new_filter(self, spec: Any) -> Any:
        flt = self.conn.call(self._collector.CreateFilter, spec, False, what="CreateFilter")
        self._filters[str(flt._moId)] = _spec_objects(spec)
        return flt

    def _drop_filter(self, flt: Any, retire: bool) -> None:
        if flt is None or str(flt._moId) not in self._filters:
            return  # went with its collector, or was dropped when its object was found gone
        if self._collector is None or self._generation != self.conn.generation:
            return  # went with the old session
        if retire:
            self._retired.append(flt)
            if len(self._retired) <= _MAX_RETIRED_FILTERS:
                return
            flt = self._retired.pop(0)
        self._destroy_filter(flt)

    def _destroy_filter(self, flt: Any) -> None:
        self._filters.pop(str(flt._moId), None)
        try:
            self.conn.call(flt.DestroyPropertyFilter, what="DestroyPropertyFilter")
        except Exception as exc:  # already gone: nothing to free
            log.debug("DestroyPropertyFilter failed: %s", faults.describe(exc))

    def _object_gone(self, moid: str, current: Any) -> bool:
        """An object some filters name no longer exists: each such filter is destroyed (a watch's VM
        has left its watch). True if ``current`` (the running wait's filter) was one of them."""
        hit = False
        for watch in self._watches.values():
            if watch.vm._moId == moid:
                watch.gone = True
        for flt_id, objects in list(self._filters.items()):
            if moid not in objects:
                continue
            flt = next((f for f in [*self._retired, current, *(w.flt for w in self._watches.values())]
                        if f is not None and str(f._moId) == flt_id), None)
            if flt is None:
                self._filters.pop(flt_id, None)
                continue
            if flt in self._retired:
                self._retired.remove(flt)
            hit = hit or flt is current
            self._destroy_filter(flt)
        return hit

    def _poll(self, flt: Any, spec: Any, states: States, seconds: float) -> Any:
        """One WaitForUpdatesEx; applies changes of ``flt`` to ``states`` (and of every watch to its
        own); returns the (maybe new) filter. ``flt`` None: a wait on watches alone."""
        from pyVmomi import vmodl

        pc = vmodl.query.PropertyCollector
        if self._lost or self._collector is None or self._generation != self.conn.generation:
            # The session was renewed (or the collector lost): a fresh collector, watches and filter.
            states.clear()
            flt = self._renewed(spec)
        collector = self._collector
        generation = self.conn.generation
        options = pc.WaitOptions(maxWaitSeconds=max(1, math.ceil(seconds)))
        try:
            update = self.conn.call(collector.WaitForUpdatesEx, self._version, options, what="WaitForUpdatesEx")
        except vmodl.fault.ManagedObjectNotFound as exc:
            gone = getattr(exc, "obj", None)
            moid = str(getattr(gone, "_moId", "")) if gone is not None else ""
            if moid and moid != str(collector._moId) and any(moid in objs for objs in self._filters.values()):
                # An object a filter names was destroyed and this server faults instead of sending
                # a "leave": it leaves its watch (or ends the wait that named it); the collector lives.
                if self._object_gone(moid, flt):
                    raise _deleted(gone) from None
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
            for watch in self._watches.values():
                watch.states.clear()
            return flt
        if self.conn.generation != generation:
            states.clear()
            return self._renewed(spec)
        if update is None:
            return flt
        self._version = update.version
        watches = {w.flt: w for w in self._watches.values()}
        for filter_update in update.filterSet or ():
            if flt is not None and filter_update.filter == flt:
                for object_update in filter_update.objectSet or ():
                    _apply(states, object_update)
            elif (watched := watches.get(filter_update.filter)) is not None:
                for object_update in filter_update.objectSet or ():
                    _apply_watched(watched, object_update)
            # else: a retired filter's late news
        return flt

    def _renewed(self, spec: Any) -> Any:
        """After the collector was lost: a new one (with the watches), and the wait's filter anew."""
        self._ensure_collector()
        return None if spec is None else self._new_filter(spec)


def _visible(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("__")}


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


def _apply_watched(watch: _Watch, object_update: Any) -> None:
    """A watch's update: the VM leaving its filter means it was destroyed."""
    if object_update.kind == "leave":
        watch.gone = True
        return
    _apply_changes(watch.states, object_update)


def _apply(states: States, object_update: Any) -> None:
    if object_update.kind == "leave":
        raise _deleted(object_update.obj)
    _apply_changes(states, object_update)


# --- polling, for when no wait works ------------------------------------------------------------


class TasksStillRunning(WaitTimeout):
    """:func:`poll_tasks` ran out of time; ``infos`` maps every task to its last seen ``info``."""

    def __init__(self, what: str, timeout: float, infos: dict[Any, Any], hint: str = "") -> None:
        self.infos = infos
        super().__init__(what, timeout, describe_task_infos(infos), hint)


def describe_task_infos(infos: dict[Any, Any]) -> str:
    """``task-7: state=running progress=40% (...); task-9: gone`` (None: a task the vCenter forgot)."""
    return "; ".join(f"{task._moId}: {'gone (finished)' if info is None else describe_task(info)}"
                     for task, info in infos.items()) or "nothing yet"


def task_method(info: Any) -> str:
    """The WSDL name of the method that made a task (``CloneVM_Task``), from TaskInfo.name."""
    name = getattr(info, "name", None)
    method = getattr(name, "info", None)  # pyVmomi gives a ManagedMethod
    return str(getattr(method, "wsdlName", "") or (name if isinstance(name, str) else ""))


def task_finished(info: Any) -> bool:
    """True for the ``info`` of a finished task, and for None: a vCenter forgets only finished tasks."""
    return info is None or str(info.state) in _FINISHED


def poll_tasks(conn: VSphereConnection, tasks: Sequence[Any], timeout: float, what: str | None = None, *,
               hint: str = "", interval: float = 0.1, max_interval: float = 1.0) -> dict[Any, Any]:
    """Every task's ``info`` once none is queued or running, read (not awaited) by RetrievePropertiesEx.

    The last resort when a :class:`Waiter` cannot work (CreatePropertyCollector, CreateFilter or
    WaitForUpdatesEx refused): one read of all the tasks per round, with pauses growing from
    ``interval`` to ``max_interval``. A task the vCenter no longer knows maps to None (it had
    finished). Raises :class:`TasksStillRunning` if any is still queued or running after ``timeout``:
    it says what was awaited and each task's last seen state.
    """
    label = what or ("task " + ", ".join(t._moId for t in tasks))
    infos: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout
    pause = interval
    pending = list(tasks)
    while True:
        infos.update(read_task_infos(conn, pending))
        pending = [t for t in pending if not task_finished(infos.get(t))]
        if not pending:
            return {t: infos.get(t) for t in tasks}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TasksStillRunning(label, timeout, {t: infos.get(t) for t in tasks}, hint)
        time.sleep(min(pause, remaining))
        pause = min(pause * 1.5, max_interval)


#: What a read of tasks asks for: not the whole ``info``, whose ``entity`` (and other references)
#: a server may fill with objects a client's type tables refuse, which would hide the task's state.
_TASK_READ_PATHS = ("info.state", "info.progress", "info.error", "info.result", "info.descriptionId",
                    "info.entityName", "info.name")


def read_task_infos(conn: VSphereConnection, tasks: Sequence[Any]) -> dict[Any, Any]:
    """Each task's info (its state, progress, error, result and names, shaped like a TaskInfo) from
    one RetrievePropertiesEx; None for a task the vCenter no longer knows."""
    from . import props

    if not tasks:
        return {}
    try:
        found = props.retrieve(conn, tasks, _TASK_READ_PATHS)
    except Exception as exc:
        if not faults.is_not_found(exc):
            raise
        if len(tasks) == 1:
            return {tasks[0]: None}
        infos: dict[Any, Any] = {}
        for task in tasks:  # one of them is gone: read them one by one to tell which
            infos.update(read_task_infos(conn, [task]))
        return infos
    return {t: _TaskView(dict(found[t])) if t in found else None for t in tasks}


def _results(tasks: Sequence[Any], infos: dict[Any, Any], return_errors: bool) -> list[Any]:
    """Each task's result from :func:`poll_tasks`' infos; a failed task's fault raised or put in place."""
    results: list[Any] = []
    for task in tasks:
        info = infos.get(task)
        if info is None:  # forgotten by the vCenter: it had finished, how is no longer known
            raise WaitTimeout(f"task {task._moId}", 0, "the vCenter no longer knows the task",
                              "the task ended while it could not be watched; check the vCenter's task list")
        if str(info.state) == "error":
            if not return_errors:
                raise info.error
            results.append(info.error)
        else:
            results.append(info.result)
    return results
