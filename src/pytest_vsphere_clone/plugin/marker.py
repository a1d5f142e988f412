"""``@pytest.mark.vsphere(**settings)``: a test's, class's or module's own settings for ``vsphere_vm``.

Markers are read at collection (``pytest_generate_tests``): the closest wins key by key (function over
class over module ``pytestmark``), each key and value is checked like the same factory argument, and a
bad one is a collection error of one line naming the marker's node. A marked test's ``vsphere_vm`` is
then parametrized indirectly with its effective settings, under an id pytest hides
(``pytest.HIDDEN_PARAM``), and with the marker's scope: pytest's documented parametrize ``scope`` "will
also override any fixture-function defined scope", so the clone lives as long as the marker asks (a
function-scoped clone ends with its test even where ``vsphere_vm`` is a session fixture). Tests with equal
parameters are grouped by pytest, and :mod:`.vm_clones` gives them one clone per scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from .options import BY_NAME, PYTEST_SCOPES

if TYPE_CHECKING:
    from .settings import Settings

MARKER = "vsphere"
#: The line ``pytest --markers`` shows.
MARKER_HELP = ("vsphere(**settings): settings of this test's vsphere_vm clone (on a class or module via pytestmark "
               "too; the closest marker wins key by key), named like vsphere_vm_factory's arguments, e.g. "
               "template='linux-frozen', clone_type='instant', scope='function'. Tests with equal settings share a "
               "clone within its scope. See the plugin's docs, page 'The vsphere marker'.")
#: Fixtures that follow vsphere_vm's scope: a marker's narrower scope is theirs too for that test.
FOLLOWERS = ("vsphere_testinfra_host",)
_ORDER = ("function", "module", "session")


@dataclass(frozen=True)
class VmMarker:
    """A test's effective marker: the run's settings with its markers' settings applied (``scope`` too).

    Equal markers compare equal whatever their spelling: that is what pytest groups and caches by.
    """

    settings: Settings
    #: The markers' arguments as written (secrets masked), for messages.
    given: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"@pytest.mark.{MARKER}({self.given})"


def resolve_marker(node: Any, base: Settings) -> VmMarker | None:
    """``node``'s effective marker over ``base`` (the run's settings); None when it changes nothing.

    Raises SettingsError naming the marker's node and the bad key or value.
    """
    from .settings import SettingsError, check_clone_settings, overrides_from

    changes: dict[str, Any] = {}
    given: dict[str, str] = {}
    # Farthest first (module, class, function): a closer marker's key replaces a farther one's.
    for owner, mark in reversed(list(node.iter_markers_with_node(MARKER))):
        where = f"{owner.nodeid}: @pytest.mark.{MARKER}"
        if mark.args:
            raise SettingsError(f"{where}: takes settings as keyword arguments only, e.g. @pytest.mark.{MARKER}"
                                f"(template='linux-frozen', clone_type='instant'); got {len(mark.args)} positional "
                                f"argument(s)")
        converted = overrides_from(mark.kwargs, where)
        if "template" in converted and not converted["template"]:
            raise SettingsError(f"{where}: template={mark.kwargs['template']!r} names no template: give one "
                                f"(template='NAME') or leave template out for the run's")
        changes.update(converted)
        for key, value in mark.kwargs.items():
            option = BY_NAME[key.replace("_", "-")]
            given[key] = "'***'" if option.secret else repr(value)
    if not changes:
        return None
    settings = base.replace(**changes)
    check_clone_settings(settings, f"{node.nodeid}: @pytest.mark.{MARKER}: ")
    if settings == base:
        return None  # the run's own settings: the run's clone
    return VmMarker(settings, ", ".join(f"{key}={value}" for key, value in given.items()))


def generate_tests(metafunc: pytest.Metafunc, base: Settings, run_templates: tuple[str, ...]) -> None:
    """Check the test's marker and parametrize its ``vsphere_vm`` and ``vsphere_template``.

    ``base`` is the run's settings (the defaults when the plugin is idle), ``run_templates`` the run's
    templates (none when idle). Several templates make the usual matrix, ids = template names; a
    marker's template replaces the run's, so its test runs on that template only.
    """
    from .settings import SettingsError

    marker = None
    failure = ""
    if metafunc.definition.get_closest_marker(MARKER) is not None:
        try:
            marker = resolve_marker(metafunc.definition, base)
        except SettingsError as exc:
            failure = str(exc)
    if failure:
        # Raised while collecting (outside the except: no chained second copy): pytest reports
        # "ERROR collecting <module>" with this one line.
        pytest.fail(failure, pytrace=False)
    if "vsphere_template" not in metafunc.fixturenames:
        return
    run_scope = PYTEST_SCOPES[base.scope]
    if marker is None:
        if len(run_templates) > 1:
            # ids are template names: identical in every xdist worker (never IPs).
            metafunc.parametrize("vsphere_template", run_templates, ids=run_templates, indirect=True,
                                 scope=run_scope)  # type: ignore[arg-type]
        return
    clone_scope = PYTEST_SCOPES[marker.settings.scope]
    narrower = _ORDER.index(clone_scope) < _ORDER.index(run_scope)
    # Followers take a narrower scope with vsphere_vm: pytest < 9 checks a request against the
    # parameter's scope. Never a broader one: pytest 9 checks it against the requested fixture's
    # defined scope (vsphere_vm's is the run's).
    for name in ("vsphere_vm", *(FOLLOWERS if narrower else ())):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [marker], ids=[_hidden("vsphere")], indirect=True,
                                 scope=clone_scope)  # type: ignore[arg-type]
    # vsphere_vm requests vsphere_template, which therefore must live at least as long: the broader of
    # the run's scope (fixtures of the user's may request it) and the marker's.
    template_scope = max(run_scope, clone_scope, key=_ORDER.index)
    templates = marker.settings.template
    if len(templates) > 1:
        metafunc.parametrize("vsphere_template", templates, ids=templates, indirect=True,
                             scope=template_scope)  # type: ignore[arg-type]
    else:
        # "" when no template is named anywhere: vsphere_template then fails naming the fix.
        metafunc.parametrize("vsphere_template", list(templates) or [""], ids=[_hidden(templates[0] if templates
                                                                                     else "vsphere")],
                             indirect=True, scope=template_scope)  # type: ignore[arg-type]


def _hidden(fallback: str) -> Any:
    """The id that pytest leaves out of the test's name (pytest >= 8.4); ``fallback`` on older pytest."""
    return getattr(pytest, "HIDDEN_PARAM", fallback)
