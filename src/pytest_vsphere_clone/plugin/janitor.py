"""The one owner of cleanup: releasing clones, sweeping what the ledger says may exist, collapsing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client.clone_types import BY_NAME as CLONE_TYPES_BY_NAME
from ..client.faults import one_line
from .clone import Clone

if TYPE_CHECKING:
    from .connection_holder import ConnectionHolder
    from .ledger import Ledger, LedgerEntry
    from .reporter import Reporter
    from .settings import Settings
    from .templates import TemplateCatalog

log = logging.getLogger(__name__)

#: Clone types whose clones add delta disks to their source: what --vsphere-collapse merges.
GROWS_SOURCE = frozenset(name for name, kind in CLONE_TYPES_BY_NAME.items() if kind.grows_source)


#: How long deleting a kept clone's leftover guest command files may retry.
_GUEST_CLEANUP_SECONDS = 10.0


class Janitor:
    """Destroys clones (honouring each clone's keep), sweeps leftovers, collapses sources at the end.

    Its dependencies are passed in: the process's connection holder, the run's ledger, the reporter,
    the template catalog (for collapse), pytest's hook caller (``before_destroy``) and the run's
    settings (defaults for clones that carry none of their own).
    """

    def __init__(self, holder: ConnectionHolder, ledger: Ledger, reporter: Reporter, templates: TemplateCatalog,
                 hook: Any, *, run_id: str, defaults: Settings) -> None:
        self.holder = holder
        self.ledger = ledger
        self.reporter = reporter
        self.templates = templates
        self.hook = hook
        self.run_id = run_id
        self.defaults = defaults
        self._lock = threading.Lock()
        self.kept: list[str] = []
        self.errors: list[str] = []
        #: The test that keeps a clone (node id, "" if unknown): set by the run's reports (reports.py).
        self.keeping_test: Callable[[Clone], str] = lambda clone: ""

    def release(self, clone: Clone) -> None:
        """End of a clone's scope: keep it (per --vsphere-keep or a hook) or destroy it.

        A clone this process does not own (the run's session clone under xdist) is only
        voted on: any worker whose tests want it kept keeps it; else the controller
        destroys it once every worker is done.
        """
        clone.close()
        # The clone's own settings: a factory or named-fixture override wins over the run's.
        keep = self._settings(clone).keep
        wanted = keep == "always" or (keep == "on-failure" and clone.failed)
        hook_keep = self.hook.pytest_vsphere_clone_before_destroy(clone=clone, failed=clone.failed)
        if wanted or hook_keep:
            from .summary import how_to_reach

            test = self.keeping_test(clone)
            self._mark_kept(clone, test)
            self._clean_guest_files(clone)
            self.ledger.kept(clone.name, reach=how_to_reach(clone, self._settings(clone)), kept_by=test)
            with self._lock:
                self.kept.append(clone.name)
            return
        if clone.owned:
            self.destroy(clone, reason="scope ended")

    def _settings(self, clone: Clone) -> Settings:
        return clone._settings or self.defaults

    def _clean_guest_files(self, clone: Clone) -> None:
        """Delete what guest commands left for later in a kept clone: it outlives the run, and no
        later command of ours will (a destroyed clone takes them with it)."""
        settings = clone._settings
        if clone._conn is None or settings is None or not settings.guest_user:
            return
        # A file it cannot delete is logged, never a failure; a guest whose Tools are down (the
        # test may have broken it) does not hold the teardown up for long.
        clone.guest_operations().limited(_GUEST_CLEANUP_SECONDS).clean_up()

    def _mark_kept(self, clone: Clone, test: str = "") -> None:
        """Take the process out of a kept clone's marker: it is meant to outlive this run.

        Otherwise the next run on this machine, or ``vsphere-clone reap``, would find it
        orphaned (its process gone) and destroy it at once; now only its ttl ends it. The
        marker also records the clone's address and the test that kept it (``vsphere-clone list``).
        """
        if clone.marker is None:
            return
        from dataclasses import replace

        from ..client.marker import set_marker

        try:
            set_marker(self.holder.connection(), clone.vm, replace(clone.marker, pid=0, ip=clone.ip, kept_by=test))
        except _teardown_errors() as exc:
            self._error(f"kept {clone.name}, but could not mark it as kept (the next run may reap it): {one_line(exc)}")

    def destroy(self, clone: Clone, reason: str) -> None:
        """Destroy ``clone`` now (already gone is fine) and record it."""

        from ..client.teardown import destroy

        clone.close()
        try:
            conn = self.holder.connection()
            conn.leftover_files.forget(clone.moref)
            destroy(conn, conn.ref("VirtualMachine", clone.moref), waiter=self.holder.waiter(),
                    timeout=self._settings(clone).clone_timeout)
        except _teardown_errors() as exc:
            self._error(f"could not destroy {clone.name} ({reason}): {one_line(exc)}")
            return
        self.ledger.destroyed(clone.name)

    def sweep(self, entries: list[LedgerEntry], reason: str) -> int:
        """Destroy every clone the ledger lists as possibly alive; returns how many were destroyed.

        A clone without a moref is one whose clone task's outcome the run never saw (its wait may be
        what failed): its task is polled to its end first, then the clone is looked for by name and
        marker. It is recorded destroyed only once no task that could still make it is running and
        no VM of it exists; otherwise the ledger keeps it and the run fails with a line saying why.
        """
        if not entries:
            return 0
        try:
            return self._sweep(entries, reason)
        except _teardown_errors() as exc:  # e.g. no connection: the ledger keeps them for reap
            self._error(f"could not sweep {', '.join(sorted(e.name for e in entries))} ({reason}): {one_line(exc)}")
            return 0

    def _sweep(self, entries: list[LedgerEntry], reason: str) -> int:

        from ..client.teardown import destroy

        conn = self.holder.connection()
        unnamed = [e for e in entries if e.moref is None]
        lookup: _Lookup | None = _Lookup()
        if unnamed:
            try:
                lookup = self._find_unnamed(unnamed)
            except _teardown_errors() as exc:  # the vCenter is gone or refuses: say so once, do not crash
                self._error(f"could not look for {', '.join(sorted(e.name for e in unnamed))} ({reason}): "
                            f"{one_line(exc)}")
                lookup = None
        count = 0
        for entry in entries:
            vm: Any
            if entry.moref is not None:
                vm = conn.ref("VirtualMachine", entry.moref)
            elif lookup is None:
                continue  # unknown whether it exists: the ledger keeps it for the next sweep or reap
            else:
                vm = lookup.found.get(entry.name)
                if vm is None and entry.name in lookup.unsettled:
                    # Its clone task may still make it: never "destroyed" on a guess.
                    self._error(f"could not tell whether {entry.name} exists ({reason}): "
                                f"{lookup.unsettled[entry.name]}")
                    continue
            try:
                if vm is not None and destroy(conn, vm, waiter=self.holder.waiter(),
                                              timeout=self.defaults.clone_timeout):
                    count += 1
            except _teardown_errors() as exc:
                self._error(f"could not destroy {entry.name} ({reason}): {one_line(exc)}")
                continue
            self.ledger.destroyed(entry.name)
        return count

    def _find_unnamed(self, entries: list[LedgerEntry]) -> _Lookup:
        """Where the clones of ``entries`` (no moref known) are, once no clone task can still make them.

        The order matters: first every clone task that may still make one of them is polled to its
        end (RetrievePropertiesEx, not the waiter, whose failure may be why the outcome is unknown),
        and only then are the VMs looked for. A look before the tasks end can miss a VM its task
        registers a moment later.
        """
        from pyVmomi import vim

        from ..client.task_reads import TasksStillRunning, poll_tasks, task_finished
        from ..client.teardown import list_marked

        conn = self.holder.connection()
        names = {e.name for e in entries}
        # The task of each entry whose key the ledger has; for an entry without one (the clone call's
        # answer was lost, or its process died before writing it), every clone task in flight on its
        # template: a task the vCenter runs is listed in recentTask before its answer is sent.
        own = {e.name: conn.ref("Task", e.task) for e in entries if e.task}
        keyless = {_base_name(e.template) for e in entries if not e.task}
        others = self._inflight_clone_tasks(keyless) if keyless else []
        tasks = list({t._moId: t for t in [*own.values(), *others]}.values())
        infos: dict[Any, Any] = {}
        unsettled: dict[str, str] = {}
        if tasks:
            what = (f"the clone task(s) of {', '.join(sorted(names))} "
                    f"({', '.join(sorted(t._moId for t in tasks))}) to end")
            try:
                infos = poll_tasks(conn, tasks, self.defaults.clone_timeout, what,
                                   hint="if the task makes the clone later, the next run from this machine or "
                                        "`vsphere-clone reap` destroys it (it carries the marker)")
            except TasksStillRunning as exc:
                infos = exc.infos
                for entry in entries:
                    related = [own[entry.name]] if entry.name in own else others
                    if any(not task_finished(infos.get(t)) for t in related):
                        unsettled[entry.name] = str(exc)
        found = {marked.name: marked.ref for marked in list_marked(conn, include_extra_config=True)
                 if marked.name in names and marked.marker.run_id == self.run_id}
        for name, task in own.items():
            info = infos.get(task)
            if name not in found and info is not None and str(info.state) == "success" and \
                    isinstance(info.result, vim.VirtualMachine):
                found[name] = info.result  # our own task made it: no marker needed to know it is ours
        return _Lookup(found, unsettled)

    def _inflight_clone_tasks(self, templates: set[str]) -> list[Any]:
        """Clone tasks queued or running on one of ``templates`` (by name), from TaskManager.recentTask."""
        from ..client import props
        from ..client.task_reads import read_task_infos, task_finished

        conn = self.holder.connection()
        manager = conn.content.taskManager
        if manager is None:
            return []
        recent = props.read(conn, manager, ["recentTask"]).get("recentTask") or []
        return [task for task, info in read_task_infos(conn, recent).items()
                if info is not None and not task_finished(info) and info.entityName in templates
                # descriptionId: "VirtualMachine.clone" / "VirtualMachine.instantClone" on a vCenter.
                and "clone" in str(info.descriptionId or info.name or "").lower()]

    def collapse_sources(self, entries: Collection[LedgerEntry]) -> None:
        """Collapse the delta disks clones left on their sources, as each clone's collapse setting asks.

        Only instant clones add delta disks to their source (linked ones branch off a snapshot, full
        ones copy). A source with a clone still alive (kept, or not destroyed) is left alone: a
        collapse must wait until every clone of the source is gone.
        """
        from ..client.teardown import collapse

        grown: dict[str, set[str]] = {}
        alive: set[str] = set()
        for entry in entries:
            if entry.clone_type in GROWS_SOURCE and entry.collapse != "none":
                grown.setdefault(entry.template, set()).add(entry.collapse)
            if entry.state == "kept" or entry.live:
                alive.add(entry.template)
        for name in sorted(grown):
            # Clones of one source that asked for different modes: promote also merges what a
            # snapshot collapse would, so it wins.
            mode = "promote" if "promote" in grown[name] else "snapshot"
            if name in alive:
                self.reporter.warn(f"did not collapse {name} ({mode}): clones of it were kept and still use its delta "
                              f"disks; run `vsphere-clone collapse {name}` once they are gone")
                continue
            try:
                template = self.templates.template(name)
                collapse(self.holder.connection(), template.ref, mode, timeout=self.defaults.clone_timeout)
            except _teardown_errors() as exc:
                self._error(f"could not collapse {name} ({mode}): {one_line(exc)}")
            else:
                self.reporter.progress(f"collapsed the delta disks of {name} ({mode})")

    def _error(self, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            self.errors.append(message)


@dataclass
class _Lookup:
    """What the sweep found of clones without a moref: name -> VM, and name -> why it cannot tell."""

    found: dict[str, Any] = field(default_factory=dict)
    unsettled: dict[str, str] = field(default_factory=dict)


def _base_name(template: str) -> str:
    """The VM name of a template given by name or inventory path (what a task's entityName says)."""
    return template.rstrip("/").rsplit("/", 1)[-1]


def _teardown_errors() -> tuple[type[BaseException], ...]:
    """What a failed destroy, sweep or collapse may raise and must not let escape.

    A fault such as NoPermission on Destroy_Task, a dropped connection, or a client-side error
    reading a server's answer (a pyVmomi TypeError for an object type it refuses) must end up as
    one summary line, not as a traceback out of a fixture finalizer or pytest_sessionfinish
    (which would also skip the other clones' teardown). Interrupts still go through.
    """
    return (Exception,)
