"""Guest isolation: a guest sees and signals only its own processes, as in a VM.

Every step goes through the real pieces: pyVmomi -> simulator over HTTPS -> the clone's
guest, reached with Guest Operations or with SSH (paramiko) at the address VMware Tools
reported. The guest user of the simulator's Linux guests is root.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from guest_helpers import ssh, ssh_run
from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator

pytestmark = pytest.mark.guests

_names = itertools.count(1)


def _until(check: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a condition; the deadline only bounds a hang (nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


class Vm:
    """A running clone, with Guest Operations and SSH as its guest user (root)."""

    def __init__(self, si: Any, vm: Any, user: str, password: str) -> None:
        self.si, self.vm, self.user, self.password = si, vm, user, password
        self.auth = vim.vm.guest.NamePasswordAuthentication(username=user, password=password)

    @property
    def processes(self) -> Any:
        return self.si.content.guestOperationsManager.processManager

    @property
    def ip(self) -> str:
        _until(lambda: self.vm.guest.ipAddress, what="the guest's address")
        return str(self.vm.guest.ipAddress)

    def start(self, program: str, arguments: str = "") -> int:
        spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
        return int(self.processes.StartProgramInGuest(self.vm, self.auth, spec))

    def listed(self, pids: list[int] | None = None) -> dict[int, Any]:
        """ListProcessesInGuest, by pid."""
        return {p.pid: p for p in self.processes.ListProcessesInGuest(self.vm, self.auth, pids)}

    def run(self, program: str, arguments: str = "") -> int:
        """StartProgramInGuest, then ListProcessesInGuest until it has ended: its exit code."""
        pid = self.start(program, arguments)
        ended: list[Any] = []

        def done() -> bool:
            ended[:] = [self.listed([pid])[pid]]
            return ended[0].exitCode is not None

        _until(done, 30.0, f"exit of {program} {arguments}")
        return int(ended[0].exitCode)

    def ssh(self) -> paramiko.SSHClient:
        return ssh(self.ip, self.user, self.password)

    def shell(self, command: str) -> tuple[int, str]:
        with self.ssh() as client:
            return ssh_run(client, command)


@pytest.fixture
def make_vm(gsim: Simulator, gsi: Any) -> Iterator[Callable[[], Vm]]:
    """Running linked clones of linux-template, destroyed after the test."""
    facts = gsim.connection_facts()
    made: list[Any] = []

    def make() -> Vm:
        template = vm_by_name(gsi, "linux-template")
        vm = wait(template.CloneVM_Task(folder=template.parent, name=f"isolation-{next(_names)}",
                                        spec=linked_clone_spec(template.snapshot.currentSnapshot)))
        made.append(vm)
        wait(vm.PowerOnVM_Task())
        _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what="Tools")
        return Vm(gsi, vm, facts["GUEST_USER"], facts["GUEST_PASSWORD"])

    yield make
    for vm in made:
        if vm.runtime.powerState == "poweredOn":
            wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())


@pytest.fixture
def host_sshd(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A host process named sshd (a copy of sleep): what a guest's ``pkill sshd`` must not reach."""
    fake = tmp_path / "sshd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "600"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _ps(vm: Vm) -> dict[int, str]:
    """``ps`` in the guest: pid -> command name."""
    code, out = vm.shell("ps -e -o pid= -o comm=")
    assert code == 0, out
    return {int(pid): comm for pid, comm in (line.split(None, 1) for line in out.splitlines())}


def test_a_guest_sees_only_its_own_processes(make_vm: Callable[[], Vm]) -> None:
    a, b = make_vm(), make_vm()
    b.start("/bin/sleep", "300")
    a_ps = _ps(a)

    assert a_ps[1] == "sh"  # the guest's own init (a shell: see guests/vmtools/shims.py)
    # Its init and the init's sleep, its sshd and this session, its DHCP client, this ps: nothing of the
    # host's (no dnsmasq, no simulator, no test process), nothing of b's (b's sleeper, b's dhclient).
    assert set(a_ps.values()) <= {"sh", "sleep", "sshd", "sshd-session", "dhclient", "bash", "ps"}, a_ps
    names = list(a_ps.values())
    assert names.count("dhclient") == 1 and names.count("sleep") == 1, a_ps
    code, out = a.shell(f"kill -0 {os.getpid()} 2>&1")  # the simulator's pid names nothing in the guest
    assert code != 0 and "No such process" in out


