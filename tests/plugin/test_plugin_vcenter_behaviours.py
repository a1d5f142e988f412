"""The plugin's answers to documented vCenter behaviours: a clear error naming the fix, or a documented fallback.

- A direct ESXi connection offers no cloning: one usage error at the start (exit 4), and a doctor FAIL line.
- At most 8 provisioning operations run at once per host, more queue: the plugin only waits.
- Windows Guest Operations of any administrator but the built-in one are not elevated: an instant clone's
  NIC refresh then fails with one error naming the fix.
- systemd-networkd clones of a template that keeps its /etc/machine-id share one DHCP lease: one error
  naming the cause and the fix, and a doctor WARN line.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from plugin_helpers import Inner, Outcome, SimHandle, start_sim
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem
from pytest_vsphere_clone.simulator.latency import FAST_TIMES, LatencyProfile

HOST_LIMIT_SETTING = "config.vpxd.ResourceManager.maxCostPerEsx6xHost"
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
    if "GUEST_USER" in facts:
        env.update(VSPHERE_GUEST_USER=facts["GUEST_USER"], VSPHERE_GUEST_PASSWORD=facts["GUEST_PASSWORD"])
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


# --- real guests ----------------------------------------------------------------------------------

WINDOWS = "windows2019srvNext_64Guest"
GUEST_INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1",
    "datastores": [{"name": "datastore1"}],
    "networks": ["VM Network"],
    "clusters": [{"name": "cluster1", "hosts": ["esx1"]}],
    "vms": [
        {"name": "linux-template", "snapshots": ["base"]},
        {"name": "linux-running", "power": "poweredOn"},
        {"name": "windows-frozen", "guest_id": WINDOWS, "power": "poweredOn", "frozen": True},
        # systemd-networkd guests: a template that keeps its machine-id, and a running source (whose
        # first boot committed one).
        {"name": "networkd-kept", "dhcp_client": "networkd", "machine_id": "fixed", "snapshots": ["base"]},
        {"name": "networkd-running", "dhcp_client": "networkd", "power": "poweredOn"},
    ],
}]}
TEMPLATES = {vm["name"] for vm in GUEST_INVENTORY["datacenters"][0]["vms"]}


@pytest.fixture(scope="module")
def gsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    handle = start_sim(tmp_path_factory.mktemp("sim"), GUEST_INVENTORY)
    try:
        yield handle
    finally:
        handle.sim.stop()


def _clones(handle: SimHandle) -> list[str]:
    return [name for name in handle.sim.vm_names() if name not in TEMPLATES]


def _clean(inner: Inner, outcome: Outcome, handle: SimHandle, namespaces: set[str]) -> None:
    assert outcome.run_dirs() == [], outcome.out
    assert _clones(handle) == [], outcome.out
    assert handle.namespaces() == namespaces


@contextmanager
def _client(handle: SimHandle) -> Iterator[Any]:
    sim = handle.sim
    si = SmartConnect(host=sim.host, port=sim.port, user=sim.user, pwd=sim.password,
                      sslContext=ssl.create_default_context(cafile=str(sim.ca_file)))
    try:
        yield si
    finally:
        Disconnect(si)


def _message(outcome: Outcome, fragment: str) -> str:
    """The one full line of the error holding ``fragment`` (the short test summary clips it)."""
    [line] = [line for line in outcome.lines_with(fragment) if not line.startswith(("ERROR ", "FAILED "))]
    return line


def _most_at_once(infos: list[Any]) -> int:
    events = sorted([(i.startTime, 1) for i in infos] + [(i.completeTime, -1) for i in infos])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


# --- queued clone tasks: the plugin waits ---------------------------------------------------------

TEN_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(10))
def test_clone(vsphere_vm, n):
    assert vsphere_vm.run("true").exit_status == 0
"""


def test_queued_clone_tasks_are_waited_for(inner: Inner, gsim: SimHandle) -> None:
    """Ten clones under xdist while the host runs one provisioning operation at a time: all complete."""
    assert gsim.sim.vc is not None
    profile = gsim.sim.vc.options.profile
    gsim.sim.vc.options.profile = LatencyProfile("slow-clones", {**FAST_TIMES, "clone.linked": (1.0, 1.0)})
    inner.pytester.makepyfile(test_ten=TEN_TESTS)
    namespaces = gsim.namespaces()
    with _client(gsim) as si:
        # vCenter's advanced setting of a host's maximum cost (8 by default): 1, so two workers queue.
        si.content.setting.UpdateOptions(changedValue=[vim.option.OptionValue(key=HOST_LIMIT_SETTING, value=1)])
        try:
            outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=function", "-n", "2",
                                sim=gsim, timeout=300)
        finally:
            si.content.setting.UpdateOptions(changedValue=[vim.option.OptionValue(key=HOST_LIMIT_SETTING,
                                                                                  value=8)])
            gsim.sim.vc.options.profile = profile
        assert outcome.ret == 0, outcome.out
        outcome.result.assert_outcomes(passed=10)
        infos = [t.info for t in si.content.taskManager.recentTask]
    clones = [i for i in infos if i.descriptionId == "VirtualMachine.clone" and i.entityName == "linux-template"]
    assert len(clones) == 10 and all(i.state == "success" for i in clones)
    assert _most_at_once(clones) == 1
    # Two workers cloned at once: one of them waited in "queued" for the other's clone to end.
    assert any((i.startTime - i.queueTime).total_seconds() >= 0.5 for i in clones)
    _clean(inner, outcome, gsim, namespaces)


