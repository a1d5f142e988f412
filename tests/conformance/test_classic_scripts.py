"""Classic pyVmomi scripts (classic_scripts/) against the bundled simulator with real guests.

The scripts are written as users of pyvmomi-community-samples and community.vmware write them:
SmartConnect with an SSL context, container views, RetrieveProperties with specs built by hand,
property reads by attribute, tasks polled through ``task.info`` or WaitForUpdates. Each test starts
a fresh simulator, runs scripts as subprocesses with the connection in the environment, and
asserts exit 0 and the lines that show what they found; a script that fails fails its test.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

SCRIPTS_DIR = Path(__file__).parent / "classic_scripts"
SCRIPTS = ["clone_vm.py", "custom_attributes.py", "datastore_files.py", "destroy_vm.py", "events.py", "find_vm.py",
           "guest_ops.py", "list_inventory.py", "power.py", "reconfigure.py", "snapshots.py"]
#: Seconds one script may take (a clone waits up to 120 s for its IP address).
SCRIPT_TIMEOUT = 300.0


@dataclass(frozen=True)
class ScriptRun:
    """One script's run: its command line, exit status and output."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        """The whole transcript, for an assertion message."""
        text = f"{' '.join(self.command[1:])} exited {self.returncode}\n--- stdout ---\n{self.stdout}"
        if self.stderr.strip():
            text += f"--- stderr ---\n{self.stderr}"
        return text

    def line(self, pattern: str) -> re.Match[str]:
        """The first stdout line matching ``pattern`` (a regex searched in each line); fails without one."""
        for line in self.stdout.splitlines():
            match = re.search(pattern, line)
            if match:
                return match
        pytest.fail(f"no line matching {pattern!r} in the output of {self.report()}", pytrace=False)


