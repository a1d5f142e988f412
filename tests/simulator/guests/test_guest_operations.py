"""Guest Operations on real Linux guests: programs as the user, exit codes, process lists, files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from guest_helpers import PASSWORD, MakeGuest, run_in_guest, wait_exit, wait_until

from pytest_vsphere_clone.simulator.guests import (
    GuestFileAccessDenied,
    GuestFileExists,
    GuestFileNotFound,
    GuestInvalidArgument,
    GuestLoginError,
    GuestNotAFile,
    GuestProcessNotFound,
    GuestProgramNotFound,
)

pytestmark = pytest.mark.guests

# What kitchen-vcenter runs to discover a Linux guest's address (output through a temp file).
KITCHEN_IP_DISCOVERY = "ip address show scope global | grep global | cut -b10- | cut -d/ -f1"


def test_kitchen_ip_discovery_through_temp_file(make_guest: MakeGuest) -> None:
    guest = make_guest()
    ip = guest.wait_for_ip()
    out = guest.create_temp_file("alice", "kitchen", ".txt")
    assert out.startswith("/tmp/kitchen") and out.endswith(".txt")

    pid = guest.start_program("alice", "/bin/sh", f"-c '{KITCHEN_IP_DISCOVERY} > {out}'")
    info = wait_exit(guest, pid)

    assert info.exit_code == 0 and info.owner == "alice" and info.end_time is not None
    assert info.name == "sh" and info.cmd_line == f"\"/bin/sh\" -c '{KITCHEN_IP_DISCOVERY} > {out}'"
    assert guest.read_file("alice", out).decode().split() == [ip]
    guest.delete_file("alice", out)
    with pytest.raises(GuestFileNotFound):
        guest.read_file("alice", out)


def test_programs_run_as_the_user_in_the_working_directory(make_guest: MakeGuest) -> None:
    guest = make_guest(hostname="ops1")
    cmd = "-c 'echo $(id -un) $(pwd) $(hostname) $HOME $FOO > /tmp/who'"
    assert run_in_guest(guest, "alice", "/bin/sh", cmd) == 0
    assert guest.read_file("alice", "/tmp/who") == b"alice /home/alice ops1 /home/alice\n"

    # An explicit environment is the complete environment, as the vSphere API specifies.
    assert run_in_guest(guest, "alice", "/bin/sh", cmd, working_directory="/tmp", env=["FOO=bar"]) == 0
    assert guest.read_file("alice", "/tmp/who") == b"alice /tmp ops1 bar\n"


def test_exit_codes_and_process_listing(make_guest: MakeGuest) -> None:
    guest = make_guest()
    assert run_in_guest(guest, "alice", "/bin/sh", "-c 'exit 3'") == 3
    assert run_in_guest(guest, "alice", "/bin/false") == 1

    sleeper = guest.start_program("alice", "/bin/sleep", "30")
    listed = {p.pid: p for p in guest.list_processes()}
    assert listed[sleeper].exit_code is None and listed[sleeper].owner == "alice"
    assert any(p.name == "sshd" and p.owner == "root" for p in listed.values())  # the guest's own daemons
    assert [p.pid for p in guest.list_processes([sleeper, 999999])] == [sleeper]

    guest.terminate_process(sleeper)
    assert wait_exit(guest, sleeper).exit_code == 128 + 15  # SIGTERM
    with pytest.raises(GuestProcessNotFound):
        guest.terminate_process(sleeper)
    with pytest.raises(GuestProcessNotFound):
        guest.terminate_process(os.getpid())  # a host process is not the guest's


def test_login_errors(make_guest: MakeGuest) -> None:
    guest = make_guest()
    guest.require_login("alice", PASSWORD)
    with pytest.raises(GuestLoginError):
        guest.require_login("alice", "wrong")
    with pytest.raises(GuestLoginError):
        guest.start_program("mallory", "/bin/true", "")


def test_missing_program_or_directory(make_guest: MakeGuest) -> None:
    guest = make_guest()
    with pytest.raises(GuestProgramNotFound):
        guest.start_program("alice", "/no/such/program", "")
    with pytest.raises(GuestNotAFile):
        guest.start_program("alice", "/usr/bin", "")
    with pytest.raises(GuestFileNotFound, match="working directory"):
        guest.start_program("alice", "/bin/true", "", working_directory="/no/such/dir")
    with pytest.raises(GuestInvalidArgument):
        guest.start_program("alice", "bin/true", "")
    # Not executable: the program starts and the shell reports 126, as with real VMware Tools.
    assert run_in_guest(guest, "alice", "/etc/hostname") == 126


def test_file_operations_respect_the_user(make_guest: MakeGuest) -> None:
    guest = make_guest()
    home = "/home/alice/data.bin"
    guest.write_file("alice", home, b"\x00\x01binary")
    assert guest.read_file("alice", home) == b"\x00\x01binary"
    with pytest.raises(GuestFileExists):
        guest.write_file("alice", home, b"again")
    guest.write_file("alice", home, b"again", overwrite=True)
    assert guest.read_file("alice", home) == b"again"
    assert (guest.spec.disk_dir / "home" / "alice" / "data.bin").stat().st_uid == 1000  # owned by the user

    with pytest.raises(GuestFileAccessDenied):
        guest.read_file("alice", "/etc/shadow")
    with pytest.raises(GuestFileAccessDenied):
        guest.write_file("alice", "/etc/evil", b"x")
    with pytest.raises(GuestNotAFile):
        guest.read_file("alice", "/home/alice")
    with pytest.raises(GuestNotAFile):
        guest.delete_file("alice", "/home/alice")
    with pytest.raises(GuestFileNotFound):
        guest.delete_file("alice", "/home/alice/nothing")
    with pytest.raises(GuestInvalidArgument):
        guest.read_file("alice", "relative/path")
    with pytest.raises(GuestFileNotFound):
        guest.create_temp_file("alice", "x", "", directory="/no/such/dir")


def test_guest_etc_changes_stay_in_the_guest(make_guest: MakeGuest) -> None:
    guest = make_guest(user="root")
    assert run_in_guest(guest, "root", "/bin/sh", "-c 'echo guest-only >> /etc/motd; echo x > /etc/pvcs-test'") == 0
    assert guest.read_file("root", "/etc/pvcs-test") == b"x\n"
    assert not Path("/etc/pvcs-test").exists()
    assert "guest-only" not in Path("/etc/motd").read_text()


def test_finished_programs_stay_listed(make_guest: MakeGuest) -> None:
    guest = make_guest()
    pid = guest.start_program("alice", "/bin/true", "")
    wait_until(lambda: guest.list_processes([pid])[0].exit_code is not None, what="exit")
    time.sleep(0.05)
    (info,) = guest.list_processes([pid])
    assert info.exit_code == 0 and info.end_time is not None and info.end_time >= info.start_time