# --- Windows: a NIC refresh without elevation ----------------------------------------------------


def test_windows_refresh_without_elevation_names_the_fix(inner: Inner, gsim: SimHandle) -> None:
    inner.pytester.makepyfile(test_windows=A_TEST.replace('run("true")', 'run("hostname")'))
    namespaces = gsim.namespaces()
    local_admin = gsim.facts["WINDOWS_LOCAL_ADMIN_USER"]
    outcome = inner.run("--vsphere-template=windows-frozen", "--vsphere-clone-type=instant",
                        f"--vsphere-guest-user={local_admin}", sim=gsim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(errors=1)
    line = _message(outcome, "requires elevation")
    assert "filtered, non-elevated token (UAC)" in line and f"guest user {local_admin!r}" in line
    assert "pass the built-in Administrator as --vsphere-guest-user" in line
    assert "--vsphere-network-refresh-command that works without elevation" in line
    assert "Traceback" not in outcome.out
    _clean(inner, outcome, gsim, namespaces)


# --- systemd-networkd clones sharing a machine-id ------------------------------------------------

TWO_CLONES = """
def test_two_clones(vsphere_vm_factory):
    first = vsphere_vm_factory()
    assert first.run("true").exit_status == 0
    vsphere_vm_factory()
"""


def test_clones_sharing_a_lease_name_the_machine_id(inner: Inner, gsim: SimHandle) -> None:
    inner.pytester.makepyfile(test_networkd=TWO_CLONES)
    namespaces = gsim.namespaces()
    outcome = inner.run("--vsphere-template=networkd-kept", sim=gsim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(failed=1)
    line = _message(outcome, "which pytest-")
    assert "(another clone of this run, from networkd-kept) has too" in line
    assert "/etc/machine-id" in line and "truncate -s 0 /etc/machine-id" in line
    assert "ClientIdentifier=mac" in line
    _clean(inner, outcome, gsim, namespaces)


def test_a_clone_with_its_running_sources_address_is_refused(inner: Inner, gsim: SimHandle) -> None:
    inner.pytester.makepyfile(test_networkd=A_TEST)
    namespaces = gsim.namespaces()
    # A full clone of a running networkd VM copies its committed machine-id, so the DHCP server gives it
    # the source's own lease.
    outcome = inner.run("--vsphere-template=networkd-running", "--vsphere-clone-type=full", sim=gsim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(errors=1)
    line = _message(outcome, "which its source networkd-running has too")
    assert "truncate -s 0 /etc/machine-id" in line
    _clean(inner, outcome, gsim, namespaces)


def test_doctor_warns_of_a_machine_id_networkd_derives_leases_from(gsim: SimHandle) -> None:
    result = _doctor(gsim.sim, "--clone-type", "full", "--template", "networkd-running", "--template",
                     "linux-running")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split(": ", 1)[0]: line for line in result.stdout.splitlines()}
    warn = lines["WARN  machine-id of networkd-running"]
    assert "systemd-networkd runs DHCP (/etc/systemd/network/80-vmware-eth0.network)" in warn
    assert "truncate -s 0 /etc/machine-id" in warn and "ClientIdentifier=mac" in warn
    ok = lines["OK    machine-id of linux-running"]
    assert "no systemd-networkd configuration runs DHCP" in ok



def test_an_instant_clone_kept_on_its_sources_lease_names_the_client_identity(inner: Inner,
                                                                               gsim: SimHandle) -> None:
    inner.pytester.makepyfile(test_networkd=A_TEST)
    namespaces = gsim.namespaces()
    # The clone resumes the source's memory, machine-id included: its NIC refresh asks DHCP with the
    # source's identity and gets the source's lease back, an address discovery never takes.
    outcome = inner.run("--vsphere-template=networkd-running", "--vsphere-clone-type=instant",
                        "--vsphere-ip-timeout=5", sim=gsim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(errors=1)
    line = _message(outcome, "no usable IPv4 address")
    assert "the source's address" in line and "kept after the refresh" in line
    assert "/etc/machine-id, which an instant clone shares: set ClientIdentifier=mac" in line
    _clean(inner, outcome, gsim, namespaces)
