"""The pytest plugin (entry point ``pytest11: vsphere_clone``).

Importing this module must stay cheap: pyVmomi, paramiko and winrm are
imported only when a vSphere fixture or command needs them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from . import hookspecs
from .fixtures import named_fixtures_plugin, vsphere_service_instance, vsphere_template, vsphere_vm, vsphere_vm_factory
from .keys import CONTROLLER_PLUGIN, RUN_PLUGIN, RUN_REPORT_PLUGIN, SETTINGS_KEY, XDIST_PLUGIN
from .marker import MARKER, MARKER_HELP
from .options import GROUPS, OPTIONS
from .testinfra_host import vsphere_testinfra_host

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["vsphere_service_instance", "vsphere_template", "vsphere_testinfra_host", "vsphere_vm", "vsphere_vm_factory"]

#: The template the bundled simulator offers when none is named.
SIMULATOR_DEFAULT_TEMPLATE = "linux-template"



def pytest_addoption(parser: pytest.Parser) -> None:
    groups = {name: parser.getgroup(f"vsphere-{name}", f"vSphere clones: {name}") for name in GROUPS}
    for option in OPTIONS:
        group = groups[option.group]
        help_text = option.help
        if option.choices:
            help_text += f" One of: {', '.join(option.choices)}."
        if option.default not in (None, False, ()):
            help_text += f" Default: {option.default}."
        help_text += f" Also ini {option.ini}, env {option.env}."
        if option.kind == "bool":
            # A plain flag: an optional value would swallow the test path that follows it.
            group.addoption(option.cli, dest=f"vsphere_{option.attr}", action="store_const", const="true",
                            default=None, help=help_text)
        elif option.repeatable:
            group.addoption(option.cli, dest=f"vsphere_{option.attr}", action="append", default=None,
                            metavar=option.metavar or option.attr.upper(), help=help_text)
        else:
            group.addoption(option.cli, dest=f"vsphere_{option.attr}", default=None,
                            metavar=option.metavar or option.attr.upper(), help=help_text)
        if option.repeatable:
            parser.addini(option.ini, help=help_text, type="linelist", default=[])
        else:
            parser.addini(option.ini, help=help_text, type="string", default="")
    parser.addini("vsphere_fixtures", type="linelist", default=[],
                  help="Named clone fixtures, one per line: 'NAME: template=T clone_type=instant scope=function'.")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Without root, --vsphere-simulator re-runs this command in a user namespace (see embedded.py)."""
    if os.geteuid() == 0:
        return None
    from .embedded import run_without_root

    return run_without_root(config)


def _raw_values(config: pytest.Config) -> tuple[dict[str, object], dict[str, object]]:
    cli = {o.name: config.getoption(f"vsphere_{o.attr}") for o in OPTIONS}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    return cli, ini


def _nothing_configured(cli: dict[str, object], ini: dict[str, object], config: pytest.Config) -> bool:
    """True when no vSphere setting is given anywhere: the plugin then loads nothing more."""
    if any(v is not None for v in cli.values()) or any(v not in ("", []) for v in ini.values()):
        return False
    if config.getini("vsphere_fixtures"):
        return False
    return not any(key.startswith("VSPHERE_") for key in os.environ)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Registered whether the plugin is in use or not: `pytest --markers` lists it, --strict-markers accepts it.
    config.addinivalue_line("markers", MARKER_HELP)
    cli, ini = _raw_values(config)
    if _nothing_configured(cli, ini, config):
        return  # the usual case for a project that has the plugin installed but not in use
    from .settings import SettingsError, parse_named_fixtures, resolve

    try:
        settings = resolve(cli, ini)
        if settings.simulator and not settings.template:
            # The simulator's default template serves vsphere_vm even when named fixtures exist too.
            settings = settings.replace(template=(SIMULATOR_DEFAULT_TEMPLATE,))
        named = parse_named_fixtures(config.getini("vsphere_fixtures"), settings)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    if not (settings.template or named):
        return  # the plugin stays idle: nothing is imported, nothing is created
    _start_run(config, settings, named)
    if named:
        config.pluginmanager.register(named_fixtures_plugin(named), "vsphere-clone-named-fixtures")


def _start_run(config: pytest.Config, settings: Settings, named: dict[str, Settings]) -> None:
    """Register this process's run: in a worker it joins the controller's run; otherwise this process
    owns the run (its controller, registered beside it, starts the simulator when asked)."""
    from .embedded import apply_facts
    from .reports import register as register_reports
    from .run import VSphereRun

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from .worker import join_run

        identity, facts = join_run(workerinput)
        settings, named = apply_facts(settings, named, facts)
        run = VSphereRun(config, settings, named, identity, facts)
        config.pluginmanager.register(run, RUN_PLUGIN)
        register_reports(config, run)
        return
    from .controller import Controller, XdistController
    from .run_report import check_paths
    from .settings import SettingsError

    try:
        check_paths(settings)  # before anything starts: a bad path is a usage error, nothing to clean up
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    controller = Controller(config, settings)
    settings, named = apply_facts(settings, named, controller.facts)
    run = VSphereRun(config, settings, named, controller.identity, controller.facts)
    controller.attach(run)
    config.pluginmanager.register(run, RUN_PLUGIN)
    register_reports(config, run)
    config.pluginmanager.register(controller, CONTROLLER_PLUGIN)
    if settings.report is not None:
        from .run_report import RunReport

        controller.run_report = RunReport(settings, controller.identity.run_id)
        config.pluginmanager.register(controller.run_report, RUN_REPORT_PLUGIN)
    if controller.identity.controls_workers:
        config.pluginmanager.register(XdistController(controller), XDIST_PLUGIN)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test's @pytest.mark.vsphere is checked at collection (an error naming it), and its vsphere_vm and
    vsphere_template parametrized; several --vsphere-template make the template matrix."""
    if "vsphere_template" not in metafunc.fixturenames and metafunc.definition.get_closest_marker(MARKER) is None:
        return
    from .marker import generate_tests
    from .settings import Settings

    run = metafunc.config.pluginmanager.get_plugin(RUN_PLUGIN)
    if run is not None:
        generate_tests(metafunc, run.settings, run.settings.template)
    else:  # idle: markers are still checked, against the settings given (or the defaults)
        generate_tests(metafunc, metafunc.config.stash.get(SETTINGS_KEY, None) or Settings(), ())


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    return settings.header() or None
