"""Waiting on tasks and properties through one PropertyCollector filter and WaitForUpdatesEx.

No property is read in a loop: a filter reports the initial values and then only changes,
each WaitForUpdatesEx long-polls for at most ``max_wait_seconds``, and an overall
timeout ends the wait with an error that says what was awaited and what was last seen.

Each :class:`Waiter` owns a dedicated PropertyCollector (CreatePropertyCollector), so
waiters in different threads never see each other's updates. A single waiter serialises
its waits; give each thread its own.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import WaitTimeout

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

#: Task filters of finished waits are kept (tasks no longer change) and dropped in bulk.
_MAX_RETIRED_FILTERS = 16
_FINISHED = ("success", "error")

States = dict[Any, dict[str, Any]]
#: How many recent waits of one kind of task the first-look pace remembers, and the longest it
#: puts a first look off (a kind that once took long must not stall the waits after it).
_PACE_WINDOW = 15
_PACE_MAX = 10.0


class TaskPace:
    """How long the waits for each kind of task took: a wait's first look comes when half of them
    had ended, so that one WaitForUpdatesEx reports the task's start and end together.

    Without it the first look always answers at once (the task appearing is a change) and a second
    waits for the end: two requests per task. A wait whose first look found the task done records
    that look's time, an upper bound; so the pace settles at (or a little above) the median.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def first_look(self, kind: str) -> float:
        """Seconds to wait before the first look at a new task of ``kind`` (0 while none was seen)."""
        with self._lock:
            seen = self._seen.get(kind)
            return min(statistics.median(seen), _PACE_MAX) if seen else 0.0

    def record(self, kind: str, seconds: float) -> None:
        with self._lock:
            self._seen.setdefault(kind, deque(maxlen=_PACE_WINDOW)).append(seconds)


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
        self.progress = None
        self.descriptionId = values.get("info.descriptionId")
        self.entityName = values.get("info.entityName")


def _task_info(states: States, task: Any) -> _TaskView | None:
    values = states.get(task)
    if not values or not values.get("__seen__"):
        return None
    view = _TaskView(values)
    view.state = view.state or "queued or running"  # a watched task not finished yet
    return view


def describe_task(info: Any) -> str:
    """``state=running progress=40% (VirtualMachine.CloneVM_Task on linux-template)``."""
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
VM_WATCH_PATHS = ("guest.toolsRunningStatus",)


@dataclass
class _Watch:
    """One VM's long-lived filter: the VM's own properties and, through its recentTask, its tasks."""

    vm: Any
    spec: Any
    flt: Any
    states: States = field(default_factory=dict)
    gone: bool = False  # the VM left the filter: it was destroyed


def _watch_spec(vm: Any) -> Any:
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    to_tasks = pc.TraversalSpec(name="vmRecentTasks", type=vim.VirtualMachine, path="recentTask", skip=False)
    return pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vm, skip=False, selectSet=[to_tasks])],
                         propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=list(VM_WATCH_PATHS), all=False),
                                  pc.PropertySpec(type=vim.Task, pathSet=list(TASK_PATHS), all=False)])