class Scripts:
    """Runs the classic scripts against one simulator, as a user with its facts in the environment."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        facts = sim.connection_facts()
        self.env = {**os.environ, "VSPHERE_HOST": sim.host, "VSPHERE_PORT": str(sim.port),
                    "VSPHERE_USER": sim.user, "VSPHERE_PASSWORD": sim.password,
                    "VSPHERE_CA_FILE": str(sim.ca_file), "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("GUEST_USER", None)
        self.env.pop("GUEST_PASSWORD", None)
        self.facts = facts

    def run(self, script: str, *args: str, env: dict[str, str] | None = None) -> ScriptRun:
        """Run ``script`` with ``args``; whatever the outcome."""
        assert script in SCRIPTS, f"{script} is not listed in SCRIPTS"
        command = [sys.executable, str(SCRIPTS_DIR / script), *args]
        done = subprocess.run(command, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=SCRIPT_TIMEOUT, cwd=SCRIPTS_DIR)
        return ScriptRun(command, done.returncode, done.stdout, done.stderr)

    def ok(self, script: str, *args: str, env: dict[str, str] | None = None) -> ScriptRun:
        """Run ``script`` and fail the test unless it exits 0."""
        run = self.run(script, *args, env=env)
        assert run.returncode == 0, run.report()
        return run

    def clone(self, name: str, template: str = "linux-template", *extra: str) -> ScriptRun:
        """A linked clone of ``template`` from its snapshot "base", powered on with an IP (unless told)."""
        return self.ok("clone_vm.py", "--vm-name", name, "--template", template, "--snapshot", "base", *extra)


@pytest.fixture
def classic_sim() -> Iterator[Simulator]:
    """A fresh simulator with real guests for one test; fails where guests cannot run."""
    reason = guest_support_problem()
    if reason:
        pytest.fail(f"the classic scripts need the simulator's real guests: {reason}", pytrace=False)
    with Simulator(SimulatorConfig(guests=True)) as simulator:
        yield simulator


@pytest.fixture
def scripts(classic_sim: Simulator) -> Scripts:
    return Scripts(classic_sim)


def test_every_script_is_run() -> None:
    """The scripts on disk are exactly the ones the tests run: none is left out silently."""
    assert sorted(p.name for p in SCRIPTS_DIR.glob("*.py")) == sorted(SCRIPTS)


@pytest.mark.guests
def test_list_inventory(scripts: Scripts) -> None:
    ip = scripts.clone("web01").line(r"ip=(\S+)").group(1)
    scripts.sim.reset_counters()
    run = scripts.ok("list_inventory.py")
    run.line(r"^Connected to VMware vCenter Server .* VirtualCenter")
    run.line(r"^Datacenter: dc1 vmFolder=vm hostFolder=host$")
    run.line(r"^Cluster: cluster1 hosts=2 .* drs=True ha=False pool=Resources$")
    for host in ("esx1", "esx2"):
        run.line(rf"^Host: {host} parent=cluster1 state=connected power=poweredOn .* cores=\d+ threads=\d+ "
                 rf"memory_gb=[1-9]\d* product='VMware ESXi 8")
    run.line(r"^Datastore: datastore1 type=VMFS capacity_gb=2048 free_gb=\d+ ")
    run.line(r"^Network: VM Network hosts=2 ")
    run.line(r"^VM: linux-template power=poweredOff ip=- ")
    run.line(rf"^VM: web01 power=poweredOn ip={re.escape(ip)} template=False host=esx\d .*tools=guestToolsRunning")
    run.line(r"^  path=\[datastore1\] web01/web01.vmx uuid=\S+ instanceUuid=\S+ cpus=2 memory_mb=2048 nics=1 "
             r"disks=1 heartbeat=green ")
    run.line(rf"^  nic 00:50:56:\S+ network=VM Network connected=True ips={re.escape(ip)}(,|$)")
    run.line(r"^1 datacenter\(s\), 2 host\(s\), 1 datastore\(s\), 5 VM\(s\)$")
    # pyVmomi's RetrieveContents goes on the wire as the classic RetrieveProperties.
    assert scripts.sim.counters()["RetrieveProperties"] >= 1, scripts.sim.counters()


@pytest.mark.guests
def test_find_vm(scripts: Scripts) -> None:
    clone = scripts.clone("web01")
    moid = clone.line(r"^Clone web01 is (vm-\d+)").group(1)
    ip = clone.line(r"ip=(\S+)").group(1)
    run = scripts.ok("find_vm.py", "--vm-name", "web01", "--guest")
    run.line(rf"^container view: web01 is {moid}$")
    run.line(rf"^FindByInventoryPath\(dc1/vm/web01\): 'vim.VirtualMachine:{moid}'$")
    run.line(r"^FindByInventoryPath of a missing VM: None$")
    run.line(rf"^FindByDnsName\(web01\): 'vim.VirtualMachine:{moid}'$")
    run.line(rf"^FindByIp\({re.escape(ip)}\): 'vim.VirtualMachine:{moid}'$")
    host = run.line(r"^host (\S+): ").group(1)
    address, _ = scripts.sim.host_address(host)  # the host's management address
    run.line(rf"^host {host}: FindByDnsName='(vim.HostSystem:host-\d+)' FindByIp\({re.escape(address)}\)="
             r"'\1'$")
    missing = scripts.run("find_vm.py", "--vm-name", "no-such-vm")
    assert missing.returncode == 1 and "no VM called no-such-vm" in missing.stderr, missing.report()


@pytest.mark.guests
def test_linked_clone(scripts: Scripts) -> None:
    # The template changes after its snapshot; a clone from the snapshot has the snapshot's settings
    # (CloneSpec.snapshot: "the newly created virtual machine will have the same configuration as
    # the virtual machine at the time the snapshot was taken").
    scripts.ok("reconfigure.py", "--vm-name", "linux-template", "--cpus", "8", "--annotation", "after base")
    run = scripts.clone("web01")
    run.line(r"^Cloning linux-template \(vm-\d+\) from snapshot snapshot-\d+ as web01$")
    run.line(r"^Clone web01 is vm-\d+ on esx\d in Resources: cpus=2 memory_mb=2048 annotation=''$")
    run.line(r"^  CloneVM_Task: task task-\d+ success$")
    run.line(r"^  disk Hard disk 1: \[datastore1\] web01/\S+\.vmdk parent=\[datastore1\] linux-template/")
    run.line(r"^  PowerOnVM_Task: task task-\d+ success$")
    run.line(r"^Clone web01 power=poweredOn$")
    ip = run.line(r"^Clone web01 ip=(\d+\.\d+\.\d+\.\d+) hostname=web01 tools=guestToolsRunning$").group(1)
    vm = scripts.sim.find_vm("web01")
    assert vm.power_state == "poweredOn" and vm.tools.ip_address == ip
    # A task that fails: the script reads the fault from task.info.error.
    again = scripts.run("clone_vm.py", "--vm-name", "web01", "--template", "linux-template", "--snapshot", "base")
    assert again.returncode == 1, again.report()
    assert "CloneVM_Task: vim.fault.DuplicateName: The name 'web01' already exists." in again.stderr, again.report()
    # A template without a snapshot: the script refuses a linked clone, and says why.
    no_snapshot = scripts.run("clone_vm.py", "--vm-name", "web02", "--template", "linux-frozen")
    assert no_snapshot.returncode == 1 and "linux-frozen has no snapshot" in no_snapshot.stderr, \
        no_snapshot.report()


@pytest.mark.guests
def test_datastore_files(scripts: Scripts) -> None:
    scripts.clone("web01")
    run = scripts.ok("datastore_files.py", "--datastore", "datastore1", "--vm-name", "web01")
    run.line(r"^\[datastore1\]$")
    run.line(r"^  web01 FolderInfo ")
    run.line(r"^\[datastore1\] web01/?$")
    run.line(r"^  web01-\d+\.vmdk VmDiskInfo size=[1-9]\d* ")
    run.line(r"^  web01\.vmx VmConfigInfo size=[1-9]\d* ")
    run.line(r"^web01: \[datastore1\] web01/web01\.vmx, \[datastore1\] web01/web01-\d+\.vmdk found$")


@pytest.mark.guests
def test_snapshots(scripts: Scripts) -> None:
    scripts.clone("web01")
    run = scripts.ok("snapshots.py", "--vm-name", "web01")
    run.line(r"^web01 \(vm-\d+\) power=poweredOn; snapshots before:$")
    run.line(r"^  classic-snapshot snapshot-\d+ state=poweredOff quiesced=False .* \(current\)$")
    run.line(r"^Annotation now 'changed after the snapshot'; the snapshot's is ''$")
    # RevertToSnapshot_Task to a snapshot taken without memory: the VM ends powered off with the
    # snapshot's settings (VirtualMachineSnapshot.config).
    run.line(r"^Reverted to classic-snapshot: power=poweredOff annotation=''$")
    run.line(r"^The removed snapshot snapshot-\d+ is gone \(ManagedObjectNotFound\)$")
    assert scripts.sim.find_vm("web01").power_state == "poweredOff"


@pytest.mark.guests
@pytest.mark.parametrize("family", ["linux", "windows"])
def test_guest_operations(scripts: Scripts, family: str) -> None:
    facts = scripts.facts
    user, password = ((facts["GUEST_USER"], facts["GUEST_PASSWORD"]) if family == "linux"
                      else (facts["WINDOWS_GUEST_USER"], facts["WINDOWS_GUEST_PASSWORD"]))
    scripts.clone("guest01", f"{family}-template")
    run = scripts.ok("guest_ops.py", "--vm-name", "guest01", env={"GUEST_USER": user, "GUEST_PASSWORD": password})
    host = run.line(rf"^guest01: tools guestToolsRunning, {family}Guest, host (\S+)$").group(1)
    # Through a vCenter the transfer URLs name the VM's ESXi host on its own HTTPS port, used as given.
    address, port = scripts.sim.host_address(host)
    url = re.escape(f"https://{address}:{port}/guestFile")
    run.line(rf"^InitiateFileTransferToGuest: {url}$")
    run.line(rf"^ListProcessesInGuest: pid \d+ exited 0 \(owner {user}, ")
    run.line(rf"^ListProcessesInGuest: pid \d+ exited 3 \(owner {user}, ")
    run.line(rf"^InitiateFileTransferFromGuest: {url} size=37$")
    expected = "UPLOADED BY GUEST_OPS.PY" if family == "linux" else "uploaded by guest_ops.py"
    run.line(rf"^Downloaded 37 bytes from \S+: '{expected}'$")
    run.line(r"^DeleteFileInGuest: files removed$")
    assert "'*' is the host" not in run.stdout, run.report()


@pytest.fixture
def esxi_sim() -> Iterator[Simulator]:
    """A simulated ESXi host reached directly, on 443 as ESXi serves, at a loopback address of its own."""
    reason = guest_support_problem()
    if reason:
        pytest.fail(f"the classic scripts need the simulator's real guests: {reason}", pytrace=False)
    for _ in range(20):
        # 127.0.0.0/16 but not 127.0.0.x: the simulators' ESXi host blocks never use it.
        address = f"127.0.{1 + secrets.randbelow(254)}.{1 + secrets.randbelow(254)}"
        try:
            simulator = Simulator(SimulatorConfig(host=address, port=443, guests=True, api_type="HostAgent")).start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        try:
            yield simulator
        finally:
            simulator.stop()
        return
    pytest.fail("no free loopback address for a simulated ESXi host on 443", pytrace=False)


@pytest.mark.guests
def test_guest_operations_through_esxi(esxi_sim: Simulator) -> None:
    """Through ESXi a transfer URL's host is ``*``; the classic fix-up puts the ESXi host there."""
    scripts = Scripts(esxi_sim)
    scripts.ok("list_inventory.py").line(r"^Connected to VMware ESXi .*HostAgent\)$")
    scripts.ok("power.py", "--vm-name", "linux-template", "on").line(r"^on: power=poweredOn tools=guestToolsRunning")
    run = scripts.ok("guest_ops.py", "--vm-name", "linux-template",
                     env={"GUEST_USER": scripts.facts["GUEST_USER"], "GUEST_PASSWORD": scripts.facts["GUEST_PASSWORD"]})
    run.line(r"^InitiateFileTransferToGuest: https://\*:443/guestFile$")
    run.line(r"^InitiateFileTransferFromGuest: https://\*:443/guestFile size=37$")
    run.line(rf"^  '\*' is the host this script talks to: https://{re.escape(esxi_sim.host)}:443/guestFile$")
    run.line(r"^Downloaded 37 bytes from \S+: 'UPLOADED BY GUEST_OPS.PY'$")


