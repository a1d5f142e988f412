"""The fixtures: vsphere_vm, vsphere_vm_factory, vsphere_service_instance, named fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .keys import FACTORY_CLONES, RUN_PLUGIN, SETTINGS_KEY
from .options import PYTEST_SCOPES

if TYPE_CHECKING:
    from .clone import Clone
    from .marker import VmMarker
    from .run import VSphereRun
    from .settings import Settings

def current_run(config: pytest.Config, marker: VmMarker | None = None) -> VSphereRun:
    """The run object, or a one-line failure saying how to configure the plugin."""
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    if run is None:
        if marker is not None:
            pytest.fail(f"{marker!r} needs the plugin switched on, and this run has no vSphere template: pass "
                        f"--vsphere-template=NAME (with --vsphere-host) or --vsphere-simulator; the marker's settings "
                        f"then replace the run's for its tests", pytrace=False)
        pytest.fail("vSphere fixtures need a template: pass --vsphere-template=NAME (with --vsphere-host) or "
                    "--vsphere-simulator", pytrace=False)
    return run


def vm_scope(fixture_name: str, config: pytest.Config) -> str:
    """pytest scope of vsphere_vm and vsphere_template, from --vsphere-scope."""
    settings = config.stash.get(SETTINGS_KEY, None)
    return PYTEST_SCOPES[settings.scope if settings is not None else "worker"]


# Session scope, whatever --vsphere-scope says: a string that only a parameter changes (the template
# matrix, a marker's template), and vsphere_vm may be session-scoped for a marked test whatever its
# own scope (pytest checks a request against the requested fixture's defined scope).
@pytest.fixture(scope="session")
def vsphere_template(request: pytest.FixtureRequest) -> str:
    """The template this test runs against (parametrized when several are configured)."""
    param = getattr(request, "param", None)
    if param:  # the template matrix, or a @pytest.mark.vsphere's template ("" when neither names one)
        return str(param)
    run = current_run(request.config)
    if not run.settings.template:
        pytest.fail("vsphere_vm needs --vsphere-template=NAME", pytrace=False)
    return run.settings.template[0]


@pytest.fixture(scope=vm_scope)  # type: ignore[arg-type]
def vsphere_vm(request: pytest.FixtureRequest, vsphere_template: str) -> Clone:
    """A ready clone of the configured template, for the configured scope.

    Several ``--vsphere-template`` options parametrize the tests over the templates (ids = template names).
    A test's ``@pytest.mark.vsphere(**settings)`` (or its class's or module's) gives it a clone made
    with those settings, shared by the tests whose effective settings are equal.
    """
    marker: VmMarker | None = getattr(request, "param", None)  # set by the marker's parametrization
    run = current_run(request.config, marker)
    return run.vm_for(request, vsphere_template, marker)


@pytest.fixture
def vsphere_vm_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Clone]]:
    """``factory(**overrides) -> Clone``: more clones, destroyed when the test ends.

    Overrides are setting names with underscores, e.g. ``template="win2022", clone_type="instant"``,
    checked like the same settings on the command line; the rest comes from the run's settings.
    ``scope`` cannot be overridden.
    """
    run = current_run(request.config)

    def make(**overrides: Any) -> Clone:
        settings = _with_overrides(run.settings, overrides)
        if not settings.template:
            pytest.fail("vsphere_vm_factory needs template=NAME or --vsphere-template", pytrace=False)
        clone = run.clone_for(request, settings, settings.template[0], "function")
        # For the test's report (JUnit properties, evidence): the factory's clones, in order.
        request.node.stash.setdefault(FACTORY_CLONES, []).append(clone)
        return clone

    yield make


def _with_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with the factory's overrides, each checked like the same setting on the command line."""
    from .settings import SettingsError, check_clone_settings, overrides_from

    if "scope" in overrides:
        raise SettingsError("vsphere_vm_factory: scope cannot be overridden: the factory's clones live until "
                            "the test ends; for a longer-lived clone declare a named fixture in ini "
                            "vsphere_fixtures (e.g. 'web: template=T scope=module'), mark the test with "
                            "@pytest.mark.vsphere(scope=...) for its vsphere_vm, or set --vsphere-scope")
    changed = settings.replace(**overrides_from(overrides, "vsphere_vm_factory"))
    check_clone_settings(changed, "vsphere_vm_factory: ")
    return changed


