"""The run's owner (the analogue of xdist's dsession): the controller, or the only process without xdist.

It makes the run's directory and id, starts the bundled simulator when asked, checks the set-up before
any test, reaps what earlier runs on this machine left, and at the end destroys whatever the ledger
says may still exist, collapses the sources and prints the summary. Workers make and destroy their own
clones; what a dead worker leaves, the controller sweeps.
"""

from __future__ import annotations

import secrets
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from ..tempdirs import make_owned_tempdir, sweep_orphans
from .embedded import Facts, start_simulator
from .identity import RunIdentity

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .run import VSphereRun
    from .run_report import RunReport
    from .settings import Settings

RUN_DIR_PREFIX = "vsphere-clone-run-"


class Controller:
    """The owner's hooks; see the module docstring. :meth:`attach` gives it the process's run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.collect_only = bool(config.option.collectonly)
        controls_workers = bool(getattr(config.option, "numprocesses", None)) and \
            getattr(config.option, "dist", "no") != "no"
        run_id = secrets.token_hex(3)
        sweep_orphans(RUN_DIR_PREFIX)  # run dirs of killed runs on this machine
        self.identity = RunIdentity(run_id=run_id, run_dir=make_owned_tempdir(f"{RUN_DIR_PREFIX}{run_id}-"),
                                    controls_workers=controls_workers)
        self.simulator: Simulator | None = None
        self.facts: Facts = {}
        if settings.simulator and not self.collect_only:
            try:
                self.simulator, self.facts = start_simulator()
            except BaseException:
                shutil.rmtree(self.identity.run_dir, ignore_errors=True)
                raise
        self._run: VSphereRun | None = None
        #: The JSON run report (--vsphere-report), written at the end of the run.
        self.run_report: RunReport | None = None

    @property
    def run(self) -> VSphereRun:
        assert self._run is not None, "Controller.attach() was not called"
        return self._run

    def attach(self, run: VSphereRun) -> None:
        self._run = run

    def worker_input(self) -> dict[str, Any]:
        """What every xdist worker needs from the controller (secrets stay in memory, never in files)."""
        import json

        return {"vsphere_run_id": self.identity.run_id, "vsphere_run_dir": str(self.identity.run_dir),
                "vsphere_facts": json.dumps(self.facts)}

    # --- start ---------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.collect_only:
            self._check_setup()

    def _check_setup(self) -> None:
        """Fail the run early, with one line naming the fix, when the set-up cannot work."""
        from pyVmomi import vmodl

        from ..client import faults
        from ..client.errors import VSphereCloneError

        run = self.run
        wanted = {(name, run.settings) for name in run.settings.template}
        for named in run.named.values():
            wanted.update((name, named) for name in named.template)
        try:
            # Sorted by name: the first error is the same from run to run.
            for name, settings in sorted(wanted, key=lambda pair: pair[0]):
                run.provisioner.check_source(name, settings)
        except VSphereCloneError as exc:
            self.shutdown()
            raise pytest.UsageError(str(exc)) from None
        except vmodl.MethodFault as fault:
            # A fault no check translated (e.g. the inventory's container view refused): still one
            # line, not an INTERNALERROR traceback.
            self.shutdown()
            raise pytest.UsageError(f"checking the templates on the vCenter failed: {faults.describe(fault)}") \
                from None
        self._reap_own_leftovers()

    def _reap_own_leftovers(self) -> None:
        """Destroy clones that earlier runs on this machine left (killed runs): expired or orphaned."""
        import socket

        from ..client import faults
        from ..client.errors import VSphereCloneError
        from ..client.teardown import destroy, list_marked

        run = self.run
        try:
            conn = run.holder.connection()
            mine = [vm for vm in list_marked(conn, include_extra_config=True)
                    if vm.marker.host == socket.gethostname() and vm.marker.run_id != self.identity.run_id
                    and (vm.marker.is_expired() or vm.marker.is_orphaned())]
            for vm in mine:
                destroy(conn, vm.ref, waiter=run.holder.waiter(), timeout=run.settings.clone_timeout)
        except Exception as exc:  # a fault here must not stop the run: reap can do it later
            why = str(exc) if isinstance(exc, VSphereCloneError) else faults.describe(exc)
            run.reporter.warn(f"could not reap clones left by earlier runs: {why}")
            return
        if mine:
            run.reporter.progress(f"destroyed {len(mine)} clone(s) left by earlier runs on this machine: "
                                  f"{', '.join(vm.name for vm in mine)}")

    # --- end -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.collect_only:
            return
        run = self.run
        leftovers = run.ledger.live()
        if leftovers:
            count = run.janitor.sweep(leftovers, reason="end of run")
            if count:
                run.reporter.progress(f"destroyed {count} clone(s) left at the end of the run")
        run.janitor.collapse_sources(run.ledger.entries().values())
        if run.janitor.errors and session.exitstatus == pytest.ExitCode.OK:
            # A clone that could not be destroyed is a leak on a shared vCenter: CI must notice.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._write_run_report(session)

    def _write_run_report(self, session: pytest.Session) -> None:
        """The JSON run report, once every clone's fate is known; one that cannot be written is an error line
        in the summary and fails the run (CI relies on the file)."""
        report, path = self.run_report, self.run.settings.report
        if report is None or path is None:
            return
        run = self.run
        document = report.document(run.ledger.entries(), run.janitor.errors, run.reporter.warnings,
                                   int(session.exitstatus))
        try:
            report.write(path, document)
        except OSError as exc:
            run.janitor.errors.append(f"could not write the run report {path}: {exc.strerror or exc}")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        run.reporter.progress(f"run report written to {path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.collect_only:
            return
        from .summary import summary_lines

        run = self.run
        lines = summary_lines(run.ledger.entries(), run.janitor.kept, run.janitor.errors, run.reporter.warnings)
        if lines:
            terminalreporter.write_sep("-", "vSphere clones")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Close this process's session, stop the simulator, remove the run's files (idempotent)."""
        if self._run is not None:
            self._run.shutdown()
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        shutil.rmtree(self.identity.run_dir, ignore_errors=True)


class XdistController:
    """Controller-side xdist hooks (registered only when xdist runs workers)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._told: set[tuple[str, str]] = set()

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.controller.worker_input())

    def _relay_progress(self) -> None:
        """Workers cannot write to the terminal: tell what their ledger lines say, once each."""
        run = self.controller.run
        for entry in run.ledger.entries().values():
            step = "ready" if entry.ip else "creating"
            if (entry.name, step) in self._told:
                continue
            self._told.add((entry.name, step))
            if step == "creating":
                run.reporter.progress(f"{entry.name}: cloning {entry.template} ({entry.worker})")
            else:
                timings = ", ".join(f"{phase} {seconds:.2f}s" for phase, seconds in entry.timings.items())
                run.reporter.progress(f"{entry.name}: ready at {entry.ip} ({timings})")

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._relay_progress()

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._relay_progress()

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        if not error:
            return
        run = self.controller.run
        worker = node.workerinput.get("workerid", "")
        entries = [e for e in run.ledger.live(worker) if e.scope != "session"]
        count = run.janitor.sweep(entries, reason=f"worker {worker} died")
        if count:
            run.reporter.progress(f"worker {worker} died: destroyed its {count} clone(s)")
