"""Every clone type with every discovery mode reaches a working ``run`` over SSH; Windows over WinRM.

The settings reach the inner run the way users give them (CLI options), and
the inner test proves the clone is the real thing: its discovered address is
the guest's own, ``run`` goes over SSH (a paramiko channel), ``guest_run`` through
Guest Operations, its disk chain is that of the clone type asked for, and only
active discovery ran the discovery command in the guest.
"""

from __future__ import annotations

import pytest
from plugin_helpers import Inner, SimHandle

pytestmark = pytest.mark.guests

LINUX_TEST = """
import paramiko
from pyVmomi import vim

def disk_chain(vm):
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    backing, files = disk.backing, 0
    while backing is not None:
        files, backing = files + 1, backing.parent
    return files

def test_run_over_ssh(vsphere_vm):
    assert vsphere_vm.os == "linux"
    assert vsphere_vm.clone_type == "{clone_type}"
    # A full clone owns a flat disk; linked and instant clones are deltas on their source's disk.
    assert (disk_chain(vsphere_vm.vm) == 1) == ("{clone_type}" == "full")
    assert isinstance(vsphere_vm.ssh(), paramiko.SSHClient)
    result = vsphere_vm.run("ip -4 -o address show scope global; hostname")
    assert result.exit_status == 0, result
    assert vsphere_vm.ip in result.stdout
    failed = vsphere_vm.run("echo err >&2; exit 7")
    assert (failed.exit_status, failed.stdout, failed.stderr) == (7, "", "err\\n")
    assert vsphere_vm.guest_run("cat /etc/hostname").exit_status == 0
    assert set(vsphere_vm.timings) >= {{"clone", "ip", "connect"}}
    # The discovery command leaves a trace in the guest: only active discovery runs it.
    assert (vsphere_vm.run("test -e /tmp/.discovered").exit_status == 0) == {active}
"""

#: The default Linux discovery command, plus a trace that it ran.
DISCOVERY_COMMAND = "touch /tmp/.discovered; ip -o address show scope global"

CASES = [
    ("linked", "linux-template"),
    ("full", "linux-template"),
    ("instant", "linux-frozen"),
]


@pytest.mark.parametrize("discovery", ["active", "tools"])
@pytest.mark.parametrize(("clone_type", "template"), CASES, ids=[c[0] for c in CASES])
def test_clone_type_and_discovery_reach_run_over_ssh(inner: Inner, plugin_sim: SimHandle, clone_type: str,
                                                      template: str, discovery: str) -> None:
    inner.pytester.makepyfile(test_linux=LINUX_TEST.format(clone_type=clone_type, active=discovery == "active"))
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run(f"--vsphere-template={template}", f"--vsphere-clone-type={clone_type}",
                        f"--vsphere-discovery={discovery}", f"--vsphere-discovery-command={DISCOVERY_COMMAND}",
                        sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=1)
    counters = plugin_sim.sim.counters()
    method = "InstantClone_Task" if clone_type == "instant" else "CloneVM_Task"
    assert (counters[method], counters["Destroy_Task"]) == (1, 1)
    inner.clean_after(outcome, plugin_sim, namespaces)


WINDOWS_TEST = """
def test_run_over_winrm(vsphere_vm):
    assert vsphere_vm.os == "windows"
    result = vsphere_vm.run("ipconfig")
    assert result.exit_status == 0, result
    assert vsphere_vm.ip in result.stdout
    assert vsphere_vm.winrm().run_ps("hostname").status_code == 0
    assert vsphere_vm.run("no-such-tool").exit_status == 9009
"""


def test_windows_template_reaches_run_over_winrm(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_windows=WINDOWS_TEST)
    namespaces = plugin_sim.namespaces()
    windows_user = plugin_sim.facts["WINDOWS_GUEST_USER"]
    outcome = inner.run("--vsphere-template=windows-template", f"--vsphere-guest-user={windows_user}", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=1)
    inner.clean_after(outcome, plugin_sim, namespaces)
