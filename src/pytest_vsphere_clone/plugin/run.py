"""One process's part in the run: its collaborators, the hooks every process has, and clones for fixtures.

Built once per process by the plugin's ``pytest_configure``: the connection holder, the ledger,
the template catalog, the janitor and the provisioner, each given what it depends on. The run's
owner (:mod:`.controller`) and an xdist worker (:mod:`.worker`) differ only in where the run's
identity comes from and in the owner's own hooks.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

import pytest

from .connection_holder import ConnectionHolder
from .embedded import Facts, for_os
from .janitor import Janitor
from .ledger import Ledger
from .provision import Provisioner
from .reporter import Reporter
from .templates import TemplateCatalog
from .vm_clones import VmClones, VmKey

if TYPE_CHECKING:
    from .clone import Clone
    from .identity import RunIdentity
    from .marker import VmMarker
    from .settings import Settings

log = logging.getLogger(__name__)


class VSphereRun:
    """Per-process state of the run and the pytest hooks every process of it has."""

    def __init__(self, config: pytest.Config, settings: Settings, named: dict[str, Settings],
                 identity: RunIdentity, facts: Facts) -> None:
        self.config = config
        self.settings = settings
        self.named = named
        self.identity = identity
        self.collect_only = bool(config.option.collectonly)
        self.reporter = Reporter(config, owns_terminal=not identity.is_worker)
        self.holder = ConnectionHolder(settings)
        self.ledger = Ledger(identity.run_dir / "ledger.jsonl")
        self.templates = TemplateCatalog(self.holder)
        self.janitor = Janitor(self.holder, self.ledger, self.reporter, self.templates, config.hook,
                               run_id=identity.run_id, defaults=settings)
        self.provisioner = Provisioner(self.holder, self.ledger, self.reporter, self.janitor, self.templates,
                                       config.hook, run_id=identity.run_id, worker_id=identity.worker_id,
                                       for_os=for_os(facts))
        self.used_templates: set[str] = set()
        self.vm_clones = VmClones(self._make_vm, self.janitor.release)
        #: (template, settings) whose source was checked as at the run's start.
        self._sources_checked: set[tuple[str, Settings]] = set()
        self._previous_sigterm: Any = None

    # --- hooks ------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.collect_only:
            self._install_signal_handlers()

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
            from .reports import clones_of

            # Every clone the test used: its fixtures' and its factory's (keep=on-failure keeps them all).
            for _, clone in clones_of(item):
                clone.failed = True

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Close this process's session and restore the SIGTERM handler (idempotent)."""
        self.holder.close()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # --- clones for fixtures -------------------------------------------------------------

    @property
    def shares_session(self) -> bool:
        """True when scope=session means one clone for several processes (xdist); else it is the worker's."""
        return self.identity.is_worker or self.identity.controls_workers

    def vm_for(self, request: pytest.FixtureRequest, template: str, marker: VmMarker | None) -> Clone:
        """``vsphere_vm``'s clone: the run's, or the one for the test's marker; shared by equal requests
        within its scope and released when that scope ends (see vm_clones.py)."""
        settings = marker.settings if marker is not None else self.settings
        scope = settings.scope
        if scope == "session" and not self.shares_session:
            scope = "worker"  # one process: the same clone as worker scope
        return self.vm_clones.get(request, template, settings, scope)

    def _make_vm(self, request: pytest.FixtureRequest, key: VmKey) -> Clone:
        """A new clone for ``key``; raises VSphereCloneError with a one-line reason."""
        if key.settings != self.settings.replace(template=(key.template,)):
            # A marker's settings: its source is checked once, as the run's were at the start.
            self._check_source(key.template, key.settings)
        return self._new_clone(request, key.settings, key.template, key.scope, key.digest())

    def _check_source(self, template: str, settings: Settings) -> None:
        from pyVmomi import vmodl

        from ..client import faults
        from ..client.errors import VSphereCloneError

        if (template, settings) in self._sources_checked:
            return
        try:
            self.provisioner.check_source(template, settings)
        except vmodl.MethodFault as fault:  # one line, as at the start, not a traceback
            raise VSphereCloneError(f"checking template {template!r} on the vCenter failed: "
                                    f"{faults.describe(fault)}") from None
        self._sources_checked.add((template, settings))

    def clone_for(self, request: pytest.FixtureRequest, settings: Settings, template: str, scope: str) -> Clone:
        """A clone for a fixture; released (kept or destroyed) when the fixture's scope ends."""
        from ..client.errors import VSphereCloneError

        # Tells a named fixture's session clone from another's, or from vsphere_vm's, with other settings.
        shared_key = VmKey(template, settings.replace(template=(template,)), scope, "").digest()
        try:
            clone = self._new_clone(request, settings, template, scope, shared_key)
        except VSphereCloneError as exc:
            failure = str(exc)
        else:
            failure = ""
        if failure:
            pytest.fail(failure, pytrace=False)
        request.addfinalizer(lambda: self.janitor.release(clone))
        return clone

    def _new_clone(self, request: pytest.FixtureRequest, settings: Settings, template: str, scope: str,
                   shared_key: str) -> Clone:
        """A ready clone, or under xdist with scope=session the run's shared one; raises VSphereCloneError."""
        if scope == "session" and self.shares_session:
            return self._shared_clone(request, settings, template, shared_key)
        clone = self.provisioner.create(settings, template, scope, request)
        self.used_templates.add(template)
        return clone

    def _shared_clone(self, request: pytest.FixtureRequest, settings: Settings, template: str, key: str) -> Clone:
        """The run's one clone of ``template`` with these settings, shared by every worker (scope=session
        under xdist): the first worker makes it, the others read it from the run directory. ``key``
        tells settings apart (a marker's from the run's); the same in every worker."""
        from filelock import FileLock

        from ..client.errors import VSphereCloneError
        from ..client.marker import Marker
        from .clone import Clone

        safe = "".join(c if c.isalnum() else "_" for c in template) + f"-{key}"
        info_file = self.identity.run_dir / f"session-{safe}.json"
        with FileLock(str(self.identity.run_dir / f"session-{safe}.lock")):
            if info_file.exists():
                info = json.loads(info_file.read_text())
                if "error" in info:
                    raise VSphereCloneError(info["error"])
                clone = Clone(name=info["name"], moref=info["moref"], ip=info["ip"], os=info["os"],
                              template=template, clone_type=info["clone_type"], timings=info["timings"],
                              host_keys=tuple(info["host_keys"]), owned=False,
                              marker=Marker.parse(info.get("marker")), _conn=self.holder.connection(),
                              _settings=settings)
            else:
                try:
                    clone = self.provisioner.create(settings, template, "session", request)
                except VSphereCloneError as exc:
                    info_file.write_text(json.dumps({"error": str(exc)}))
                    raise
                # Made here, destroyed by the controller once every worker is done.
                clone.owned = False
                info_file.write_text(json.dumps({
                    "name": clone.name, "moref": clone.moref, "ip": clone.ip, "os": clone.os,
                    "clone_type": clone.clone_type, "timings": clone.timings, "host_keys": list(clone.host_keys),
                    "marker": clone.marker.encode() if clone.marker else None}))
        # Each worker's release is a vote on --vsphere-keep; the controller destroys it otherwise.
        return clone
