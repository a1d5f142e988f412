"""The simulated VMware Tools inside guests: vmtoolsd --cmd / vmware-rpctool reach the simulator."""

from __future__ import annotations

import pytest
from guest_helpers import PASSWORD, MakeGuest, RpcRecorder, run_in_guest, ssh, ssh_run, wait_exit, wait_until

from pytest_vsphere_clone.simulator.guests import GuestHost, GuestOperationsUnavailable
from pytest_vsphere_clone.simulator.guests.host import procfs

pytestmark = pytest.mark.guests


def test_info_get_answers_from_the_simulator(make_guest: MakeGuest, rpc: RpcRecorder) -> None:
    guest = make_guest()
    rpc.replies["info-get guestinfo.ip"] = "10.0.0.5"
    script = (
        '-c \'vmware-rpctool "info-get guestinfo.ip" > /tmp/out; vmware-rpctool "info-get guestinfo.nope" 2> /tmp/err\''
    )
    assert run_in_guest(guest, "alice", "/bin/sh", script) == 1  # the unknown key fails

    assert guest.read_file("alice", "/tmp/out") == b"10.0.0.5\n"
    assert guest.read_file("alice", "/tmp/err") == b"No value found\n"
    assert (guest.vm_id, "info-get guestinfo.ip") in rpc.calls
    with ssh(guest.wait_for_ip(), "alice", PASSWORD) as client:  # the same tools from a login shell
        assert ssh_run(client, "vmtoolsd --cmd 'info-get guestinfo.ip'") == (0, "10.0.0.5\n")


def test_freeze_pauses_the_guest_until_unfrozen(make_guest: MakeGuest, rpc: RpcRecorder) -> None:
    guest = make_guest()
    ip = guest.wait_for_ip()  # frozen mid-DHCP, dhclient would resume only at its next retry
    # A host pid: the guest's pids are its own PID namespace's.
    sshd = next(pid for pid in guest.pids() if getattr(procfs.read_stat(pid), "comm", "") == "sshd")
    pid = guest.start_program("alice", "/usr/bin/vmtoolsd", '--cmd "instantclone.freeze"')

    wait_until(lambda: guest.frozen, what="freeze")
    assert (guest.vm_id, "instantclone.freeze") in rpc.calls
    wait_until(lambda: procfs.read_stat(sshd).state == "T", what="sshd stopped")  # type: ignore[union-attr]
    with pytest.raises(GuestOperationsUnavailable):
        guest.list_processes()

    guest.unfreeze()
    assert wait_exit(guest, pid).exit_code == 0  # the freeze call returns once the VM runs again
    with ssh(ip, "alice", PASSWORD) as client:
        assert ssh_run(client, "true")[0] == 0


def test_refused_freeze_exits_1(host: GuestHost, make_guest: MakeGuest, rpc: RpcRecorder) -> None:
    guest = make_guest()

    def refuse(vm_id: str, command: str) -> str:
        raise RuntimeError("instant clone not supported")

    host.backdoor = refuse
    try:
        assert run_in_guest(guest, "alice", "/usr/bin/vmware-rpctool", "instantclone.freeze") == 1
        assert not guest.frozen
    finally:
        host.backdoor = rpc


def test_without_a_handler_rpcs_fail(host: GuestHost, make_guest: MakeGuest, rpc: RpcRecorder) -> None:
    guest = make_guest()
    host.backdoor = None
    try:
        assert run_in_guest(guest, "alice", "/bin/sh", "-c 'vmware-rpctool \"info-get guestinfo.x\" 2>/tmp/e'") == 1
        assert guest.read_file("alice", "/tmp/e") == b"Unknown command\n"
    finally:
        host.backdoor = rpc
