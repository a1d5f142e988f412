"""The bundled simulator as the run's vCenter (--vsphere-simulator): start it, and the settings it dictates."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .settings import Settings

#: What the controller hands every worker about the simulator: its address and accounts.
Facts = dict[str, Any]


def run_without_root(config: pytest.Config) -> int | None:
    """For ``--vsphere-simulator`` as an ordinary user: this very pytest command run inside a user
    namespace of its own (simulator/userns.py), and its exit status; None where nothing is needed
    (root, already inside, no simulator, or a run that starts none)."""
    if os.geteuid() == 0 or hasattr(config, "workerinput") or not _wants_simulator(config):
        return None
    from ..simulator import userns

    if not userns.needed():
        return None
    if tuple(config.invocation_params.args) != tuple(sys.argv[1:]):
        raise pytest.UsageError("--vsphere-simulator without root re-runs the pytest command in a user "
                                "namespace: run pytest from the command line (not pytest.main()), or as root")
    try:
        return userns.run_inside([sys.executable, *sys.orig_argv[1:]])
    except userns.NamespaceRefused as exc:
        raise pytest.UsageError(f"--vsphere-simulator without root runs in a user namespace, which {exc}") from None


def _wants_simulator(config: pytest.Config) -> bool:
    """True when this run starts the bundled simulator (the setting from anywhere, and tests to run)."""
    option = config.option
    if any(getattr(option, name, False) for name in ("help", "version", "collectonly", "showfixtures", "markers")):
        return False
    if (config.getoption("vsphere_simulator") is None and "VSPHERE_SIMULATOR" not in os.environ
            and not config.getini("vsphere_simulator")):
        return False  # the usual case: nothing more to read
    from .options import OPTIONS
    from .settings import SettingsError, resolve

    cli = {o.name: config.getoption(f"vsphere_{o.attr}") for o in OPTIONS}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    try:
        return bool(resolve(cli, ini).simulator)
    except SettingsError:
        return False  # pytest_configure reports it


def start_simulator() -> tuple[Simulator, Facts]:
    """A running simulator with real guests and its facts; a usage error naming the fix where it cannot run."""
    from ..simulator import Simulator, SimulatorConfig
    from ..simulator.guests import guest_support_problem

    problem = guest_support_problem()
    if problem:
        raise pytest.UsageError(f"--vsphere-simulator runs real guests, which cannot run here ({problem}): run "
                                "pytest as root after .ci/setup, or point --vsphere-host at a vCenter")
    try:
        simulator = Simulator(SimulatorConfig(guests=True)).start()
    except PermissionError as exc:
        raise pytest.UsageError(f"--vsphere-simulator runs real guests and needs root ({exc}); run pytest as "
                                "root, or point --vsphere-host at a vCenter") from None
    facts = simulator.connection_facts()
    return simulator, {"host": facts["HOST"], "user": facts["USER"], "password": facts["PASSWORD"],
                       "ca_bundle": facts["CA_FILE"], "guest_user": facts.get("GUEST_USER"),
                       "guest_password": facts.get("GUEST_PASSWORD"),
                       "windows_guest_user": facts.get("WINDOWS_GUEST_USER"),
                       "windows_guest_password": facts.get("WINDOWS_GUEST_PASSWORD")}


def apply_facts(settings: Settings, named: dict[str, Settings],
                facts: Facts) -> tuple[Settings, dict[str, Settings]]:
    """The run's settings, and the named fixtures', pointed at the simulator (nothing without facts)."""
    if not facts:
        return settings, named
    return (settings.replace(**_dictated(facts, settings)),
            {name: s.replace(**_dictated(facts, s)) for name, s in named.items()})


def for_os(facts: Facts) -> Any:
    """``(settings, os_family) -> settings``: the simulator's Windows guests have their own account;
    the user's own guest setting always wins."""

    def settings_for(settings: Settings, os_family: str) -> Settings:
        if os_family != "windows" or not facts.get("windows_guest_user"):
            return settings
        if settings.guest_user != facts.get("guest_user"):
            return settings
        return settings.replace(guest_user=facts["windows_guest_user"],
                                guest_password=facts["windows_guest_password"])

    return settings_for


def _dictated(facts: Facts, base: Settings) -> dict[str, Any]:
    """Settings the simulator dictates; the user's own guest credentials win if given."""
    changes: dict[str, Any] = {"host": facts["host"], "user": facts["user"], "password": facts["password"],
                               "ca_bundle": Path(facts["ca_bundle"]), "insecure": False}
    if not base.guest_user:
        changes["guest_user"] = facts.get("guest_user")
        changes["guest_password"] = facts.get("guest_password")
    return changes
