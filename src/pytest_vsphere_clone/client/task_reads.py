"""Reading tasks (not awaiting them): their state as a TaskInfo-shaped view, their description,
and polling for when no property collector wait works (client/waiter.py's fallback, the sweep)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import WaitTimeout

if TYPE_CHECKING:
    from .session import VSphereConnection

#: The states of a task that has ended.
FINISHED = ("success", "error")


class TaskView:
    """The watched or read parts of a TaskInfo (path -> value), shaped like one for :func:`describe_task`."""

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
    return info is None or str(info.state) in FINISHED


def poll_tasks(conn: VSphereConnection, tasks: Sequence[Any], timeout: float, what: str | None = None, *,
               hint: str = "", interval: float = 0.1, max_interval: float = 1.0) -> dict[Any, Any]:
    """Every task's ``info`` once none is queued or running, read (not awaited) by RetrievePropertiesEx.

    The last resort when a :class:`Waiter` cannot work (CreatePropertyCollector, CreateListView,
    CreateFilter, ModifyListView or WaitForUpdatesEx refused): one read of all the tasks per round,
    with pauses growing from ``interval`` to ``max_interval``. A task the vCenter no longer knows
    maps to None (it had finished). Raises :class:`TasksStillRunning` if any is still queued or
    running after ``timeout``:
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
TASK_READ_PATHS = ("info.state", "info.progress", "info.error", "info.result", "info.descriptionId",
                   "info.entityName", "info.name", "info.queueTime", "info.completeTime")


def read_task_infos(conn: VSphereConnection, tasks: Sequence[Any]) -> dict[Any, Any]:
    """Each task's info (its state, progress, error, result and names, shaped like a TaskInfo) from
    one RetrievePropertiesEx; None for a task the vCenter no longer knows."""
    from . import props

    if not tasks:
        return {}
    try:
        found = props.retrieve(conn, tasks, TASK_READ_PATHS)
    except Exception as exc:
        if not faults.is_not_found(exc):
            raise
        if len(tasks) == 1:
            return {tasks[0]: None}
        infos: dict[Any, Any] = {}
        for task in tasks:  # one of them is gone: read them one by one to tell which
            infos.update(read_task_infos(conn, [task]))
        return infos
    return {t: TaskView(dict(found[t])) if t in found else None for t in tasks}


def task_results(tasks: Sequence[Any], infos: dict[Any, Any], return_errors: bool) -> list[Any]:
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
