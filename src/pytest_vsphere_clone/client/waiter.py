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
import threading
import time
from collections.abc import Callable, Sequence
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


def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class Waiter:
    """Waits on tasks and properties of one connection; see the module docstring."""

    def __init__(self, conn: VSphereConnection, *, max_wait_seconds: int = 20) -> None:
        self.conn = conn
        # A long poll must end before the socket timeout, or it would look like a dead connection.
        self.max_wait_seconds = max(1, min(int(max_wait_seconds), int(conn.timeout) - 1))
        self._lock = threading.Lock()
        self._collector: Any = None
        self._generation = -1
        self._version = ""
        self._retired: list[Any] = []

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Destroy the collector (and with it every filter it still has)."""
        with self._lock:
            collector, self._collector = self._collector, None
            self._retired.clear()
            if collector is not None and self.conn.connected and self._generation == self.conn.generation:
                try:
                    collector.DestroyPropertyCollector()
                except Exception as exc:  # gone with its session already: nothing left to free
                    log.debug("DestroyPropertyCollector failed: %s", faults.describe(exc))

    # --- public waits ------------------------------------------------------------------

    def wait_for_task(self, task: Any, timeout: float, what: str | None = None) -> Any:
        """The task's result once it succeeded; raises the task's fault if it failed."""
        return self.wait_for_tasks([task], timeout, what)[0]

    def wait_for_tasks(self, tasks: Sequence[Any], timeout: float, what: str | None = None, *,
                       return_errors: bool = False) -> list[Any]:
        """Results of all ``tasks`` (in order) once every one has finished.

        A failed task raises its fault (the first in order) after all have finished, or,
        with ``return_errors``, puts the fault in its place in the list.
        """
        if not tasks:
            return []
        from pyVmomi import vim

        def done(states: States) -> bool:
            return all(_task_state(states, t) in _FINISHED for t in tasks)

        def last_seen(states: States) -> str:
            return "; ".join(f"{t._moId}: {describe_task(states.get(t, {}).get('info'))}" for t in tasks)

        label = what or ("task " + ", ".join(t._moId for t in tasks))
        states = self._wait(list(tasks), {vim.Task: ["info"]}, done, timeout, label, last_seen, retire=True)
        results: list[Any] = []
        for task in tasks:
            info = states[task]["info"]
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

        states = self._wait([obj], {type(obj): list(paths)}, done, timeout, what or f"{', '.join(paths)} of "
                            f"{obj._moId}", last_seen, retire=False)
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

    def _ensure_collector(self) -> Any:
        if self._collector is None or self._generation != self.conn.generation:
            root = self.conn.content.propertyCollector
            assert root is not None
            generation = self.conn.generation
            self._collector = self.conn.call(root.CreatePropertyCollector, what="CreatePropertyCollector")
            self._generation = generation
            self._version = ""
            self._retired.clear()
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
        """One WaitForUpdatesEx; applies changes of ``flt`` to ``states``; returns the (maybe new) filter."""
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
            return self._create_filter(spec)
        if self.conn.generation != generation:
            self._collector = None
            return self._create_filter(spec)
        if update is None:
            return flt
        self._version = update.version
        for filter_update in update.filterSet or ():
            if filter_update.filter != flt:
                continue  # a retired filter's late news
            for object_update in filter_update.objectSet or ():
                _apply(states, object_update)
        return flt


def _visible(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("__")}


def _task_state(states: States, task: Any) -> str | None:
    info = states.get(task, {}).get("info")
    return None if info is None else str(info.state)


def _apply(states: States, object_update: Any) -> None:
    from pyVmomi import vmodl

    obj = object_update.obj
    if object_update.kind == "leave":
        raise vmodl.fault.ManagedObjectNotFound(msg=f"{obj._moId} was deleted while being waited on", obj=obj)
    values = states.setdefault(obj, {})
    values["__seen__"] = True
    for change in object_update.changeSet or ():
        if change.op in ("remove", "indirectRemove") or change.val is None:
            values.pop(change.name, None)
        else:
            values[change.name] = change.val