@pytest.mark.guests
def test_power(scripts: Scripts) -> None:
    scripts.clone("web01", "linux-template", "--no-power-on")
    run = scripts.ok("power.py", "--vm-name", "web01", "on", "reset", "reboot-guest", "shutdown-guest", "on", "off")
    run.line(r"^web01: power=poweredOff tools=guestToolsNotRunning$")
    run.line(r"^on: power=poweredOn tools=guestToolsRunning ")
    run.line(r"^  ResetVM_Task: task task-\d+ success$")
    run.line(r"^reset: power=poweredOn tools=guestToolsRunning ")
    run.line(r"^reboot-guest: power=poweredOn tools=guestToolsRunning ip=\d+\.\d+\.\d+\.\d+$")
    run.line(r"^shutdown-guest: power=poweredOff tools=guestToolsNotRunning ip=-$")
    run.line(r"^off: power=poweredOff tools=guestToolsNotRunning ip=-$")
    assert scripts.sim.find_vm("web01").power_state == "poweredOff"


@pytest.mark.guests
def test_reconfigure(scripts: Scripts) -> None:
    scripts.clone("web01")
    run = scripts.ok("reconfigure.py", "--vm-name", "web01", "--cpus", "4", "--memory-mb", "4096",
                     "--annotation", "owner: classic scripts")
    run.line(r"^web01: power=poweredOn cpus=2 memory_mb=2048 annotation=''")
    run.line(r"^  PowerOffVM_Task: task task-\d+ success$")
    run.line(r"^  ReconfigVM_Task: task task-\d+ success$")
    run.line(r"^web01: power=poweredOff cpus=4 memory_mb=4096 annotation='owner: classic scripts'$")
    run.line(r"^summary.config: numCpu=4 memorySizeMB=4096 annotation='owner: classic scripts'$")
    vm = scripts.sim.find_vm("web01")
    assert (vm.num_cpu, vm.memory_mb, vm.annotation) == (4, 4096, "owner: classic scripts")


