"""``--vsphere-simulator``: the run starts its own simulator, every xdist worker uses it, nothing outlives it.

The inner run's conftest looks at its simulator once the plugin has swept
(end of pytest_sessionfinish) and records which VMs it holds and the name tag
of its network namespaces; afterwards the test checks the machine: no
namespace of that tag, its registry entry released, no directory left in TMPDIR.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_helpers import Inner, netns_names

from pytest_vsphere_clone.simulator.guests.host.host_registry import DEFAULT_REGISTRY_DIR

pytestmark = pytest.mark.guests

SNAPSHOT_CONFTEST = """
import json
import pytest
from pathlib import Path

@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    result = yield
    controller = session.config.pluginmanager.get_plugin("vsphere-clone-controller")
    if controller is not None and controller.simulator is not None:
        sim = controller.simulator
        Path("after-sweep.json").write_text(json.dumps({
            "vms": sim.vm_names(), "tag": sim.vc.guests.host.tag, "sim_id": sim.vc.guests.host.sim_id}))
    return result
"""

INI = """
[pytest]
vsphere_fixtures =
    windows_vm: template=windows-template scope=worker
    fresh_linux_vm: template=linux-frozen clone_type=instant scope=function
"""

TESTS = """
import pytest

@pytest.mark.parametrize("i", range(4))
def test_linux(vsphere_vm, i):
    assert vsphere_vm.run("true").exit_status == 0

@pytest.mark.parametrize("i", range(2))
def test_fresh(fresh_linux_vm, i):
    assert fresh_linux_vm.run("true").exit_status == 0

def test_windows(windows_vm):
    assert windows_vm.run("ipconfig").exit_status == 0
"""

DEFAULT_TEMPLATES = ["linux-frozen", "linux-template", "windows-frozen", "windows-template"]


def test_embedded_simulator_under_xdist_leaves_nothing(inner: Inner) -> None:
    inner.pytester.makeconftest(SNAPSHOT_CONFTEST)
    inner.pytester.makefile(".ini", pytest=INI)
    inner.pytester.makepyfile(test_suite=TESTS)
    outcome = inner.run("--vsphere-simulator", "-n", "2")
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=7)
    after = json.loads((inner.pytester.path / "after-sweep.json").read_text())
    assert after["vms"] == DEFAULT_TEMPLATES  # only its templates once the run is over
    assert len(outcome.summary_states()) >= 4 and set(outcome.summary_states().values()) == {"destroyed"}
    # The simulator itself is gone: its namespaces, its registry claim, its state and the run's directory.
    tag = after["tag"]
    left = sorted(n for n in netns_names() if n.startswith(tag + "-"))
    entry = Path(DEFAULT_REGISTRY_DIR) / f"{tag}.json"
    if entry.exists():  # another simulator may have claimed the freed tag since: then its namespaces are its own
        assert json.loads(entry.read_text())["sim_id"] != after["sim_id"]
    else:
        assert left == []
    assert outcome.run_dirs() == []
