"""Windows-family guests: same namespace and DHCP, the WinRM server instead of sshd, C:\\ paths."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import winrm
from guest_helpers import PASSWORD, MakeGuest, RpcRecorder, copy_disk, run_in_guest, wait_exit, wait_until

from pytest_vsphere_clone.simulator.guests import (
    GuestFileNotFound,
    GuestInvalidArgument,
    GuestOperationsUnavailable,
    GuestProgramNotFound,
)

pytestmark = pytest.mark.guests

USER = "Administrator"
CMD = r"C:\Windows\System32\cmd.exe"


def _winrm(ip: str) -> winrm.Session:
    return winrm.Session(f"http://{ip}:5985/wsman", auth=(USER, PASSWORD), transport="ntlm", ca_trust_path=None)


def test_winrm_answers_on_the_dhcp_address(make_guest: MakeGuest) -> None:
    guest = make_guest(family="windows", user=USER, hostname="win01")
    result = _winrm(guest.wait_for_ip()).run_cmd("hostname")
    assert (result.status_code, result.std_out) == (0, b"win01\r\n")
    assert guest.check_login(USER, PASSWORD) and not guest.check_login(USER, "wrong")
    # The WinRM server's NTLM accounts: a private file of NT hashes in the guest's runtime directory,
    # named in the server's environment only (see windows/winrm/accounts.py).
    accounts = guest.runtime_dir / "tools" / "winrm" / "accounts"
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    assert PASSWORD not in accounts.read_text()
    assert "NTLM_USER_FILE" not in os.environ


def test_programs_and_files_with_windows_paths(make_guest: MakeGuest) -> None:
    guest = make_guest(family="windows", user=USER, hostname="win02")
    out = rf"C:\Users\{USER}\out.txt"
    assert run_in_guest(guest, USER, CMD, rf"/c hostname > {out}") == 0
    assert guest.read_file(USER, out) == b"win02\r\n"
    assert (guest.spec.disk_dir / "drives" / "C" / "Users" / USER / "out.txt").exists()  # C: is on the disk
    assert run_in_guest(guest, USER, CMD, "/c nosuchcommand") == 9009  # beyond 8 bits: exact code kept

    temp = guest.create_temp_file(USER, "kitchen", ".txt")
    assert temp.startswith(rf"C:\Users\{USER}\AppData\Local\Temp\kitchen") and temp.endswith(".txt")
    guest.write_file(USER, "C:/Users/Administrator/forward.txt", b"slashes")
    assert guest.read_file(USER, r"c:\users\..\Users\Administrator\forward.txt") == b"slashes"
    guest.delete_file(USER, temp)

    with pytest.raises(GuestProgramNotFound):
        guest.start_program(USER, r"C:\Windows\notepad.exe", "")
    with pytest.raises(GuestFileNotFound):
        guest.start_program(USER, CMD, "/c ver", working_directory=r"C:\missing")
    with pytest.raises(GuestFileNotFound):
        guest.read_file(USER, r"D:\anything.txt")
    with pytest.raises(GuestInvalidArgument):
        guest.read_file(USER, r"Users\relative.txt")


def test_instant_clone_refreshes_with_ipconfig_renew(make_guest: MakeGuest, tmp_path: Path) -> None:
    source = make_guest(family="windows", user=USER, hostname="wingold")
    source_ip = source.wait_for_ip()
    clone = make_guest(family="windows", user=USER, resume_from=source, disk_dir=copy_disk(source, tmp_path / "clone"))
    assert clone.primary_ip() == source_ip and clone.interfaces()[0].mac == source.spec.mac

    # kitchen-vcenter's Windows refresh ends with "ipconfig /renew".
    assert run_in_guest(clone, USER, CMD, "/c ipconfig /renew") == 0
    wait_until(lambda: clone.primary_ip() not in (None, source_ip), what="a new address")
    assert clone.interfaces()[0].mac == clone.spec.mac
    assert _winrm(str(clone.primary_ip())).run_cmd("hostname").std_out == b"wingold\r\n"


TOOLS_VMTOOLSD = r"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"


def test_vmtoolsd_freezes_a_windows_guest_until_unfrozen(make_guest: MakeGuest, rpc: RpcRecorder,
                                                         tmp_path: Path) -> None:
    guest = make_guest(family="windows", user=USER, hostname="winfrz")
    ip = guest.wait_for_ip()
    # Started by its full path, as `vsphere-clone freeze` does: no cmd.exe in between.
    pid = guest.start_program(USER, TOOLS_VMTOOLSD, '--cmd "instantclone.freeze"')
    wait_until(lambda: guest.frozen, what="freeze")
    assert (guest.vm_id, "instantclone.freeze") in rpc.calls
    with pytest.raises(GuestOperationsUnavailable):
        guest.list_processes()
    # A frozen source is what instant clones resume from.
    clone = make_guest(family="windows", user=USER, resume_from=guest, disk_dir=copy_disk(guest, tmp_path / "c"))
    assert clone.primary_ip() == ip and not clone.frozen
    guest.unfreeze()
    assert wait_exit(guest, pid).exit_code == 0  # the freeze call returns once the VM runs again
    # The same program through cmd.exe and the Path: rpctool too.
    rpc.replies["info-get guestinfo.role"] = "web"
    out = rf"C:\Users\{USER}\role.txt"
    line = rf'/c vmtoolsd --cmd "info-get guestinfo.role" > {out} && rpctool "info-get guestinfo.role" >> {out}'
    assert run_in_guest(guest, USER, CMD, line) == 0
    assert guest.read_file(USER, out) == b"web\r\nweb\r\n"


def test_powershell_starts_as_slowly_as_the_spec_says(make_guest: MakeGuest) -> None:
    # The latency profile's powershell.start reaches the guest's programs (through its spec), and
    # the WinRM server's: a real powershell.exe takes about half a second to start.
    guest = make_guest(family="windows", user=USER, hostname="win-ps", powershell_start=(0.6, 0.6))
    out = rf"C:\Users\{USER}\ps.txt"
    started = time.monotonic()
    assert run_in_guest(guest, USER, CMD, rf'/c powershell -NoProfile -Command "echo ps" > {out}') == 0
    assert time.monotonic() - started >= 0.6
    assert guest.read_file(USER, out) == b"ps\r\n"
    started = time.monotonic()
    assert _winrm(guest.wait_for_ip()).run_ps("echo winrm").std_out == b"winrm\r\n"
    assert time.monotonic() - started >= 0.6
