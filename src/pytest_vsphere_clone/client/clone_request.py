"""A clone request and its lifecycle, shared by every clone strategy.

:class:`CloneRequest` says what to clone and how; a :class:`CloneStrategy` runs it: the endpoint
check (an ESXi host reached directly cannot clone), the clone call, the ownership marker, the
strategy's after-clone steps and the power-on, returning a :class:`CloneResult` with per-phase
timings. Anything the request created is destroyed if a later step fails, and a clone call whose
connection dropped is never repeated blindly: first the strategy looks for what the lost call may
have made. The strategies themselves and their clone specs are in ``clone.py``.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from . import faults, props
from .clone_types import BY_NAME, CloneType
from .errors import CloneFailed, MissingPrivileges, OutcomeUnknown, VSphereCloneError
from .hardware import ResolvedHardware
from .inventory import Placement, TemplateInfo
from .marker import Marker, find_marker, set_marker
from .retry import RetryPolicy
from .waiter import Waiter

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

_ACTIVE_TASK_STATES = ("queued", "running")


class CloningNeedsVCenter(VSphereCloneError):
    """The endpoint is an ESXi host reached directly: it offers neither instant nor linked/full clones."""

    def __init__(self, endpoint: str, clone_type: str, product: str) -> None:
        self.endpoint = endpoint
        self.clone_type = clone_type
        method = BY_NAME[clone_type].method if clone_type in BY_NAME else "CloneVM_Task"
        others = sorted({f"{t.method} ({t.name} clones)" for t in BY_NAME.values() if t.method != method})
        other = ", ".join(others)
        super().__init__(
            f"{endpoint} is an ESXi host reached directly ({product}, apiType HostAgent), and ESXi offers no "
            f"{method} for {clone_type} clones (vSphere SDK guide, Limitations of Instant Clones: not available when "
            f"connected directly to ESXi), nor {other}: point --vsphere-host at the vCenter that manages this host")


def cloning_endpoint_problem(conn: VSphereConnection, clone_type: str) -> CloningNeedsVCenter | None:
    """Why ``conn`` cannot clone at all, or None: an ESXi host reached directly cannot.

    ``AboutInfo.apiType`` (API reference): "Indicates whether or not the service instance represents a
    standalone host ... 'VirtualCenter' - For a VirtualCenter instance. 'HostAgent' - For host agent on an
    ESX Server or VMware Server host." ESXi answers InstantClone_Task and CloneVM_Task with NotSupported
    ("The operation is not supported on the object."; govmomi #1469: "ESXi does not support the CloneVM
    method, regardless of license"). ServiceContent was read at login: this costs no round trip.
    """
    about = conn.content.about
    if about is None or about.apiType != "HostAgent":
        return None
    return CloningNeedsVCenter(str(conn.endpoint), clone_type, about.fullName or about.name or "ESXi")


def require_vcenter(conn: VSphereConnection, clone_type: str) -> None:
    """Raise :class:`CloningNeedsVCenter` when ``conn`` is a direct ESXi connection."""
    problem = cloning_endpoint_problem(conn, clone_type)
    if problem is not None:
        raise problem


@dataclass
class CloneRequest:
    """Everything one clone needs; names are chosen by the caller and must be unique in the folder."""

    template: TemplateInfo
    name: str
    clone_type: str = "linked"
    #: Linked (and full): clone from this snapshot (name or tree path); None: the current snapshot.
    snapshot: str | None = None
    placement: Placement | None = None
    marker: Marker | None = None
    power_on: bool = True
    #: Power on inside the clone task (saves a task round trip; the power_on timing is then 0).
    power_on_in_clone_task: bool = False
    timeout: float = 600.0
    #: Called with the clone spec just before the clone task starts (the plugin's hook).
    customize: Callable[[Any], None] | None = None
    #: CPUs, memory, NICs' port groups, extra disks and extraConfig (client/hardware.py); None: the source's.
    hardware: ResolvedHardware | None = None
    #: Called with each clone task as soon as it started, before it is awaited: the plugin's ledger
    #: records its key, so the end of the run can learn the task's outcome even if no wait works.
    on_task: Callable[[Any], None] | None = None


@dataclass
class CloneResult:
    """The new VM, how long each phase took (seconds) and any warnings for the run's summary."""

    vm: Any
    name: str
    clone_type: str
    template: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def moref(self) -> str:
        return str(self.vm._moId)


class CloneStrategy(ABC):
    """One clone type: checks, spec, the clone call, and what must happen right after."""

    kind: ClassVar[CloneType]

    @property
    def clone_type(self) -> str:
        return self.kind.name

    @property
    def method(self) -> str:
        return self.kind.method

    @property
    def description_id(self) -> str:
        """The TaskInfo.descriptionId a vCenter gives this method's tasks."""
        return self.kind.description_id

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self.retry = retry or RetryPolicy(attempts=3)

    @abstractmethod
    def build_spec(self, conn: VSphereConnection, request: CloneRequest, warnings: list[str]) -> Any:
        """The clone spec; raises a VSphereCloneError for a source that cannot be cloned this way."""

    @abstractmethod
    def start(self, request: CloneRequest, spec: Any) -> Any:
        """Issue the (non-idempotent) clone call; returns its task."""

    def target_folder(self, request: CloneRequest) -> Any:
        return request.placement.folder if request.placement else request.template.folder

    def after_clone(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest, vm: Any,
                    spec: Any) -> None:
        """Steps between the clone task and power-on (none by default)."""
        return None

    def powers_on(self, request: CloneRequest) -> bool:
        """Whether the clone still needs a PowerOnVM_Task."""
        return request.power_on and not request.power_on_in_clone_task

    def clone(self, conn: VSphereConnection, request: CloneRequest, waiter: Waiter) -> CloneResult:
        """Make the clone; on any failure after the clone task, destroy it and re-raise."""
        from .teardown import destroy

        warnings: list[str] = []
        require_vcenter(conn, self.clone_type)  # one clear error, not a NotSupported task per clone
        if request.marker is not None and not request.marker.template:
            request.marker = request.marker.for_template(request.template.name)
        spec = self.build_spec(conn, request, warnings)
        if request.customize is not None:
            request.customize(spec)
        started = time.monotonic()
        vm = self._clone_call(conn, waiter, request, spec)
        timings = {"clone": time.monotonic() - started, "power_on": 0.0}
        try:
            if request.marker is not None:
                set_marker(conn, vm, request.marker)
            self.after_clone(conn, waiter, request, vm, spec)
            timings["clone"] = time.monotonic() - started
            if self.powers_on(request):
                power_started = time.monotonic()
                self._power_on(conn, waiter, request, vm)
                timings["power_on"] = time.monotonic() - power_started
        except BaseException:
            log.warning("clone %s failed after it was created; destroying it", request.name)
            try:
                destroy(conn, vm, waiter=waiter)
            except Exception as exc:  # keep the original error; the marker lets reap find the VM
                log.error("could not destroy the half-made clone %s: %s", request.name, faults.describe(exc))
            raise
        return CloneResult(vm, request.name, self.clone_type, request.template.name, timings, warnings)

    # --- the clone call, safe against lost answers ----------------------------------------

    def _clone_call(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest, spec: Any) -> Any:
        from pyVmomi import vim, vmodl

        what = f"{self.method} of {request.template.name!r} to {request.name!r}"
        outcome_unknown = False
        attempt = 0
        while True:
            attempt += 1
            try:
                task = conn.call(self.start, request, spec, idempotent=False, what=what, policy=self.retry)
                if request.on_task is not None:
                    request.on_task(task)
                try:
                    return waiter.wait_for_task(task, request.timeout, what)
                except (KeyboardInterrupt, SystemExit):
                    # Interrupted (SIGINT/SIGTERM) while the task runs: the clone would appear after we
                    # are gone. Wait for it and destroy it, then let the interrupt go on.
                    self._abandon(conn, task, request, what)
                    raise
            except OutcomeUnknown as exc:
                # The lost call may have started a clone: find it before trying again.
                log.warning("%s; looking for the clone before trying again", exc)
                outcome_unknown = True
                vm = self._find_existing(conn, waiter, request)
                if vm is not None:
                    return vm
                if attempt >= self.retry.attempts:
                    raise CloneFailed(f"{what} lost its connection {attempt} times and no clone exists: check the "
                                      f"network to the vCenter") from exc
            except vim.fault.DuplicateName:
                # Only a lost call of ours explains a duplicate; any other same-named VM is not ours to take.
                vm = self._find_existing(conn, waiter, request) if outcome_unknown else None
                if vm is not None:
                    return vm  # made by our own earlier, lost call
                raise CloneFailed(f"a VM named {request.name!r} already exists in the target folder: remove it or "
                                  f"choose another --vsphere-name-prefix") from None
            except vim.fault.NoPermission as fault:
                raise MissingPrivileges(conn.user, faults.missing_privileges(fault),
                                        request.template.name) from None
            except vim.fault.TooManySnapshotLevels as fault:
                raise CloneFailed(f"{request.template.name!r} reached the delta-disk chain limit "
                                  f"({faults.describe(fault)}): collapse it with "
                                  f"`vsphere-clone collapse {request.template.name}`") from None
            except VSphereCloneError:
                raise
            except vmodl.MethodFault as fault:
                if faults.server_rejected(fault) and attempt < self.retry.attempts:
                    # The task itself ended with a transient fault (HostCommunication, TaskInProgress):
                    # a failed clone task made no clone, so starting it again is safe.
                    pause = self.retry.delay(attempt - 1)
                    log.info("%s failed transiently (%s); retrying in %.2f s", what, faults.describe(fault), pause)
                    time.sleep(pause)
                    continue
                raise CloneFailed(f"{what} failed: {faults.describe(fault)}") from None

    def _abandon(self, conn: VSphereConnection, task: Any, request: CloneRequest, what: str) -> None:
        """Let an interrupted clone task finish and destroy what it made (best effort, logged)."""
        from .teardown import destroy

        log.warning("interrupted during %s: waiting for the task to destroy its clone", what)
        try:
            # A fresh collector: the interrupted wait left the old one's update version unknown.
            with Waiter(conn) as own:
                vm = own.wait_for_task(task, request.timeout, what)
                destroy(conn, vm, waiter=own)
        except Exception as exc:  # the marker lets `vsphere-clone reap` find it
            log.error("could not destroy the clone of the interrupted %s: %s", what, faults.describe(exc))

    def _find_existing(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest) -> Any:
        """Our clone if a lost or duplicate call made it (in-flight clone tasks awaited first)."""
        self._await_inflight(conn, waiter, request)
        index = conn.content.searchIndex
        assert index is not None
        vm = conn.call(index.FindChild, self.target_folder(request), request.name, what="FindChild")
        if vm is None:
            return None
        if request.marker is not None:
            values = props.read(conn, vm, ["config.annotation", "config.extraConfig"])
            extra = {o.key: str(o.value) for o in values.get("config.extraConfig", ())}
            found = find_marker(None, values.get("config.annotation"), extra)
            if found is None or found.run_id != request.marker.run_id:
                return None  # someone else's VM with our name: never adopt it
        log.info("found clone %s made by the lost call; using it", request.name)
        return vm

    def _await_inflight(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest) -> None:
        manager = conn.content.taskManager
        if manager is None:
            return
        from .task_reads import read_task_infos, task_method

        # Reading TaskManager.recentTask is fine; only update notifications of an entity's
        # recentTask may be missing (see client/waiter.py).
        recent = conn.call(lambda: manager.recentTask, what="TaskManager.recentTask") or []
        if not recent:
            return
        template = request.template.name.rstrip("/").rsplit("/", 1)[-1]
        running = [ref for ref, info in read_task_infos(conn, recent).items()
                   if info is not None and info.entityName == template
                   and info.state in _ACTIVE_TASK_STATES
                   and (info.descriptionId == self.description_id or task_method(info) == self.method)]
        if running:
            waiter.wait_for_tasks(running, request.timeout, f"in-flight {self.method} of {request.template.name}",
                                  return_errors=True)

    def _power_on(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest, vm: Any) -> None:
        power_on(conn, waiter, vm, f"power-on of {request.name}", request.timeout, self.retry)


def power_on(conn: VSphereConnection, waiter: Waiter, vm: Any, what: str, timeout: float,
             retry: RetryPolicy | None = None) -> None:
    """PowerOnVM_Task, awaited; already on is fine, a transiently failed task is started again."""
    from pyVmomi import vim, vmodl

    retry = retry or RetryPolicy(attempts=3)
    on = vm if waiter.watching(vm) else None
    for attempt in range(1, retry.attempts + 1):
        try:
            task = conn.call(vm.PowerOnVM_Task, what=what)
            waiter.wait_for_task(task, timeout, what, on=on)
            return
        except vim.fault.InvalidPowerState as fault:
            if fault.existingState != "poweredOn":
                raise  # on already (a retried call that had worked) is the goal; anything else is not
            return
        except vmodl.MethodFault as fault:
            # A power-on task that ended with a transient fault left the VM off: try again.
            if not faults.server_rejected(fault) or attempt >= retry.attempts:
                raise
            time.sleep(retry.delay(attempt - 1))
