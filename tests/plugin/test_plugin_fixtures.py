"""Named fixtures from ini ``vsphere_fixtures``, ``vsphere_vm_factory`` and ``vsphere_service_instance``."""

from __future__ import annotations

import pytest
from plugin_helpers import Inner, SimHandle

pytestmark = pytest.mark.guests

NAMED_INI = """
[pytest]
vsphere_fixtures =
    web: template=linux-frozen clone_type=instant scope=function
    win: template=windows-template scope=session guest_user=Administrator
"""

NAMED_TESTS = """
def test_web_first(web):
    assert (web.template, web.clone_type, web.os) == ("linux-frozen", "instant", "linux")
    assert web.run("test ! -e /tmp/left-behind").exit_status == 0
    web.run("touch /tmp/left-behind")
    print("WEB", web.name)

def test_web_second(web):
    assert web.run("test ! -e /tmp/left-behind").exit_status == 0  # a fresh clone, not the first one
    print("WEB", web.name)

def test_windows(win):
    assert (win.template, win.os) == ("windows-template", "windows")
    result = win.run("ipconfig")
    assert result.exit_status == 0 and win.ip in result.stdout
"""


def test_named_fixtures_from_ini(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makefile(".ini", pytest=NAMED_INI)
    inner.pytester.makepyfile(test_named=NAMED_TESTS)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    # No --vsphere-template: the named fixtures alone switch the plugin on.
    outcome = inner.run("-s", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=3)
    counters = plugin_sim.sim.counters()
    assert (counters["InstantClone_Task"], counters["CloneVM_Task"], counters["Destroy_Task"]) == (2, 1, 3)
    webs = [line.split("WEB ", 1)[1].split()[0] for line in outcome.out.splitlines() if "WEB " in line]
    assert len(set(webs)) == 2
    assert "PytestRemovedIn10Warning" not in outcome.out  # named fixtures are plain fixtures
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_named_fixture_with_a_bad_setting_is_a_usage_error(inner: Inner) -> None:
    inner.pytester.makefile(".ini", pytest="[pytest]\nvsphere_fixtures =\n    web: template=x clone_type=quick\n")
    inner.pytester.makepyfile(test_named="def test_web(web):\n    pass\n")
    outcome = inner.run("--vsphere-host=vc.example", "--vsphere-user=u")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "vsphere_fixtures: web: invalid clone_type='quick': allowed: linked, instant, full" in outcome.out


FACTORY_TESTS = """
def test_factory_makes_clones_with_overrides(vsphere_vm_factory):
    linked = vsphere_vm_factory()
    instant = vsphere_vm_factory(template="linux-frozen", clone_type="instant")
    windows = vsphere_vm_factory(template="windows-template", guest_user="Administrator")
    assert (linked.template, linked.clone_type) == ("linux-template", "linked")
    assert (instant.template, instant.clone_type) == ("linux-frozen", "instant")
    assert windows.os == "windows"
    assert len({linked.name, instant.name, windows.name}) == 3
    for clone in (linked, instant, windows):
        assert clone.run("hostname").exit_status == 0

def test_factory_clones_die_with_the_test(vsphere_service_instance):
    from pyVmomi import vim
    content = vsphere_service_instance.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        names = sorted(vm.name for vm in view.view)
    finally:
        view.Destroy()
    assert not [n for n in names if n.startswith("pytest-")], names

def test_factory_rejects_unknown_settings(vsphere_vm_factory):
    import pytest
    with pytest.raises(ValueError, match="no_such_setting"):
        vsphere_vm_factory(no_such_setting=1)
"""


def test_vm_factory_and_service_instance(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_factory=FACTORY_TESTS)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "-p", "no:randomly", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=3)
    counters = plugin_sim.sim.counters()
    assert (counters["CloneVM_Task"], counters["InstantClone_Task"], counters["Destroy_Task"]) == (2, 1, 3)
    inner.clean_after(outcome, plugin_sim, namespaces)
