"""Start-up privilege checks beyond cloning: the hardware settings' privileges (an error naming each and
where it is lacking) and the console screenshots' (a warning: they are optional evidence).

Real inner pytest runs against the module's simulator with real guests, as users whose roles lack
chosen privileges; afterwards the simulator, the machine's network namespaces and the run's TMPDIR
must hold nothing the run made.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_helpers import Inner, SimHandle

from pytest_vsphere_clone.client.hardware import HardwareRequest
from pytest_vsphere_clone.client.privileges import (
    HARDWARE_PRIVILEGES,
    doctor_command,
    hardware_needs,
    hardware_privileges,
)

A_TEST = """
def test_uses_a_clone(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0
"""

FACTORY_TESTS = A_TEST + """
import pytest

def test_factory_memory_is_refused_before_a_clone_exists(vsphere_vm_factory):
    with pytest.raises(pytest.fail.Exception) as refused:
        vsphere_vm_factory(memory_mb=1024)
    message = str(refused.value)
    assert "lacks privilege(s) VirtualMachine.Config.Memory (--vsphere-memory-mb) on folder 'vm'" in message
    assert "\\n" not in message.strip()
"""


def test_the_table_gives_each_setting_its_privileges() -> None:
    everything = HardwareRequest(cpus=2, memory_mb=2048, networks=("VM Network", "VM Network 2"), disks_gb=(8,),
                                 extra_config=("guestinfo.role=web",))
    assert sorted(hardware_privileges(everything, 1)) == sorted(p for ps in HARDWARE_PRIVILEGES.values() for p in ps)
    # NICs only moved: no AddRemoveDevice; an unknown NIC count may add NICs.
    moved = HardwareRequest(networks=("VM Network 2",))
    assert hardware_needs(moved, 1) == [("VirtualMachine.Config.EditDevice", "--vsphere-networks")]
    assert "VirtualMachine.Config.AddRemoveDevice" in hardware_privileges(moved, None)
    assert hardware_privileges(HardwareRequest(cpus=2), None) == ["VirtualMachine.Config.CPUCount"]
    assert hardware_privileges(HardwareRequest(), None) == []
    # The doctor run the error suggests: the same settings, never an extraConfig value.
    assert doctor_command("ubuntu 24", everything) == (
        "vsphere-clone doctor --template 'ubuntu 24' --cpus 2 --memory-mb 2048 --networks 'VM Network' "
        "--networks 'VM Network 2' --disks 8 --extra-config guestinfo.role=VALUE")


@pytest.mark.guests
def test_cpus_without_cpucount_is_one_line_at_the_start(inner: Inner, plugin_sim: SimHandle) -> None:
    plugin_sim.sim.add_user("nocpu@vsphere.local", "NoCpu-Pass-1", denied={"VirtualMachine.Config.CPUCount"})
    inner.pytester.makepyfile(test_cpus=A_TEST)
    before = plugin_sim.namespaces()
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-cpus=2", "--vsphere-user=nocpu@vsphere.local",
                        sim=plugin_sim, env={"VSPHERE_PASSWORD": "NoCpu-Pass-1"})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    assert "Traceback" not in outcome.out
    [line] = [line for line in outcome.out.splitlines() if "lacks privilege(s)" in line]
    assert ("vCenter user 'nocpu@vsphere.local' lacks privilege(s) VirtualMachine.Config.CPUCount (--vsphere-cpus) "
            "on folder 'vm'") in line
    assert "`vsphere-clone doctor --template linux-template --cpus 2` checks them" in line
    assert "NoCpu-Pass-1" not in outcome.out
    inner.clean_after(outcome, plugin_sim, before)


@pytest.mark.guests
def test_missing_screenshot_privilege_is_a_warning_and_a_factorys_hardware_is_checked(
        inner: Inner, plugin_sim: SimHandle) -> None:
    plugin_sim.sim.add_user("noshot@vsphere.local", "NoShot-Pass-1",
                            denied={"VirtualMachine.Interact.CreateScreenshot", "VirtualMachine.Config.Memory"})
    inner.pytester.makepyfile(test_shots=FACTORY_TESTS)
    before = plugin_sim.namespaces()
    report = inner.pytester.path / "report.json"
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-user=noshot@vsphere.local",
                        f"--vsphere-report={report}", "-p", "no:randomly",
                        sim=plugin_sim, env={"VSPHERE_PASSWORD": "NoShot-Pass-1"})
    assert outcome.ret == pytest.ExitCode.OK, outcome.out
    warning = ("vCenter user 'noshot@vsphere.local' lacks VirtualMachine.Interact.CreateScreenshot on folder 'vm': "
               "a failed test's clones of linux-template get no console screenshot")
    lines = outcome.out.splitlines()
    [at_start] = [i for i, line in enumerate(lines) if line.startswith("vsphere-clone: warning: ") and warning in line]
    first_clone = next(i for i, line in enumerate(lines) if ": cloning linux-template" in line)
    assert at_start < first_clone  # said when the run starts, before any clone
    assert [line for line in lines if line.startswith("warning: ") and warning in line]  # and in the summary
    document = json.loads(report.read_text())
    assert any(warning in w for w in document["warnings"])
    # The factory's refused clone was never recorded (nor made): the run's one clone only.
    assert document["totals"]["clones"] == 1 and document["totals"]["failed"] == 0
    inner.clean_after(outcome, plugin_sim, before)


@contextlib.contextmanager
def _marked_as_template(plugin_sim: SimHandle, name: str) -> Iterator[None]:
    """``name`` marked as a vSphere template (MarkAsTemplate through pyVmomi), a VM again afterwards."""
    from pyVim.connect import Disconnect, SmartConnect

    sim = plugin_sim.sim
    si = SmartConnect(host=sim.host, port=sim.port, user=sim.user, pwd=sim.password,
                      sslContext=ssl.create_default_context(cafile=str(sim.ca_file)))
    try:
        vm: Any = si.content.searchIndex.FindByInventoryPath(f"dc1/vm/{name}")
        vm.MarkAsTemplate()
        try:
            yield
        finally:
            vm.MarkAsVirtualMachine(pool=si.content.searchIndex.FindByInventoryPath("dc1/host/cluster1").resourcePool)
    finally:
        Disconnect(si)


@pytest.mark.guests
def test_a_vsphere_template_needs_deploy_template_at_the_start(inner: Inner, plugin_sim: SimHandle) -> None:
    # CloneVM_Task (API reference): "source is template, destination is virtual machine -
    # VirtualMachine.Provisioning.DeployTemplate"; a role with Provisioning.Clone alone cannot deploy it.
    plugin_sim.sim.add_user("nodeploy@vsphere.local", "NoDeploy-Pass-1",
                            denied={"VirtualMachine.Provisioning.DeployTemplate"})
    inner.pytester.makepyfile(test_deploy=A_TEST)
    before = plugin_sim.namespaces()
    with _marked_as_template(plugin_sim, "debian-template"):
        outcome = inner.run("--vsphere-template=debian-template", "--vsphere-user=nodeploy@vsphere.local",
                            sim=plugin_sim, env={"VSPHERE_PASSWORD": "NoDeploy-Pass-1"})
        # Nor is a template an instant-clone source: it cannot be powered on (one line, said at the start).
        instant = inner.run("--vsphere-template=debian-template", "--vsphere-clone-type=instant", sim=plugin_sim)
    assert instant.ret == pytest.ExitCode.USAGE_ERROR, instant.out
    [line] = [line for line in instant.out.splitlines() if "an instant clone needs" in line]
    assert ("template 'debian-template' is a vSphere template (config.template), which cannot be powered on, but an "
            "instant clone needs a running or frozen source") in line
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    assert "Traceback" not in outcome.out
    [line] = [line for line in outcome.out.splitlines() if "lacks privilege(s)" in line]
    assert ("vCenter user 'nodeploy@vsphere.local' lacks privilege(s) VirtualMachine.Provisioning.DeployTemplate on "
            "template 'debian-template', which is marked as a vSphere template (cloning one is deploying it): grant "
            "them to the user's role") in line
    assert "NoDeploy-Pass-1" not in outcome.out
    inner.clean_after(outcome, plugin_sim, before)


@pytest.mark.guests
def test_a_role_without_clone_deploys_a_vsphere_template(inner: Inner, plugin_sim: SimHandle) -> None:
    # The other half of the reference's rule: from a template, DeployTemplate suffices (linked, from its snapshot).
    plugin_sim.sim.add_user("deployonly@vsphere.local", "DeployOnly-Pass-1",
                            denied={"VirtualMachine.Provisioning.Clone"})
    inner.pytester.makepyfile(test_deployed=A_TEST)
    before = plugin_sim.namespaces()
    with _marked_as_template(plugin_sim, "debian-template"):
        outcome = inner.run("--vsphere-template=debian-template", "--vsphere-user=deployonly@vsphere.local",
                            sim=plugin_sim, env={"VSPHERE_PASSWORD": "DeployOnly-Pass-1"})
    assert outcome.ret == pytest.ExitCode.OK, outcome.out
    assert outcome.lines_with(": cloning debian-template (linked)")
    inner.clean_after(outcome, plugin_sim, before)
