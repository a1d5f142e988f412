"""One run of the plugin in one process: controller, xdist worker, or a run without xdist.

The controller (or the lone process) owns the run: it starts the simulator if
asked, checks the set-up before any test, and at the end destroys whatever the
ledger says may still exist and collapses the sources. Workers create clones
and destroy their own; what they leave (dying, killed) the controller sweeps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..tempdirs import make_owned_tempdir, sweep_orphans
from .janitor import Janitor
from .ledger import Ledger
from .options import PYTEST_SCOPES
from .provision import Provisioner
from .settings import Settings

if TYPE_CHECKING:
    from ..client.session import VSphereConnection
    from ..client.waiter import Waiter
    from ..simulator import Simulator
    from .clone import Clone

log = logging.getLogger(__name__)

RUN_DIR_PREFIX = "vsphere-clone-run-"



class VSphereRun:
    """Per-process state of the run and the pytest hooks that drive it."""

    def __init__(self, config: pytest.Config, settings: Settings, named: dict[str, Settings]) -> None:
        self.config = config
        self.base_settings = settings
        self.settings = settings
        self.named = named
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self.worker_id = os.environ.get("PYTEST_XDIST_WORKER", "master") if self.is_worker else "master"
        self.uses_xdist = not self.is_worker and bool(getattr(config.option, "numprocesses", None)) and \
            getattr(config.option, "dist", "no") != "no"
        self.simulator: Simulator | None = None
        self._facts: dict[str, Any] = {}
        self._conn: VSphereConnection | None = None
        self._waiter: Waiter | None = None
        self._conn_lock = threading.Lock()
        self.collect_only = bool(config.option.collectonly)
        if workerinput is not None:
            self.run_id = str(workerinput["vsphere_run_id"])
            self.run_dir = Path(workerinput["vsphere_run_dir"])
            self._facts = json.loads(workerinput.get("vsphere_facts", "{}"))
            if self._facts:
                self._apply_facts()
        else:
            self.run_id = secrets.token_hex(3)
            sweep_orphans(RUN_DIR_PREFIX)  # run dirs of killed runs on this machine
            self.run_dir = make_owned_tempdir(f"{RUN_DIR_PREFIX}{self.run_id}-")
        self.ledger = Ledger(self.run_dir / "ledger.jsonl")
        self.provisioner = Provisioner(self)
        self.janitor = Janitor(self)
        self.used_templates: set[str] = set()
        self.warnings: list[str] = []
        self._previous_sigterm: Any = None
        if not self.is_worker and not self.collect_only and settings.simulator:
            self._start_simulator()
        if self.uses_xdist:
            config.pluginmanager.register(XdistController(self), "vsphere-clone-xdist")

    # --- owner-only set-up ------------------------------------------------------------

    @property
    def owns_run(self) -> bool:
        """True in the controller, or in the only process when xdist is not used."""
        return not self.is_worker

    def _start_simulator(self) -> None:
        from ..simulator import Simulator, SimulatorConfig
        from ..simulator.guests import guest_support_problem

        problem = guest_support_problem()
        if problem:
            raise pytest.UsageError(f"--vsphere-simulator runs real guests, which cannot run here ({problem}): run "
                                    "pytest as root after .ci/setup, or point --vsphere-host at a vCenter")
        try:
            self.simulator = Simulator(SimulatorConfig(guests=True)).start()
        except PermissionError as exc:
            raise pytest.UsageError(f"--vsphere-simulator runs real guests and needs root ({exc}); run pytest as "
                                    "root, or point --vsphere-host at a vCenter") from None
        facts = self.simulator.connection_facts()
        self._facts = {"host": facts["HOST"], "user": facts["USER"], "password": facts["PASSWORD"],
                       "ca_bundle": facts["CA_FILE"], "guest_user": facts.get("GUEST_USER"),
                       "guest_password": facts.get("GUEST_PASSWORD"),
                       "windows_guest_user": facts.get("WINDOWS_GUEST_USER"),
                       "windows_guest_password": facts.get("WINDOWS_GUEST_PASSWORD")}
        self._apply_facts()

    def _apply_facts(self) -> None:
        """Point the run's settings, named fixtures' too, at the simulator."""
        self.settings = self.base_settings.replace(**_facts_to_settings(self._facts, self.base_settings))
        self.named = {name: s.replace(**_facts_to_settings(self._facts, s)) for name, s in self.named.items()}

    def worker_input(self) -> dict[str, Any]:
        """What every xdist worker needs from the controller (secrets stay in memory)."""
        return {"vsphere_run_id": self.run_id, "vsphere_run_dir": str(self.run_dir),
                "vsphere_facts": json.dumps(self._facts)}

    def settings_for_os(self, settings: Settings, os_family: str) -> Settings:
        """The simulator's Windows guests have their own account; the user's own setting always wins."""
        if os_family != "windows" or not self._facts.get("windows_guest_user"):
            return settings
        if settings.guest_user != self._facts.get("guest_user"):
            return settings
        return settings.replace(guest_user=self._facts["windows_guest_user"],
                                guest_password=self._facts["windows_guest_password"])

    # --- connection -------------------------------------------------------------------

    def connection(self) -> VSphereConnection:
        """This process's vSphere session, opened on first use."""
        with self._conn_lock:
            if self._conn is None:
                from ..client.session import VSphereConnection

                s = self.settings
                if not s.host or not s.user:
                    raise pytest.UsageError("set --vsphere-host and --vsphere-user (or use --vsphere-simulator)")
                self._conn = VSphereConnection(s.host, s.user, s.password or "", insecure=s.insecure,
                                               ca_bundle=s.ca_bundle, timeout=max(60.0, s.connect_timeout),
                                               connect_timeout=s.connect_timeout).connect()
            return self._conn

    def waiter(self) -> Waiter:
        """This process's one Waiter (one PropertyCollector for every task and property wait)."""
        if self._waiter is None:
            from ..client.waiter import Waiter

            self._waiter = Waiter(self.connection())
        return self._waiter

    # --- output -----------------------------------------------------------------------

    def progress(self, message: str) -> None:
        """A progress line while clones are created (only the process that owns the terminal prints)."""
        log.info("vsphere-clone: %s", message)
        if self.is_worker:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.config.option.verbose < 0:
            return
        # Clones are made inside fixtures, where pytest captures the terminal's file descriptors:
        # without suspending capture the line would end up in the test's captured output.
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with suspended:
            writer = getattr(reporter, "_tw", None)
            if writer is not None and writer.width_of_current_line:
                reporter.write("\n")  # the test's progress dots leave the line open
            reporter.write_line(f"vsphere-clone: {message}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("vsphere-clone: %s", message)

    # --- hooks ------------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "vsphere_template" not in metafunc.fixturenames:
            return
        templates = list(self.settings.template)
        if len(templates) > 1:
            # ids are template names: identical in every xdist worker (never IPs).
            metafunc.parametrize("vsphere_template", templates, ids=templates, indirect=True,
                                 scope=PYTEST_SCOPES[self.settings.scope])  # type: ignore[arg-type]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.collect_only:
            return
        self._install_signal_handlers()
        if self.owns_run:
            self._check_setup()

    def _check_setup(self) -> None:
        """Fail the run early, with one line naming the fix, when the set-up cannot work."""
        from pyVmomi import vmodl

        from ..client import faults
        from ..client.errors import VSphereCloneError

        wanted = {(name, self.settings) for name in self.settings.template}
        for named in self.named.values():
            wanted.update((name, named) for name in named.template)
        try:
            # Sorted by name: the first error is the same from run to run.
            for name, settings in sorted(wanted, key=lambda pair: pair[0]):
                self.provisioner.check_source(name, settings)
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

        try:
            mine = [vm for vm in list_marked(self.connection(), include_extra_config=True)
                    if vm.marker.host == socket.gethostname() and vm.marker.run_id != self.run_id
                    and (vm.marker.is_expired() or vm.marker.is_orphaned())]
            for vm in mine:
                destroy(self.connection(), vm.ref, waiter=self.waiter(), timeout=self.settings.clone_timeout)
        except Exception as exc:  # a fault here must not stop the run: reap can do it later
            why = str(exc) if isinstance(exc, VSphereCloneError) else faults.describe(exc)
            self.warn(f"could not reap clones left by earlier runs: {why}")
            return
        if mine:
            self.progress(f"destroyed {len(mine)} clone(s) left by earlier runs on this machine: "
                          f"{', '.join(vm.name for vm in mine)}")

    def _install_signal_handlers(self) -> None:
        # pytest runs no finalizers on SIGTERM (pytest #5243): turn it into KeyboardInterrupt,
        # which unwinds through fixture teardown and session finish.
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one teardown is enough
            raise KeyboardInterrupt(f"signal {signum}")

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_term)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.failed:
            from .clone import Clone

            for value in getattr(item, "funcargs", {}).values():
                if isinstance(value, Clone):
                    value.failed = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.collect_only:
            return
        if self.owns_run:
            leftovers = [e for e in self.ledger.live()]
            if leftovers:
                count = self.janitor.sweep(leftovers, reason="end of run")
                if count:
                    self.progress(f"destroyed {count} clone(s) left at the end of the run")
            self.janitor.collapse_sources(self.ledger.entries().values())
            if self.janitor.errors and session.exitstatus == pytest.ExitCode.OK:
                # A clone that could not be destroyed is a leak on a shared vCenter: CI must notice.
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.owns_run or self.collect_only:
            return
        from .summary import summary_lines

        lines = summary_lines(self.ledger.entries(), self.janitor.kept, self.janitor.errors, self.warnings)
        if lines:
            terminalreporter.write_sep("-", "vSphere clones")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Close the session, stop the simulator, remove the run's files (owner only)."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self.owns_run:
            if self.simulator is not None:
                self.simulator.stop()
                self.simulator = None
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- clones for fixtures -------------------------------------------------------------

    def clone_for(self, request: pytest.FixtureRequest, settings: Settings, template: str, scope: str) -> Clone:
        """A clone for a fixture; released (kept or destroyed) when the fixture's scope ends."""
        from ..client.errors import VSphereCloneError

        if scope == "session" and (self.is_worker or self.uses_xdist):
            return self.shared_clone(request, settings, template)
        try:
            clone = self.provisioner.create(settings, template, scope, request)
        except VSphereCloneError as exc:
            failure = str(exc)
        else:
            failure = ""
        if failure:
            pytest.fail(failure, pytrace=False)
        self.used_templates.add(template)
        request.addfinalizer(lambda: self.janitor.release(clone))
        return clone

    def shared_clone(self, request: pytest.FixtureRequest, settings: Settings, template: str) -> Clone:
        """The run's one clone of ``template`` shared by every worker (scope=session under xdist)."""
        from filelock import FileLock

        from ..client.errors import VSphereCloneError
        from ..client.marker import Marker
        from .clone import Clone

        safe = "".join(c if c.isalnum() else "_" for c in template)
        info_file = self.run_dir / f"session-{safe}.json"
        with FileLock(str(self.run_dir / f"session-{safe}.lock")):
            if info_file.exists():
                info = json.loads(info_file.read_text())
                if "error" in info:
                    pytest.fail(info["error"], pytrace=False)
                clone = Clone(name=info["name"], moref=info["moref"], ip=info["ip"], os=info["os"],
                              template=template, clone_type=info["clone_type"], timings=info["timings"],
                              host_keys=tuple(info["host_keys"]), owned=False,
                              marker=Marker.parse(info.get("marker")), _conn=self.connection(), _settings=settings)
            else:
                try:
                    clone = self.provisioner.create(settings, template, "session", request)
                except VSphereCloneError as exc:
                    info_file.write_text(json.dumps({"error": str(exc)}))
                    failure = str(exc)
                else:
                    failure = ""
                if failure:
                    pytest.fail(failure, pytrace=False)
                # Made here, destroyed by the controller once every worker is done.
                clone.owned = False
                info_file.write_text(json.dumps({
                    "name": clone.name, "moref": clone.moref, "ip": clone.ip, "os": clone.os,
                    "clone_type": clone.clone_type, "timings": clone.timings, "host_keys": list(clone.host_keys),
                    "marker": clone.marker.encode() if clone.marker else None}))
        # Each worker's release is a vote on --vsphere-keep; the controller destroys it otherwise.
        request.addfinalizer(lambda: self.janitor.release(clone))
        return clone