@pytest.fixture(scope="session")
def vsphere_service_instance(request: pytest.FixtureRequest) -> Any:
    """The connected pyVmomi ServiceInstance of this process's session."""
    return current_run(request.config).holder.connection().si


#: Marks the functions of named fixtures, to tell them from other fixtures of the same name.
_NAMED = "_vsphere_named_fixture"


def named_fixture(name: str, settings: Settings) -> Callable[..., Clone]:
    """A fixture called ``name`` giving clones made with ``settings`` (from ini vsphere_fixtures)."""
    def fixture(request: pytest.FixtureRequest) -> Clone:
        run = current_run(request.config)
        resolved = run.named[name]  # with what the run learnt since (e.g. the simulator's address)
        return run.clone_for(request, resolved, resolved.template[0], resolved.scope)

    fixture.__name__ = name
    fixture.__doc__ = f"Clone fixture {name} from ini vsphere_fixtures ({settings.template[0]})."
    setattr(fixture, _NAMED, name)
    return pytest.fixture(name=name, scope=PYTEST_SCOPES[settings.scope])(fixture)  # type: ignore[call-overload]


def named_fixtures_plugin(named: dict[str, Settings]) -> object:
    """A plugin module holding the named fixtures as plain functions, as a conftest.py would.

    Not a class instance: pytest would bind the fixtures as methods, and warns that
    session-scoped fixtures defined as instance methods are deprecated (pytest 9).
    The module also refuses names that another fixture has: one of the two would silently
    replace the other (a named fixture ``tmp_path`` replaced pytest's own).
    """
    import types

    module = types.ModuleType("pytest_vsphere_clone.plugin.named_fixtures")
    for name, settings in named.items():
        setattr(module, f"named_{name}", named_fixture(name, settings))
    names = tuple(named)
    failing: dict[str, str] = {}  # xdist worker: test id -> the clash its fixtures have

    # trylast: after pytest made its fixture manager, and before the run's own start-up checks.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(session: pytest.Session) -> None:
        """Names taken by pytest's or a plugin's fixtures: a usage error before anything else starts."""
        clash = _first_clash(session, names, session)
        if clash:
            raise pytest.UsageError(clash)

    def pytest_collection_finish(session: pytest.Session) -> None:
        """Names taken by a conftest's or a test module's fixture (known once collected)."""
        for item in session.items:
            clash = _first_clash(session, names, item)
            if clash and hasattr(session.config, "workerinput"):
                # An xdist worker's usage error would only end it ("no active workers"), unexplained:
                # the tests that see the clash fail with it instead.
                failing[item.nodeid] = clash
            elif clash:
                raise pytest.UsageError(clash)

    def pytest_runtest_setup(item: pytest.Item) -> None:
        if item.nodeid in failing:
            pytest.fail(failing[item.nodeid], pytrace=False)

    module.pytest_sessionstart = pytest_sessionstart  # type: ignore[attr-defined]
    module.pytest_collection_finish = pytest_collection_finish  # type: ignore[attr-defined]
    module.pytest_runtest_setup = pytest_runtest_setup  # type: ignore[attr-defined]
    return module


def _first_clash(session: pytest.Session, names: tuple[str, ...], node: Any) -> str | None:
    """The message for the first named fixture that another fixture visible to ``node`` shares a name with."""
    manager = getattr(session, "_fixturemanager", None)
    if manager is None:
        return None
    for name in names:
        others = [d for d in manager.getfixturedefs(name, node) or () if not hasattr(d.func, _NAMED)]
        if others:
            func = others[-1].func
            where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', name)}"
            return (f"vsphere_fixtures: {name} is already the name of a fixture ({where}): the named clone fixture "
                    f"would replace it, or be replaced by it; give the clone fixture another name in "
                    f"vsphere_fixtures")
    return None