class Waiter:
    """Waits on tasks and properties of one connection; see the module docstring.

    :meth:`watch` keeps one filter on a VM for its whole life: waits on its power state, its
    Tools and the tasks that act on it (``on=vm``) then share that filter instead of creating
    (and destroying) one each, which saves two or three requests per wait.
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

    # --- public waits ------------------------------------------------------------------

    def wait_for_task(self, task: Any, timeout: float, what: str | None = None, *, on: Any = None,
                      destroys: bool = False, paced: str | None = None) -> Any:
        """The task's result once it succeeded; raises the task's fault if it failed.

        ``on``: the watched VM the task acts on (its watch reports the task); ``destroys``: the
        task destroys that VM, so the VM leaving its watch is the task's success (its last
        state is no longer reachable through the VM). ``paced``: a kind of task (any label) whose
        first look waits as long as half of this kind's earlier waits took (see :class:`TaskPace`):
        a request saved for about half the tasks, for waits where a little latency is cheap.
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
        if watch is not None:
            states = self._wait_on_watch(watch, done, timeout, label, last_seen)
        else:
            states = self._wait(list(tasks), {vim.Task: list(TASK_PATHS)}, done, timeout, label, last_seen,
                                retire=True)
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
        if self._collector is None or self._generation != self.conn.generation:
            root = self.conn.content.propertyCollector
            assert root is not None
            generation = self.conn.generation
            self._collector = self.conn.call(root.CreatePropertyCollector, what="CreatePropertyCollector")
            self._generation = generation
            self._version = ""
            self._retired.clear()
            # Watches went with the old collector: renew them (their initial values come again).
            for watch in self._watches.values():
                watch.states.clear()
                watch.flt = self.conn.call(self._collector.CreateFilter, watch.spec, False, what="CreateFilter")
        return self._collector

    def _create_filter(self, spec: Any) -> Any:
        collector = self._ensure_collector()
        return self.conn.call(collector.CreateFilter, spec, False, what="CreateFilter")

    def _drop_filter(self, flt: Any, retire: bool) -> None:
        if self._collector is None or self._generation != self.conn.generation:
            return  # went with the old session
        if retire:
            self._retired.append(flt)
            if len(self._retired) <= _MAX_RETIRED_FILTERS:
                return
            flt = self._retired.pop(0)
        try:
            self.conn.call(flt.DestroyPropertyFilter, what="DestroyPropertyFilter")
        except Exception as exc:  # already gone: nothing to free
            log.debug("DestroyPropertyFilter failed: %s", faults.describe(exc))

    def _poll(self, flt: Any, spec: Any, states: States, seconds: float) -> Any:
        """One WaitForUpdatesEx; applies changes of ``flt`` to ``states`` (and of every watch to its
        own); returns the (maybe new) filter. ``flt`` None: a wait on watches alone."""
        from pyVmomi import vmodl

        pc = vmodl.query.PropertyCollector
        collector = self._collector
        generation = self.conn.generation
        options = pc.WaitOptions(maxWaitSeconds=max(1, math.ceil(seconds)))
        try:
            update = self.conn.call(collector.WaitForUpdatesEx, self._version, options, what="WaitForUpdatesEx")
        except (vmodl.query.InvalidCollectorVersion, vmodl.fault.ManagedObjectNotFound) as exc:
            # The session was renewed (or the collector dropped): start over with a fresh collector.
            log.info("property collector lost (%s); creating a new one", faults.describe(exc))
            self._collector = None
            return self._renewed(spec)
        if self.conn.generation != generation:
            self._collector = None
            return self._renewed(spec)
        if update is None:
            return flt
        self._version = update.version
        watches = {w.flt: w for w in self._watches.values()}
        for filter_update in update.filterSet or ():
            if flt is not None and filter_update.filter == flt:
                for object_update in filter_update.objectSet or ():
                    _apply(states, object_update)
            elif (watch := watches.get(filter_update.filter)) is not None:
                for object_update in filter_update.objectSet or ():
                    _apply_watched(watch, object_update)
            # else: a retired filter's late news
        return flt

    def _renewed(self, spec: Any) -> Any:
        """After the collector was lost: a new one (with the watches), and the wait's filter anew."""
        if spec is None:
            self._ensure_collector()
            return None
        return self._create_filter(spec)


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
    """A watch's update: the VM leaving means it was destroyed; a task leaving (out of recentTask)
    keeps its last known state."""
    if object_update.kind == "leave":
        if object_update.obj._moId == watch.vm._moId:
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


def read_task_infos(conn: VSphereConnection, tasks: Sequence[Any]) -> dict[Any, Any]:
    """Each task's ``info`` from one RetrievePropertiesEx; None for a task the vCenter no longer knows."""
    from . import props

    if not tasks:
        return {}
    try:
        found = props.retrieve(conn, tasks, ["info"])
    except Exception as exc:
        if not faults.is_not_found(exc):
            raise
        if len(tasks) == 1:
            return {tasks[0]: None}
        infos: dict[Any, Any] = {}
        for task in tasks:  # one of them is gone: read them one by one to tell which
            infos.update(read_task_infos(conn, [task]))
        return infos
    return {t: found[t].get("info") if t in found else None for t in tasks}
