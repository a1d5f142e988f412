"""Tasks that take time: queued -> running (with progress) -> success or error."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .objects.base import ManagedEntity, SimObject, vmomi_method
from .objects.events import post_task_event, set_current_task
from .objects.task_descriptions import description_id, task_description
from .provisioning_limits import ResourceLimits

if TYPE_CHECKING:
    from .vcenter import CallContext, VCenter

log = logging.getLogger(__name__)

#: Finished tasks stay readable this long, as recent tasks do on a vCenter.
TASK_RETENTION_SECONDS = 600.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Task(SimObject):
    """A vim.Task whose ``info`` moves through its states over time."""

    vim_type = vim.Task

    def __init__(self, vc: VCenter, mo_id: str, info: Any) -> None:
        super().__init__(vc, mo_id)
        self.info = info
        self.finished_at: float | None = None
        #: What the latency profile drew for this task (queue + operation), for benchmarks' limits.
        self.drawn = 0.0

    def prop_info(self) -> Any:
        return self.info

    def update(self, **fields: Any) -> None:
        with self.vc.lock:
            for name, value in fields.items():
                setattr(self.info, name, value)
            self.changed()

    @vmomi_method()
    def CancelTask(self, ctx: CallContext) -> None:
        with self.vc.lock:
            if self.info.state in ("success", "error"):
                raise vim.fault.InvalidState(msg="The task has already completed.")
            if not self.info.cancelable:
                raise vmodl.fault.NotSupported(msg="The task cannot be cancelled.")
            self.update(cancelled=True)

    @vmomi_method()
    def SetTaskState(self, ctx: CallContext, state: str, result: Any = None, fault: Any = None) -> None:
        raise vmodl.fault.NotSupported(msg="Only the simulator sets task states.")


class TaskManager(SimObject):
    """The vim.TaskManager: lists recent tasks."""

    vim_type = vim.TaskManager
    dynamic_properties = frozenset({"recentTask"})

    def prop_recentTask(self) -> list[Any]:
        return [t.ref for t in self.vc.of_type(Task)]

    def prop_maxCollector(self) -> int:
        return 32

    def prop_description(self) -> Any:
        return task_description()


class TaskRunner:
    """Starts tasks on background threads and keeps their TaskInfo faithful."""

    def __init__(self, vc: VCenter) -> None:
        self.vc = vc
        self._event_chain = 0
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        #: Recent real time of each operation's work, by operation (see _run).
        self._work_estimate: dict[str, float] = {}
        #: Costs of provisioning and migrations per host and datastore: more than they bear queue.
        self.limits = ResourceLimits(vc)

    def start(
        self,
        ctx: CallContext,
        entity: SimObject,
        method: str,
        operation: str,
        work: Callable[[], Any],
        *,
        description: str | None = None,
        cancelable: bool = False,
        costs: Mapping[SimObject, int] | None = None,
    ) -> Any:
        """Create a task for ``method`` on ``entity`` and run ``work`` after the operation's latency.

        ``work`` runs without the lock (it takes it where it edits state); its
        return value is the task's result and a MethodFault it raises is the
        task's error. ``costs``: what the operation costs against hosts and datastores
        (see provisioning_limits); the task stays ``queued`` until they fit.
        """
        vc = self.vc
        if ctx.task_fault is not None:
            injected, ctx.task_fault = ctx.task_fault, None

            def work() -> Any:
                raise injected

        with vc.lock:
            self._event_chain += 1
            mo_id = vc.new_id("task")
            entity_name = getattr(entity, "name", None)
            managed_method = VmomiSupport.GetWsdlMethod("urn:vim25", method)
            info = vim.TaskInfo(
                key=mo_id,
                task=vim.Task(mo_id),
                name=managed_method,
                # As a vCenter names them: the vmodl type and method ("VirtualMachine.clone" for
                # CloneVM_Task, "vm.Snapshot.remove" for RemoveSnapshot_Task; see task_descriptions).
                descriptionId=description or description_id(entity.vim_type, method),
                entity=entity.ref,
                entityName=entity_name,
                state="queued",
                cancelled=False,
                cancelable=cancelable,
                reason=vim.TaskReasonUser(userName=ctx.user),
                queueTime=utcnow(),
                eventChainId=self._event_chain,
                progress=0,
            )
            task = Task(vc, mo_id, info)
            vc.add(task)
            post_task_event(vc, info, entity)  # the task's TaskEvent opens its event chain
            if isinstance(entity, ManagedEntity):
                entity.recent_tasks.append(task)
                entity.changed()
            self._prune()
        # The work estimate is per kind of work: an instant clone of a running source (its guest
        # state read live) costs more than one of a frozen source.
        kind = f"{operation}:{'frozen' if getattr(entity, 'frozen', False) else 'running'}" \
            if operation == "clone.instant" else operation
        thread = threading.Thread(target=self._run, args=(task, operation, work, kind, dict(costs or {})),
                                  name=f"sim-{mo_id}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()
        return task.ref

    def _run(self, task: Task, operation: str, work: Callable[[], Any], kind: str | None = None,
             costs: Mapping[SimObject, int] | None = None) -> None:
        set_current_task(task)  # events the work posts join the task's chain
        profile = self.vc.profile
        held: Mapping[SimObject, int] = {}
        try:
            queued = profile.duration("task.queue")
            time.sleep(queued)
            # TaskInfo.state "queued": "When there are too many tasks for threads to handle." A
            # provisioning operation also waits here while its hosts or datastores are at their
            # maximum cost (vSphere docs, "Limits on Simultaneous Migrations").
            if not self.limits.acquire(costs or {}, lambda: self.vc.closed or bool(task.info.cancelled)):
                raise vmodl.fault.RequestCanceled(msg="The task was canceled before it started.")
            held = costs or {}
            task.update(state="running", startTime=utcnow(), progress=0)
            # The profile's duration is the whole operation on vSphere; the simulator's own real
            # work (a guest's disk and namespace, say) is part of it, not added after it: it is
            # taken off the sleep, as much as that operation's recent runs took.
            drawn = profile.duration(operation)
            task.drawn = queued + drawn
            kind = kind or operation
            total = max(0.0, drawn - self._work_estimate.get(kind, 0.0))
            steps = 4 if total >= 0.2 else 1
            for step in range(steps):
                time.sleep(total / steps)
                if task.info.cancelled:
                    raise vmodl.fault.RequestCanceled(msg="The task was canceled by a user.")
                if steps > 1:
                    task.update(progress=int(100 * (step + 1) / (steps + 1)))
            work_started = time.monotonic()
            result = work()
            took = time.monotonic() - work_started
            previous = self._work_estimate.get(kind)
            self._work_estimate[kind] = took if previous is None else 0.7 * previous + 0.3 * took
        except vmodl.MethodFault as fault:
            task.update(state="error", error=fault, completeTime=utcnow())
        except Exception as exc:  # a simulator bug must still end the task, as a SystemError
            log.exception("task %s failed", task.mo_id)
            task.update(
                state="error",
                error=vmodl.fault.SystemError(msg=f"A general system error occurred: {exc}", reason=str(exc)),
                completeTime=utcnow(),
            )
        else:
            task.update(state="success", result=result, progress=100, completeTime=utcnow())
        finally:
            # A finished task stays in its entity's recentTask (as on vCenter, where it holds the
            # state "success" or "error" for a while), so a filter that reaches tasks through
            # recentTask sees how they ended; _prune drops it with the task.
            task.finished_at = time.time()
            self.limits.release(held)  # after completeTime: the next operation starts after this one ended
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _prune(self) -> None:
        cutoff = time.time() - TASK_RETENTION_SECONDS
        for task in self.vc.of_type(Task):
            if task.finished_at is not None and task.finished_at < cutoff:
                entity = self.vc.objects.get(task.info.entity._moId) if task.info.entity is not None else None
                if isinstance(entity, ManagedEntity) and task in entity.recent_tasks:
                    entity.recent_tasks.remove(task)
                    entity.changed()
                self.vc.remove(task)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no task thread runs (for orderly shutdown)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._threads_lock:
                threads = list(self._threads)
            if not threads:
                return True
            for thread in threads:
                thread.join(max(0.0, deadline - time.time()))
        return False