def test_guest_operations_report_the_guests_own_pids(make_vm: Callable[[], Vm]) -> None:
    vm = make_vm()
    sleeper = vm.start("/bin/sleep", "300")

    listed, ps = vm.listed(), _ps(vm)
    sshd = int(vm.shell("cat /run/sshd.pid")[1])
    # The pids ListProcessesInGuest reports are the ones the guest's own tools show.
    for pid in [1, sshd] + [pid for pid, comm in ps.items() if comm == "dhclient"]:
        assert listed[pid].name == ps[pid]
    assert listed[sleeper].exitCode is None
    code, cmdline = vm.shell(f"tr '\\0' ' ' < /proc/{sleeper}/cmdline")
    assert code == 0 and '"/bin/sleep" 300' in cmdline  # /bin/sh -c '"/bin/sleep" 300', as VMware Tools runs it

    vm.processes.TerminateProcessInGuest(vm.vm, vm.auth, sleeper)
    _until(lambda: vm.listed([sleeper])[sleeper].exitCode is not None, what="the sleeper's end")
    assert vm.listed([sleeper])[sleeper].exitCode == 128 + 15
    with pytest.raises(vim.fault.GuestProcessNotFound):
        vm.processes.TerminateProcessInGuest(vm.vm, vm.auth, os.getpid())  # a host pid is not the guest's

    # Signals from inside a guest never reach its init, so TerminateProcessInGuest(1) leaves it running.
    vm.processes.TerminateProcessInGuest(vm.vm, vm.auth, 1)
    assert vm.run("/bin/true") == 0 and 1 in vm.listed([1])


def test_pkill_sshd_in_a_guest_kills_only_that_guests_sshd(
    make_vm: Callable[[], Vm], host_sshd: subprocess.Popen[bytes]
) -> None:
    a, b = make_vm(), make_vm()
    b_sshd = b.shell("cat /run/sshd.pid")

    assert a.run("/bin/sh", "-c 'pkill -x sshd'") == 0

    _until(lambda: "sshd" not in {p.name for p in a.listed().values() if p.exitCode is None}, what="a's sshd gone")
    with pytest.raises((paramiko.SSHException, OSError)):
        a.ssh()
    assert b.shell("cat /run/sshd.pid") == b_sshd  # b's sshd is the same one, and serves
    assert host_sshd.poll() is None


def test_kill_minus_one_as_root_leaves_the_host_the_simulator_and_other_guests(
    gsi: Any, make_vm: Callable[[], Vm], host_sshd: subprocess.Popen[bytes]
) -> None:
    victim, bystander = make_vm(), make_vm()
    bystander_sshd = bystander.shell("cat /run/sshd.pid")

    with victim.ssh() as client:  # root's shell kills all it may signal: its own session too
        transport = client.get_transport()
        assert transport is not None
        transport.open_session().exec_command("kill -9 -1")
        _until(lambda: not transport.is_active(), what="the session's end")

    assert host_sshd.poll() is None  # the host's processes
    assert gsi.CurrentTime() is not None and vm_by_name(gsi, "linux-template") is not None  # the simulator
    assert bystander.shell("cat /run/sshd.pid") == bystander_sshd  # the other guest, its sshd untouched
    # The victim's own processes are gone, but not its init: Guest Operations still work, as in a VM.
    running = {p.name for p in victim.listed().values() if p.exitCode is None}
    assert "sshd" not in running and "dhclient" not in running
    assert victim.run("/bin/sh", "-c 'test -d /proc/1'") == 0


def _segments_of_4096() -> int:
    """Shared memory segments of 4096 bytes on the host."""
    out = subprocess.run(["ipcs", "-m"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[4:5] == ["4096"])


_MQ = "/pvcs-isolation"


def _mq_open(flags: int) -> str:
    """mq_open(3) of the POSIX message queue _MQ with ``flags``: "ok", or the error (a guest's shell command)."""
    return (
        "python3 -c 'import ctypes, os; rt = ctypes.CDLL(\"librt.so.1\", use_errno=True); "
        f"q = rt.mq_open(b\"{_MQ}\", {flags}, 0o600, None); "
        "print(\"ok\" if q >= 0 else os.strerror(ctypes.get_errno()))'"
    )


def _host_has_mq() -> bool:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    fd = rt.mq_open(_MQ.encode(), os.O_RDWR, 0o600, None)
    if fd >= 0:
        os.close(fd)
    return bool(fd >= 0)


def test_a_guest_has_its_own_ipc_terminals_and_a_read_only_sys(make_vm: Callable[[], Vm]) -> None:
    a, b = make_vm(), make_vm()
    on_host = _segments_of_4096()

    code, out = a.shell("ipcmk -M 4096 >/dev/null && ipcs -m | awk '$5 == 4096' | wc -l")
    assert (code, out) == (0, "1\n")
    assert b.shell("ipcs -m | awk '$5 == 4096' | wc -l") == (0, "0\n")  # a's shared memory is a's
    assert _segments_of_4096() == on_host
    assert a.shell(_mq_open(os.O_CREAT | os.O_RDWR)) == (0, "ok\n")
    assert a.shell(_mq_open(os.O_RDWR)) == (0, "ok\n")
    assert b.shell(_mq_open(os.O_RDWR)) == (0, "No such file or directory\n")  # a's message queue is a's
    assert not _host_has_mq()

    code, out = a.shell("touch /sys/kernel/pvcs-isolation 2>&1")
    assert code != 0 and "Read-only file system" in out

    with a.ssh() as client:  # a login with a terminal gets one of the guest's own pseudo-terminals
        _, stdout, _ = client.exec_command("tty; ls /dev/pts", get_pty=True, timeout=10)
        lines = stdout.read().decode().split()
    assert lines[0] == "/dev/pts/0" and sorted(lines[1:]) == ["0", "ptmx"]