class XdistController:
    """Controller-side xdist hooks (registered only when xdist runs workers)."""

    def __init__(self, run: VSphereRun) -> None:
        self.run = run
        self._told: set[tuple[str, str]] = set()

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.run.worker_input())

    def _relay_progress(self) -> None:
        """Workers cannot write to the terminal: tell what their ledger lines say, once each."""
        for entry in self.run.ledger.entries().values():
            step = "ready" if entry.ip else "creating"
            if (entry.name, step) in self._told:
                continue
            self._told.add((entry.name, step))
            if step == "creating":
                self.run.progress(f"{entry.name}: cloning {entry.template} ({entry.worker})")
            else:
                timings = ", ".join(f"{phase} {seconds:.2f}s" for phase, seconds in entry.timings.items())
                self.run.progress(f"{entry.name}: ready at {entry.ip} ({timings})")

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._relay_progress()

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._relay_progress()

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        if not error:
            return
        worker = node.workerinput.get("workerid", "")
        entries = [e for e in self.run.ledger.live(worker) if e.scope != "session"]
        count = self.run.janitor.sweep(entries, reason=f"worker {worker} died")
        if count:
            self.run.progress(f"worker {worker} died: destroyed its {count} clone(s)")


def _facts_to_settings(facts: dict[str, Any], base: Settings | None = None) -> dict[str, Any]:
    """Settings the simulator dictates; the user's own guest credentials win if given."""
    changes: dict[str, Any] = {"host": facts["host"], "user": facts["user"], "password": facts["password"],
                               "ca_bundle": Path(facts["ca_bundle"]), "insecure": False}
    if base is None or not base.guest_user:
        changes["guest_user"] = facts.get("guest_user")
        changes["guest_password"] = facts.get("guest_password")
    return changes
