"""``vsphere-clone freeze``: powers on, waits for Tools, freezes through Guest Operations (real guests).

Freezing consumes its VM for the rest of the simulator's life, so each test freezes a fresh
full clone of linux-template rather than a template of the inventory.
"""

from __future__ import annotations

import json
import time

import pytest
from cli_helpers import FAST_RETRY, Run, make_clone

from pytest_vsphere_clone.client.clone import clone_vm
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator

pytestmark = pytest.mark.guests

#: Breaks the guest's VMware Tools RPC channel as a dead vmtoolsd service would: the backdoor socket
#: lives in the guest's private /run (never write outside /etc, /run, /tmp, /root: the rest is the host's).
BREAK_TOOLS_RPC = "mv /run/vmware-tools/backdoor.sock /run/vmware-tools/backdoor.sock.off"


def wait_for_tools(conn: VSphereConnection, vm: object) -> None:
    with Waiter(conn) as waiter:
        waiter.wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 30)


def guest_ops(sim: Simulator, conn: VSphereConnection, vm: object) -> GuestOperations:
    facts = sim.connection_facts()
    return GuestOperations(conn, vm, facts["GUEST_USER"], facts["GUEST_PASSWORD"], retry=FAST_RETRY)


def test_freeze_powers_on_and_freezes(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "golden", clone_type="full", power_on=False)
    result = cli(guest_sim, "freeze", "golden")
    assert result.status == 0, result.err
    assert result.out.splitlines() == [
        "powering on golden (poweredOff) ...",
        "waiting for VMware Tools in golden ...",
        'running `vmtoolsd --cmd "instantclone.freeze"` in golden through Guest Operations ...',
        "golden is frozen (runtime.instantCloneFrozen is true): instant clones of it start running, e.g. "
        "`pytest --vsphere-template=golden --vsphere-clone-type=instant`",
    ]
    vm = guest_sim.find_vm("golden")
    assert vm.frozen and vm.power_state == "poweredOn"
    again = cli(guest_sim, "freeze", "golden")
    assert again.status == 0
    assert again.out == "golden is already frozen (runtime.instantCloneFrozen is true): nothing to do\n"
    # The frozen VM is a working instant-clone source: its clone resumes running with Tools up.
    clone = clone_vm(guest_conn, CloneRequest(find_template(guest_conn, "golden"), "child", clone_type="instant"),
                     retry=FAST_RETRY).vm
    wait_for_tools(guest_conn, clone)
    assert guest_ops(guest_sim, guest_conn, clone).run("true").exit_status == 0


def test_freeze_a_running_vm(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "runner", clone_type="full", power_on=True)
    started = time.monotonic()
    result = cli(guest_sim, "freeze", "runner", "--timeout", "60")
    assert result.status == 0, result.err
    assert time.monotonic() - started < 20  # started, not awaited: the freeze command never returns while frozen
    assert not result.out.startswith("powering on")
    assert guest_sim.find_vm("runner").frozen


def test_freeze_with_a_wrong_guest_password(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "runner", clone_type="full", power_on=True)
    result = cli(guest_sim, "freeze", "runner", env={"VSPHERE_GUEST_PASSWORD": "wrong-guest-pw"},
                 secrets=("wrong-guest-pw",))
    assert result.status == 1
    assert result.error_lines == ["vsphere-clone freeze: error: guest OS of VM 'runner' rejected the login of guest "
                                  "user 'root': check --guest-user and --guest-password"]
    assert not guest_sim.find_vm("runner").frozen


def test_freeze_reports_a_failing_freeze_command(cli: Run, guest_sim: Simulator,
                                                 guest_conn: VSphereConnection) -> None:
    vm = make_clone(guest_conn, "broken", clone_type="full", power_on=True)
    wait_for_tools(guest_conn, vm)
    ops = guest_ops(guest_sim, guest_conn, vm)
    assert ops.run(BREAK_TOOLS_RPC).exit_status == 0
    result = cli(guest_sim, "freeze", "broken", "--timeout", "30")
    assert result.status == 1
    assert result.error_lines == [
        'vsphere-clone freeze: error: `vmtoolsd --cmd "instantclone.freeze"` exited with status 1 in broken before '
        "the VM froze (vmtoolsd: cannot reach the virtual machine: [Errno 2] No such file or directory): check that "
        "VMware Tools (open-vm-tools) are installed and running in the guest and that guest user 'root' may run "
        "vmtoolsd"]
    assert not guest_sim.find_vm("broken").frozen
    assert ops.run("ls /tmp/vsphere-clone-freeze-* 2>/dev/null | wc -l").stdout.strip() == "0"  # stderr file gone