@pytest.mark.guests
def test_custom_attributes(scripts: Scripts) -> None:
    scripts.clone("web01", "linux-template", "--no-power-on")
    first = scripts.ok("custom_attributes.py", "--vm-name", "web01", "--attribute", "owner", "--value", "team-a")
    first.line(r"^AddCustomFieldDef: owner key=\d+ type=vim.VirtualMachine$")
    first.line(r"^AddCustomFieldDef\(owner\) again: DuplicateName$")
    first.line(r"^setCustomValue: \{'owner': 'team-a \(setCustomValue\)'\}$")
    first.line(r"^SetField: \{'owner': 'team-a'\}$")
    first.line(r"^summary.customValue: \{'owner': 'team-a'\}$")
    second = scripts.ok("custom_attributes.py", "--vm-name", "web01", "--attribute", "owner", "--value", "team-b",
                        "--remove")
    second.line(r"^Custom attribute owner exists, key=\d+$")
    second.line(r"^web01: owner=team-b$")
    second.line(r"^RemoveCustomFieldDef: owner removed$")


@pytest.mark.guests
def test_events(scripts: Scripts) -> None:
    scripts.clone("web01")
    scripts.ok("reconfigure.py", "--vm-name", "web01", "--annotation", "events")
    expected = ["VmClonedEvent", "VmStartingEvent", "VmPoweredOnEvent", "VmReconfiguredEvent", "TaskEvent"]
    run = scripts.ok("events.py", "--vm-name", "web01", *[f"--expect={name}" for name in expected])
    run.line(r"^\s+\d+ \S+ vim.event.VmClonedEvent user=administrator@vsphere.local vm=web01: "
             r"Clone of linux-template completed$")
    run.line(r"^\s+\d+ \S+ vim.event.VmPoweredOnEvent .*: web01 on esx\d in dc1 is powered on$")
    run.line(r"^\s+\d+ \S+ vim.event.VmReconfiguredEvent .*: Reconfigured web01 on esx\d in dc1$")
    run.line(r"^QueryEvents\(eventTypeId=VmReconfiguredEvent\): 1 event\(s\), VMs web01$")


