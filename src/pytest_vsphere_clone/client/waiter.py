"""Waiting on tasks and properties through PropertyCollector filters and WaitForUpdatesEx.

No property is read in a loop: a filter reports the initial values and then only changes,
each WaitForUpdatesEx long-polls for at most ``max_wait_seconds``, and an overall
timeout ends the wait with an error that says what was awaited and what was last seen.

Tasks are followed through the Task objects themselves, never through an entity's
``recentTask``: the API reference for ManagedEntity.recentTask says "In releases after vSphere
API 5.0, vSphere Servers might not generate property collector update notifications for this
property."

Each :class:`Waiter` owns a dedicated PropertyCollector, so waiters in different threads never
see each other's updates. A single waiter serialises its waits; give each thread its own. The
tasks it follows and the VMs it watches are one ListView under two filters
(client/collector_view.py); one WaitForUpdatesEx and its faults are client/collector_updates.py's.
A watched object that is destroyed leaves its watch (an ObjectUpdate of kind ``leave``, or a
ManagedObjectNotFound fault naming it, which some servers send instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import faults
from .collector_updates import CollectorUpdates, deleted
from .collector_view import VM_WATCH_PATHS, States, Watch
from .errors import WaitTimeout
from .pacing import SECOND_LOOK, TaskPace
from .task_reads import FINISHED, TASK_READ_PATHS, TaskView, describe_task, poll_tasks, task_results

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)


def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _task_info(states: States, task: Any) -> TaskView | None:
    values = states.get(task)
    if not values or not values.get("__seen__"):
        return None
    view = TaskView(values)
    view.state = view.state or "queued or running"  # a watched task not finished yet
    return view


class _NotInView(Exception):
    """The server could not resolve a task added to the view: follow it by reading it instead."""


class Waiter(CollectorUpdates):
    """Waits on tasks and properties of one connection; see the module docstring.

    :meth:`watch` keeps a VM in the waiter's view for its whole life: waits on its power state
    and its Tools share the view's filter instead of creating (and destroying) one each, and a
    task that acts on it (``on=vm``) learns from it when the VM is gone. The collector and its
    view are :class:`~.collector_view.CollectorView`'s, one WaitForUpdatesEx
    :class:`~.collector_updates.CollectorUpdates`'.
    """

    def __init__(self, conn: VSphereConnection, *, max_wait_seconds: int = 20) -> None:
        super().__init__(conn)
        # A long poll must end before the socket timeout, or it would look like a dead connection.
        self.max_wait_seconds = max(1, min(int(max_wait_seconds), int(conn.timeout) - 1))
        self.pace = TaskPace()

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- VM watches --------------------------------------------------------------------

    def watch(self, vm: Any) -> None:
        """Start watching ``vm`` (see the class docstring); a second call is a no-op."""
        with self._lock:
            if vm._moId in self._watches:
                return
            watch = self._watches[vm._moId] = Watch(vm)
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
            return task_results(tasks, poll_tasks(self.conn, tasks, max(1.0, deadline - time.monotonic()), label),
                            return_errors)
        if paced is not None:
            self.pace.record(paced, _duration(states, tasks, time.monotonic() - started))
        if watch is not None and watch.gone and not all(_task_state(states, t) in FINISHED for t in tasks):
            if destroys:
                return [None for _ in tasks]
            raise deleted(watch.vm)
        if destroys and watch is not None and all(_task_state(states, t) == "success" for t in tasks):
            watch.gone = True  # destroyed: it leaves the view with the next change, not by a request
        return task_results(tasks, {t: _task_info(states, t) for t in tasks}, return_errors)

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
                raise deleted(obj)
            return _visible(states[obj])
        states = self._wait([obj], {type(obj): list(paths)}, done, timeout, label, last_seen)
        return _visible(states[obj])

    # --- machinery ---------------------------------------------------------------------

    def _read_ended(self, tasks: Sequence[Any]) -> States | None:
        """The tasks' reported parts from one read (RetrievePropertiesEx of the Task objects), if every
        one has ended; None if one has not (or the server no longer knows it): follow them then."""
        from . import props

        try:
            found = props.retrieve(self.conn, tasks, TASK_READ_PATHS)
        except Exception as exc:
            if faults.is_not_found(exc):
                return None
            raise
        states: States = {}
        for task in tasks:
            values = dict(found[task]) if task in found else {}
            if str(values.get("info.state")) not in FINISHED:
                return None
            states[task] = {**values, "__seen__": True}
        return states

    def _follow(self, tasks: list[Any], watch: Watch | None, deadline: float, timeout: float,
                label: str) -> States:
        """Follow ``tasks`` through the view until each has ended (or ``watch``'s VM is gone)."""
        states = self._task_states

        def done() -> bool:
            return all(_task_state(states, t) in FINISHED for t in tasks) or (watch is not None and watch.gone)

        def check(now: float) -> float:
            for task in tasks:
                if states.get(task, {}).get("__gone__") and _task_state(states, task) not in FINISHED:
                    raise deleted(task)
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

    def _wait_on_watch(self, watch: Watch, done: Callable[[States], bool], timeout: float, what: str,
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