def test_freeze_left_running_is_said(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "cold", clone_type="full", power_on=False)
    result = cli(guest_sim, "freeze", "cold", env={"VSPHERE_GUEST_PASSWORD": "wrong-guest-pw"},
                 secrets=("wrong-guest-pw",))
    assert result.status == 1
    assert result.error_lines[-1].endswith("check --guest-user and --guest-password (cold was powered on by this "
                                           "command and left running)")
    assert guest_sim.find_vm("cold").power_state == "poweredOn"


def test_freeze_a_windows_vm(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    # Windows has no open-vm-tools: the Tools' own vmtoolsd.exe takes the same --cmd.
    make_clone(guest_conn, "wingold", "windows-template", clone_type="full", power_on=False)
    facts = guest_sim.connection_facts()
    windows_guest = {"VSPHERE_GUEST_USER": facts["WINDOWS_GUEST_USER"],
                     "VSPHERE_GUEST_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]}
    result = cli(guest_sim, "freeze", "wingold", env=windows_guest)
    assert result.status == 0, result.err
    assert result.out.splitlines()[2] == (r'running `"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe" --cmd '
                                          r'"instantclone.freeze"` in wingold through Guest Operations ...')
    vm = guest_sim.find_vm("wingold")
    assert vm.frozen and vm.power_state == "poweredOn"
    # The frozen Windows VM is a working instant-clone source: its clone resumes with Tools up.
    clone = clone_vm(guest_conn, CloneRequest(find_template(guest_conn, "wingold"), "winchild",
                                              clone_type="instant"), retry=FAST_RETRY).vm
    wait_for_tools(guest_conn, clone)
    ops = GuestOperations(guest_conn, clone, facts["WINDOWS_GUEST_USER"], facts["WINDOWS_GUEST_PASSWORD"],
                          retry=FAST_RETRY)
    assert ops.os_family == "windows"
    assert ops.run("hostname").exit_status == 0


def test_freeze_a_windows_vm_reports_a_failing_freeze_command(cli: Run, guest_sim: Simulator,
                                                              guest_conn: VSphereConnection) -> None:
    vm = make_clone(guest_conn, "winbroken", "windows-template", clone_type="full", power_on=True)
    wait_for_tools(guest_conn, vm)
    facts = guest_sim.connection_facts()
    # Break the guest's RPC channel as a dead Tools service would (the dialect cannot move a Linux file).
    assert guest_sim.vc is not None
    guest = guest_sim.vc.guests.host.guest(guest_sim.find_vm("winbroken").mo_id)
    socket_file = guest.runtime_dir / "tools" / "backdoor.sock"
    socket_file.rename(socket_file.with_name("backdoor.sock.off"))
    result = cli(guest_sim, "freeze", "winbroken", "--timeout", "30",
                 env={"VSPHERE_GUEST_USER": facts["WINDOWS_GUEST_USER"],
                      "VSPHERE_GUEST_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]})
    assert result.status == 1
    [line] = result.error_lines
    assert line.startswith(r'vsphere-clone freeze: error: `"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe" '
                           r'--cmd "instantclone.freeze"` exited with status ')
    # The reason comes from the stderr file cmd.exe filled, which is then deleted.
    assert "(vmtoolsd: cannot reach the virtual machine: [Errno 2] No such file or directory)" in line
    assert r"check that VMware Tools (C:\Program Files\VMware\VMware Tools\vmtoolsd.exe) are installed" in line
    assert not guest_sim.find_vm("winbroken").frozen
    ops = GuestOperations(guest_conn, vm, facts["WINDOWS_GUEST_USER"], facts["WINDOWS_GUEST_PASSWORD"],
                          retry=FAST_RETRY)
    assert ops.run(r'dir /b "%TEMP%\vsphere-clone-freeze-*" 2>nul').stdout.strip() == ""


def test_freeze_json(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "jsongold", clone_type="full", power_on=False)
    result = cli(guest_sim, "freeze", "jsongold", "--json")
    assert result.status == 0, result.err
    assert json.loads(result.out) == {"vm": "jsongold", "outcome": "frozen", "frozen": True, "powered_on": True,
                                      "command": 'vmtoolsd --cmd "instantclone.freeze"'}  # no progress lines
    assert guest_sim.find_vm("jsongold").frozen
    again = cli(guest_sim, "freeze", "jsongold", "--json")
    assert again.status == 0
    assert json.loads(again.out) == {"vm": "jsongold", "outcome": "already frozen", "frozen": True,
                                     "powered_on": False, "command": None}
    wrong = cli(guest_sim, "freeze", "linux-template", "--json", env={"VSPHERE_GUEST_PASSWORD": "wrong-guest-pw"},
                secrets=("wrong-guest-pw",))
    assert wrong.status == 1
    [line] = wrong.error_lines
    assert json.loads(wrong.out) == {"error": line.removeprefix("vsphere-clone freeze: error: "), "exit_status": 1}
