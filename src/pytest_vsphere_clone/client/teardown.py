"""Teardown: destroy clones (idempotently), collapse a source's delta disks, find and reap marked VMs.

Reading disk chains (their lengths, the VMs that share them) is client/disks.py's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import faults, props
from .clone_types import COLLAPSE_MODES
from .errors import CollapseRefused, VSphereCloneError
from .marker import EXTRA_CONFIG_KEY, FIELD_NAME, Marker, find_marker
from .retry import NO_RETRY, RetryPolicy
from .waiter import Waiter

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

COLLAPSE_SNAPSHOT_NAME = "pytest-vsphere-clone-collapse"
#: Task faults that go away by waiting (another task on the VM, host briefly unreachable).
_TASK_RETRY = RetryPolicy(attempts=5, base_delay=0.3, max_delay=3.0)


def _is_power_state_fault(exc: BaseException) -> bool:
    return isinstance(exc, faults.fault_types(("InvalidPowerState",)))


def _own_waiter(conn: VSphereConnection, waiter: Waiter | None) -> tuple[Waiter, bool]:
    return (waiter, False) if waiter is not None else (Waiter(conn), True)


def _run_task(conn: VSphereConnection, waiter: Waiter, start: Any, timeout: float, what: str, *,
              on: Any = None, destroys: bool = False, paced: str | None = None) -> Any:
    """Start a task and await it; a transient task fault (TaskInProgress, ...) starts it again.
    ``on``/``destroys``/``paced``: as for Waiter.wait_for_task (a watched VM reports its own tasks)."""

    def once() -> Any:
        task = conn.call(start, what=what, policy=NO_RETRY)  # the loop around this one retries
        return waiter.wait_for_task(task, timeout, what, on=on, destroys=destroys, paced=paced)

    # Through the connection: a vCenter already taken for gone fails fast (see VSphereConnection.call).
    return conn.call(once, policy=_TASK_RETRY, what=what)


def destroy(conn: VSphereConnection, vm: Any, *, waiter: Waiter | None = None, timeout: float = 300.0) -> bool:
    """Power off (awaited) and Destroy_Task (awaited). True if destroyed, False if it was already gone.

    Already powered off and already deleted are both fine: teardown runs again after crashes.
    """
    waiter, owned = _own_waiter(conn, waiter)
    name = getattr(vm, "_moId", str(vm))
    watched = vm if waiter.watching(vm) else None
    try:
        try:
            # Paced (client/pacing.py): a teardown's latency matters little.
            _run_task(conn, waiter, vm.PowerOffVM_Task, timeout, f"power-off of {name}", on=watched,
                      paced="power-off")
        except Exception as exc:
            if faults.is_not_found(exc):
                return False
            if not _is_power_state_fault(exc):
                raise
        try:
            _run_task(conn, waiter, vm.Destroy_Task, timeout, f"destroy of {name}", on=watched, destroys=True,
                      paced="destroy")
        except Exception as exc:
            if faults.is_not_found(exc):
                return False
            raise
        log.info("destroyed VM %s", name)
        return True
    finally:
        if watched is not None:
            waiter.unwatch(vm)
        if owned:
            waiter.close()


def destroy_many(conn: VSphereConnection, vms: Sequence[Any], *, waiter: Waiter | None = None,
                 timeout: float = 300.0) -> dict[Any, BaseException | None]:
    """Destroy several VMs with their tasks running side by side; returns vm -> None or the failure.

    Already gone counts as success. Each VM's failure is reported, never raised, so one
    stuck VM does not keep the others alive.
    """
    waiter, owned = _own_waiter(conn, waiter)
    outcome: dict[Any, BaseException | None] = {vm: None for vm in vms}
    try:
        for method, fine in (("PowerOffVM_Task", _is_power_state_fault), ("Destroy_Task", None)):
            started: dict[Any, Any] = {}
            for vm in vms:
                if outcome[vm] is not None:
                    continue  # its power-off failed: destroying it would fail too
                try:
                    started[vm] = conn.call(getattr(vm, method), what=f"{method} of {vm._moId}")
                except Exception as exc:
                    _settle(outcome, vm, exc, fine)
            results = waiter.wait_for_tasks(list(started.values()), timeout, f"{method} of {len(started)} VMs",
                                             return_errors=True) if started else []
            for vm, result in zip(started, results, strict=True):
                if isinstance(result, BaseException):
                    _settle(outcome, vm, result, fine)
        return outcome
    finally:
        if owned:
            waiter.close()


def _settle(outcome: dict[Any, BaseException | None], vm: Any, exc: BaseException, fine: Any) -> None:
    if faults.is_not_found(exc):
        return  # gone already: the goal
    if fine is not None and fine(exc):
        return
    outcome[vm] = exc


def collapse(conn: VSphereConnection, source: Any, mode: str, *, waiter: Waiter | None = None,
             timeout: float = 600.0, allow_removing_snapshots: bool = False) -> None:
    """Merge the delta disks clones left on ``source``; call once every clone of it is gone.

    ``snapshot``: CreateSnapshot_Task then RemoveAllSnapshots_Task (consolidates the chain).
    ``promote``: PromoteDisks_Task(unlink=True). ``none``: nothing.
    ``snapshot`` removes *every* snapshot of the source, so a source that already has
    snapshots (a linked-clone template's base) is refused unless ``allow_removing_snapshots``.
    """
    if mode not in COLLAPSE_MODES:
        raise VSphereCloneError(f"collapse mode {mode!r} is not one of {', '.join(COLLAPSE_MODES)}: check "
                                f"--vsphere-collapse")
    if mode == "none":
        return
    waiter, owned = _own_waiter(conn, waiter)
    try:
        values = props.read(conn, source, ["name", "snapshot"])
        name = str(values.get("name", source._moId))
        if mode == "snapshot":
            existing = [s.name for s in _snapshot_trees(values.get("snapshot"))]
            if existing and not allow_removing_snapshots:
                raise CollapseRefused(
                    f"collapse=snapshot of {name!r} would delete its snapshots ({', '.join(existing)}), which "
                    f"linked clones need: use --vsphere-collapse=none for linked clones, or promote")
            _run_task(conn, waiter, lambda: source.CreateSnapshot_Task(
                name=COLLAPSE_SNAPSHOT_NAME, description="Taken by pytest-vsphere-clone to consolidate delta disks",
                memory=False, quiesce=False), timeout, f"snapshot of {name} for collapse")
            _run_task(conn, waiter, lambda: source.RemoveAllSnapshots_Task(consolidate=True), timeout,
                      f"removal of all snapshots of {name}")
        else:
            _run_task(conn, waiter, lambda: source.PromoteDisks_Task(unlink=True), timeout,
                      f"disk promotion of {name}")
        log.info("collapsed the delta disks of %s (%s)", name, mode)
    finally:
        if owned:
            waiter.close()


def _snapshot_trees(info: Any) -> Iterable[Any]:
    stack = list(info.rootSnapshotList) if info is not None else []
    while stack:
        tree = stack.pop()
        yield tree
        stack.extend(tree.childSnapshotList or ())


# --- finding and reaping marked VMs ---------------------------------------------------------


@dataclass(frozen=True)
class MarkedVM:
    """A VM carrying the ownership marker."""

    ref: Any
    name: str
    marker: Marker
    power_state: str


def list_marked(conn: VSphereConnection, *, include_extra_config: bool = False) -> list[MarkedVM]:
    """Every VM carrying the marker, from one RetrievePropertiesEx (custom values and notes).

    VMs without a marker are never returned, so nothing built on this touches them.
    ``include_extra_config`` also reads every VM's extraConfig, which finds an instant
    clone whose run died between its clone task and SetField, at the price of
    transferring all VMs' advanced settings (large on a big vCenter).
    """
    from pyVmomi import vim

    manager = conn.content.customFieldsManager
    extra = [(manager, ["field"])] if manager is not None else []
    paths = ["name", "customValue", "config.annotation", "runtime.powerState"]
    if include_extra_config:
        paths.append("config.extraConfig")
    found = props.container_contents(conn, {vim.VirtualMachine: paths}, extra=extra)
    keys = {int(f.key) for o in found if not isinstance(o.ref, vim.VirtualMachine)
            for f in o.get("field", ()) if f.name == FIELD_NAME}
    marked: list[MarkedVM] = []
    for vm in found:
        if not isinstance(vm.ref, vim.VirtualMachine):
            continue
        custom = next((v.value for v in vm.get("customValue", ()) if int(v.key) in keys), None)
        extra_config = {o.key: str(o.value) for o in vm.get("config.extraConfig", ()) if o.key == EXTRA_CONFIG_KEY}
        marker = find_marker(custom, vm.get("config.annotation"), extra_config)
        if marker is not None:
            marked.append(MarkedVM(vm.ref, str(vm.get("name", "")), marker,
                                   str(vm.get("runtime.powerState", "poweredOff"))))
    return marked


def select_for_reaping(vms: Iterable[MarkedVM], *, run_id: str | None = None, older_than: float | None = None,
                       expired: bool = True, orphaned: bool = True, now: float | None = None) -> list[MarkedVM]:
    """The marked VMs to destroy.

    With ``run_id``: every VM of that run. With ``older_than`` (seconds): every VM created
    longer ago. Otherwise the expired ones (``expired``) and those whose creating process on
    this machine is gone (``orphaned``).
    """
    now = time.time() if now is None else now
    chosen = []
    for vm in vms:
        marker = vm.marker
        if run_id is not None:
            if marker.run_id == run_id:
                chosen.append(vm)
        elif older_than is not None:
            if now - marker.created >= older_than:
                chosen.append(vm)
        elif (expired and marker.is_expired(now)) or (orphaned and marker.is_orphaned(now)):
            chosen.append(vm)
    return chosen


@dataclass
class ReapReport:
    """What a reap found and did."""

    selected: list[MarkedVM] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


def reap(conn: VSphereConnection, *, run_id: str | None = None, older_than: float | None = None,
         dry_run: bool = False, expired: bool = True, orphaned: bool = True, timeout: float = 300.0,
         include_extra_config: bool = False, waiter: Waiter | None = None) -> ReapReport:
    """Destroy marked VMs chosen by :func:`select_for_reaping`; never touches a VM without the marker."""
    marked = list_marked(conn, include_extra_config=include_extra_config)
    chosen = select_for_reaping(marked, run_id=run_id, older_than=older_than, expired=expired,
                                orphaned=orphaned)
    report = ReapReport(selected=chosen, dry_run=dry_run)
    if dry_run or not chosen:
        return report
    outcome = destroy_many(conn, [vm.ref for vm in chosen], waiter=waiter, timeout=timeout)
    for vm in chosen:
        error = outcome.get(vm.ref)
        if error is None:
            report.destroyed.append(vm.name)
        else:
            report.failed[vm.name] = faults.describe(error)
    return report
