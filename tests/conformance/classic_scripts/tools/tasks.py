"""Waiting for tasks as classic scripts do: poll ``task.info``, or wait for property updates."""

from __future__ import annotations

import sys
import time
from typing import Any

from pyVmomi import vim, vmodl


class TaskFailed(RuntimeError):
    """A task ended in state error; the message is the fault's."""


def poll_task(task: vim.Task, what: str, timeout: float = 300.0, interval: float = 0.5) -> Any:
    """Read ``task.info`` until the task leaves queued/running; its result, or TaskFailed."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        info = task.info
        state = info.state
        if state == vim.TaskInfo.State.success:
            print(f"  {what}: task {task._moId} success")
            return info.result
        if state == vim.TaskInfo.State.error:
            error = info.error
            raise TaskFailed(f"{what}: {type(error).__name__}: {error.msg}")
        note = f"{state} {info.progress if info.progress is not None else ''}".strip()
        if note != last:
            print(f"  {what}: task {task._moId} {note}")
            last = note
        if time.monotonic() > deadline:
            raise TaskFailed(f"{what}: task {task._moId} still {state} after {timeout:.0f} s")
        time.sleep(interval)


def wait_for_tasks(si: vim.ServiceInstance, tasks: list[vim.Task], timeout: float = 300.0) -> None:
    """Wait for every task through a property filter on ``info.state`` and the classic WaitForUpdates."""
    collector = si.content.propertyCollector
    spec = vmodl.query.PropertyCollector
    obj_specs = [spec.ObjectSpec(obj=task) for task in tasks]
    filter_spec = spec.FilterSpec(objectSet=obj_specs, propSet=[spec.PropertySpec(type=vim.Task,
                                                                                   pathSet=["info.state"])])
    task_filter = collector.CreateFilter(filter_spec, True)
    pending = {task._moId for task in tasks}
    deadline = time.monotonic() + timeout
    version = None
    try:
        while pending:
            if time.monotonic() > deadline:
                raise TaskFailed(f"tasks {sorted(pending)} not done after {timeout:.0f} s")
            update = collector.WaitForUpdates(version)
            version = update.version
            for filter_set in update.filterSet:
                for obj_set in filter_set.objectSet:
                    task = obj_set.obj
                    for change in obj_set.changeSet:
                        state = change.val
                        if state == vim.TaskInfo.State.success:
                            pending.discard(task._moId)
                        elif state == vim.TaskInfo.State.error:
                            raise TaskFailed(f"task {task._moId}: {task.info.error.msg}")
    finally:
        task_filter.Destroy()


def fail(message: str) -> None:
    """Print ``message`` as the script's error and exit 1."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
