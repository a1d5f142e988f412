"""The one owner of cleanup: releasing clones, sweeping what the ledger says may exist, collapsing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from ..client.errors import VSphereCloneError
from .clone import Clone

if TYPE_CHECKING:
    from .ledger import LedgerEntry
    from .run import VSphereRun

log = logging.getLogger(__name__)


class Janitor:
    """Destroys clones (honouring keep), sweeps leftovers, collapses sources at the end."""

    def __init__(self, run: VSphereRun) -> None:
        self.run = run
        self._lock = threading.Lock()
        self.kept: list[str] = []
        self.errors: list[str] = []

    def release(self, clone: Clone) -> None:
        """End of a clone's scope: keep it (per --vsphere-keep or a hook) or destroy it.

        A clone this process does not own (the run's session clone under xdist) is only
        voted on: any worker whose tests want it kept keeps it; else the controller
        destroys it once every worker is done.
        """
        clone.close()
        keep = self.run.settings.keep
        wanted = keep == "always" or (keep == "on-failure" and clone.failed)
        hook_keep = self.run.config.hook.pytest_vsphere_clone_before_destroy(clone=clone, failed=clone.failed)
        if wanted or hook_keep:
            self._mark_kept(clone)
            self.run.ledger.kept(clone.name)
            with self._lock:
                self.kept.append(clone.name)
            return
        if clone.owned:
            self.destroy(clone, reason="scope ended")

    def _mark_kept(self, clone: Clone) -> None:
        """Take the process out of a kept clone's marker: it is meant to outlive this run.

        Otherwise the next run on this machine, or ``vsphere-clone reap``, would find it
        orphaned (its process gone) and destroy it at once; now only its ttl ends it.
        """
        if clone.marker is None:
            return
        from dataclasses import replace

        from ..client.marker import set_marker

        try:
            set_marker(self.run.connection(), clone.vm, replace(clone.marker, pid=0))
        except VSphereCloneError as exc:
            self._error(f"kept {clone.name}, but could not mark it as kept (the next run may reap it): {exc}")

    def destroy(self, clone: Clone, reason: str) -> None:
        """Destroy ``clone`` now (already gone is fine) and record it."""
        from pyVmomi import vim

        from ..client.teardown import destroy

        clone.close()
        try:
            conn = self.run.connection()
            destroy(conn, vim.VirtualMachine(clone.moref, conn.si._stub), waiter=self.run.waiter(),
                    timeout=self.run.settings.clone_timeout)
        except _teardown_errors() as exc:
            self._error(f"could not destroy {clone.name} ({reason}): {_why(exc)}")
            return
        self.run.ledger.destroyed(clone.name)

    def sweep(self, entries: list[LedgerEntry], reason: str) -> int:
        """Destroy every clone the ledger lists as possibly alive; returns how many were destroyed."""
        if not entries:
            return 0
        from ..client.teardown import destroy

        conn = self.run.connection()
        unnamed = {e.name for e in entries if e.moref is None}
        try:
            by_name: dict[str, Any] | None = self._find_by_name(unnamed)
        except VSphereCloneError as exc:  # the vCenter is gone or refuses: say so once, do not crash
            self._error(f"could not look for {', '.join(sorted(unnamed))} ({reason}): {exc}")
            by_name = None
        count = 0
        for entry in entries:
            if entry.moref is None and by_name is None:
                continue  # unknown whether it exists: the ledger keeps it for the next sweep or reap
            vm = self._vm_for(entry, by_name or {})
            try:
                if vm is not None and destroy(conn, vm, waiter=self.run.waiter(),
                                              timeout=self.run.settings.clone_timeout):
                    count += 1
            except _teardown_errors() as exc:
                self._error(f"could not destroy {entry.name} ({reason}): {_why(exc)}")
                continue
            self.run.ledger.destroyed(entry.name)
        return count

    def _vm_for(self, entry: LedgerEntry, by_name: dict[str, Any]) -> Any:
        from pyVmomi import vim

        if entry.moref:
            return vim.VirtualMachine(entry.moref, self.run.connection().si._stub)
        # The clone task may have been in flight: look for the name, and only with our marker.
        return by_name.get(entry.name)

    def _find_by_name(self, names: set[str]) -> dict[str, Any]:
        if not names:
            return {}
        from ..client.teardown import list_marked

        def look() -> dict[str, Any]:
            return {marked.name: marked.ref for marked in list_marked(self.run.connection(), include_extra_config=True)
                    if marked.name in names and marked.marker.run_id == self.run.run_id}

        found = look()
        if len(found) < len(names) and self._await_clone_tasks():
            found = look()  # a clone task was still running: what it made is there now
        return found

    def _await_clone_tasks(self) -> bool:
        """Wait for clone tasks still queued or running; True if there were any.

        Polled, not awaited with WaitForUpdatesEx: this is the last resort when the waits of
        the run itself failed, and it runs once, at the end.
        """
        from ..client import props

        conn = self.run.connection()
        deadline = time.monotonic() + self.run.settings.clone_timeout
        waited = False
        while time.monotonic() < deadline:
            manager = conn.content.taskManager
            recent = (props.read(conn, manager, ["recentTask"]).get("recentTask") or []) if manager else []
            infos = props.retrieve(conn, recent, ["info.descriptionId", "info.state"]) if recent else {}
            # descriptionId: "VirtualMachine.clone" / "VirtualMachine.instantClone" on a vCenter.
            running = [ref for ref, values in infos.items()
                       if values.get("info.state") in ("queued", "running")
                       and "clone" in str(values.get("info.descriptionId") or "").lower()]
            if not running:
                return waited
            waited = True
            time.sleep(0.2)
        return waited

    def collapse_sources(self, templates: set[str], alive: Collection[str] = ()) -> None:
        """Collapse the delta disks clones left on each source (--vsphere-collapse).

        Sources in ``alive`` still have clones (kept ones): they are left alone, since
        a collapse must wait until every clone of the source is gone.
        """
        mode = self.run.settings.collapse
        if mode == "none":
            return
        from ..client.teardown import collapse

        for name in sorted(templates):
            if name in alive:
                self.run.warn(f"did not collapse {name} ({mode}): clones of it were kept and still use its delta "
                              f"disks; run `vsphere-clone collapse {name}` once they are gone")
                continue
            try:
                template = self.run.provisioner.template(name)
                collapse(self.run.connection(), template.ref, mode, timeout=self.run.settings.clone_timeout)
            except VSphereCloneError as exc:
                self._error(f"could not collapse {name} ({mode}): {exc}")
            else:
                self.run.progress(f"collapsed the delta disks of {name} ({mode})")

    def _error(self, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            self.errors.append(message)


def _teardown_errors() -> tuple[type[BaseException], ...]:
    """What a failed destroy raises: our errors, and raw vSphere faults no step translated.

    A fault such as NoPermission on Destroy_Task must end up as one summary line, not as a
    traceback out of a fixture finalizer (which would also skip the other clones' teardown).
    """
    from pyVmomi import vmodl

    return (VSphereCloneError, vmodl.MethodFault)


def _why(exc: BaseException) -> str:
    from ..client import faults

    return str(exc) if isinstance(exc, VSphereCloneError) else faults.describe(exc)