@pytest.mark.guests
def test_destroy(scripts: Scripts) -> None:
    scripts.clone("web01")
    scripts.sim.reset_counters()
    run = scripts.ok("destroy_vm.py", "--vm-name", "web01")
    run.line(r"^Found web01 \(vm-\d+\) at dc1/vm/web01, power=poweredOn$")
    run.line(r"^  power=poweredOff$")
    run.line(r"^Reading vm-\d+ now: ManagedObjectNotFound$")
    run.line(r"^VmRemovedEvent \d+: Removed web01 on esx\d from dc1$")
    assert "web01" not in scripts.sim.vm_names()
    counters = scripts.sim.counters()
    assert counters["WaitForUpdates"] >= 2 and counters["Destroy_Task"] == 1, counters


def test_failures_exit_non_zero() -> None:
    """A script that cannot do its job says why on stderr and exits non-zero (what the tests above rely on)."""
    with Simulator() as sim:
        scripts = Scripts(sim)
        wrong = scripts.run("list_inventory.py", env={"VSPHERE_PASSWORD": "not-the-password"})
        assert wrong.returncode == 1 and "cannot log in" in wrong.stderr, wrong.report()
        assert "not-the-password" not in wrong.stdout + wrong.stderr, wrong.report()
        unverified = scripts.run("list_inventory.py", env={"VSPHERE_CA_FILE": ""})
        assert unverified.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in unverified.stderr, unverified.report()
        missing = scripts.run("destroy_vm.py", "--vm-name", "no-such-vm")
        assert missing.returncode == 1 and "no VM called no-such-vm" in missing.stderr, missing.report()
        usage = scripts.run("list_inventory.py", env={"VSPHERE_HOST": ""})
        assert usage.returncode == 2 and "--host (or VSPHERE_HOST) is required" in usage.stderr, usage.report()
