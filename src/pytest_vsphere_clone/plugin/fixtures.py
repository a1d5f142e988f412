"""The fixtures: vsphere_vm, vsphere_vm_factory, vsphere_service_instance, named fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .options import BY_NAME, PYTEST_SCOPES

if TYPE_CHECKING:
    from .clone import Clone
    from .run import VSphereRun
    from .settings import Settings

RUN_PLUGIN = "vsphere-clone-run"


def current_run(config: pytest.Config) -> VSphereRun:
    """The run object, or a one-line failure saying how to configure the plugin."""
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    if run is None:
        pytest.fail("vSphere fixtures need a template: pass --vsphere-template=NAME (with --vsphere-host) or "
                    "--vsphere-simulator", pytrace=False)
    return run


def vm_scope(fixture_name: str, config: pytest.Config) -> str:
    """pytest scope of vsphere_vm and vsphere_template, from --vsphere-scope."""
    from . import SETTINGS_KEY

    settings = config.stash.get(SETTINGS_KEY, None)
    return PYTEST_SCOPES[settings.scope if settings is not None else "worker"]


@pytest.fixture(scope=vm_scope)  # type: ignore[arg-type]
def vsphere_template(request: pytest.FixtureRequest) -> str:
    """The template this test runs against (parametrized when several are configured)."""
    param = getattr(request, "param", None)
    if param is not None:
        return str(param)
    run = current_run(request.config)
    if not run.settings.template:
        pytest.fail("vsphere_vm needs --vsphere-template=NAME", pytrace=False)
    return run.settings.template[0]


@pytest.fixture(scope=vm_scope)  # type: ignore[arg-type]
def vsphere_vm(request: pytest.FixtureRequest, vsphere_template: str) -> Clone:
    """A ready clone of the configured template, for the configured scope."""
    run = current_run(request.config)
    return run.clone_for(request, run.settings, vsphere_template, run.settings.scope)


@pytest.fixture
def vsphere_vm_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Clone]]:
    """``factory(**overrides) -> Clone``: more clones, destroyed when the test ends.

    Overrides are setting names with underscores, e.g. ``template="win2022", clone_type="instant"``.
    """
    run = current_run(request.config)

    def make(**overrides: Any) -> Clone:
        settings = _with_overrides(run.settings, overrides)
        if not settings.template:
            pytest.fail("vsphere_vm_factory needs template=NAME or --vsphere-template", pytrace=False)
        return run.clone_for(request, settings, settings.template[0], "function")

    yield make


def _with_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    from .settings import SettingsError, _convert

    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        option = BY_NAME.get(key.replace("_", "-"))
        if option is None or option.group in ("connection", "embedded"):
            raise SettingsError(f"vsphere_vm_factory: {key!r} is not a clone, placement, guest, discovery, time "
                                f"or teardown setting")
        changes[option.attr] = value if not isinstance(value, str) else _convert(option, value)
    if isinstance(changes.get("template"), str):
        changes["template"] = (changes["template"],)
    return settings.replace(**changes)


@pytest.fixture(scope="session")
def vsphere_service_instance(request: pytest.FixtureRequest) -> Any:
    """The connected pyVmomi ServiceInstance of this process's session."""
    return current_run(request.config).connection().si


def named_fixture(name: str, settings: Settings) -> Callable[..., Clone]:
    """A fixture called ``name`` giving clones made with ``settings`` (from ini vsphere_fixtures)."""
    def fixture(request: pytest.FixtureRequest) -> Clone:
        run = current_run(request.config)
        resolved = run.named[name]  # with what the run learnt since (e.g. the simulator's address)
        return run.clone_for(request, resolved, resolved.template[0], resolved.scope)

    fixture.__name__ = name
    fixture.__doc__ = f"Clone fixture {name} from ini vsphere_fixtures ({settings.template[0]})."
    return pytest.fixture(name=name, scope=PYTEST_SCOPES[settings.scope])(fixture)  # type: ignore[call-overload]


def named_fixtures_plugin(named: dict[str, Settings]) -> object:
    """A plugin module holding the named fixtures as plain functions, as a conftest.py would.

    Not a class instance: pytest would bind the fixtures as methods, and warns that
    session-scoped fixtures defined as instance methods are deprecated (pytest 9).
    """
    import types

    module = types.ModuleType("pytest_vsphere_clone.plugin.named_fixtures")
    for name, settings in named.items():
        setattr(module, f"named_{name}", named_fixture(name, settings))
    return module
