"""The plugin's answers to documented vCenter behaviours: a clear error naming the fix, or a documented fallback.

- A direct ESXi connection offers no cloning: one usage error at the start (exit 4), and a doctor FAIL line.
- At most 8 provisioning operations run at once per host, more queue: the plugin only waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from plugin_helpers import Inner

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

A_TEST = """
def test_uses_a_clone(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0
"""


def _connection(sim: Simulator) -> tuple[list[str], dict[str, str]]:
    """CLI arguments and environment that reach ``sim`` (the password through the environment)."""
    facts = sim.connection_facts()
    return ([f"--vsphere-host={facts['HOST']}", f"--vsphere-user={facts['USER']}",
             f"--vsphere-ca-bundle={facts['CA_FILE']}"], {"VSPHERE_PASSWORD": facts["PASSWORD"]})


def _doctor(sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
    facts = sim.connection_facts()
    env = {key: value for key, value in os.environ.items() if not key.startswith("VSPHERE_")}
    env.update(VSPHERE_HOST=facts["HOST"], VSPHERE_USER=facts["USER"], VSPHERE_PASSWORD=facts["PASSWORD"],
               VSPHERE_CA_BUNDLE=facts["CA_FILE"])
    return subprocess.run([sys.executable, "-m", "pytest_vsphere_clone.cli", "doctor", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


# --- a direct ESXi connection ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def esxi() -> Iterator[Simulator]:
    """A simulator answering as an ESXi host reached directly (AboutInfo.apiType HostAgent)."""
    with Simulator(SimulatorConfig(api_type="HostAgent")) as simulator:
        yield simulator


@pytest.mark.parametrize(("clone_type", "template"), [("instant", "linux-frozen"), ("linked", "linux-template")])
def test_esxi_endpoint_is_one_usage_error_at_the_start(inner: Inner, esxi: Simulator, clone_type: str,
                                                       template: str) -> None:
    inner.pytester.makepyfile(test_esxi=A_TEST)
    args, env = _connection(esxi)
    before = esxi.vm_names()
    esxi.reset_counters()
    outcome = inner.run(*args, f"--vsphere-template={template}", f"--vsphere-clone-type={clone_type}", env=env)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    [line] = outcome.lines_with("is an ESXi host reached directly")
    assert "apiType HostAgent" in line and "point --vsphere-host at the vCenter that manages this host" in line
    method = "InstantClone_Task" if clone_type == "instant" else "CloneVM_Task"
    assert f"offers no {method} for {clone_type} clones" in line
    assert "Traceback" not in outcome.out
    counters = esxi.counters()
    assert counters["InstantClone_Task"] == counters["CloneVM_Task"] == 0  # refused before any clone call
    assert esxi.vm_names() == before


def test_doctor_fails_an_esxi_endpoint(esxi: Simulator) -> None:
    result = _doctor(esxi, "--clone-type", "instant", "--template", "linux-frozen")
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL  endpoint: ")]
    assert "ESXi host reached directly" in line and "InstantClone_Task" in line
    assert "point --host at the vCenter" in line  # the command's own option spelling
