"""Guest Operations on real guests through pyVmomi: directories, listings, environment, process exit codes;
RebootGuest, reverts and failed instant clones as the guests see them.

Every call goes pyVmomi -> simulator over HTTPS -> the VM's guest (a Linux namespace guest, or the
Windows-family emulation whose drive C: is a directory of the VM's disk).
"""

from __future__ import annotations

import http.client
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator
from pytest_vsphere_clone.simulator.guests.ops import programs

pytestmark = pytest.mark.guests

LINUX_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a client-visible condition; the deadline only bounds a hang (nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


@dataclass
class Vm:
    """A running clone and what Guest Operations need to reach it."""

    si: Any
    vm: Any
    auth: Any

    @property
    def files(self) -> Any:
        return self.si.content.guestOperationsManager.fileManager

    @property
    def processes(self) -> Any:
        return self.si.content.guestOperationsManager.processManager

    def run(self, program: str, arguments: str, auth: Any = None) -> Any:
        """Start a program and wait (by ListProcessesInGuest, as a client does) for its exit."""
        auth = auth or self.auth
        spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
        pid = self.processes.StartProgramInGuest(self.vm, auth, spec)
        found: list[Any] = []

        def ended() -> bool:
            found[:] = self.processes.ListProcessesInGuest(self.vm, auth, [pid])
            return bool(found) and found[0].exitCode is not None

        _until(ended, 30.0, f"exit of {program} {arguments}")
        return found[0]

    def sh(self, script: str, auth: Any = None) -> int:
        info = self.run("/bin/sh", "-c " + _quote(script), auth)
        return int(info.exitCode)

    def names(self, path: str, **kw: Any) -> list[str]:
        return [f.path for f in self.files.ListFilesInGuest(self.vm, self.auth, path, **kw).files or []]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _running_clone(si: Any, template_name: str, name: str) -> Any:
    template = vm_by_name(si, template_name)
    vm = wait(template.CloneVM_Task(folder=template.parent, name=name,
                                    spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    wait(vm.PowerOnVM_Task())
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what=f"Tools in {name}")
    return vm


def _destroy(vm: Any) -> None:
    if vm.runtime.powerState == "poweredOn":
        wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())


@pytest.fixture(scope="module")
def linux(gsim: Simulator, gsi: Any) -> Iterator[Vm]:
    facts = gsim.connection_facts()
    vm = _running_clone(gsi, "linux-template", "files-linux")
    yield Vm(gsi, vm, vim.vm.guest.NamePasswordAuthentication(username=facts["GUEST_USER"],
                                                               password=facts["GUEST_PASSWORD"]))
    _destroy(vm)


@pytest.fixture(scope="module")
def windows(gsim: Simulator, gsi: Any) -> Iterator[Vm]:
    facts = gsim.connection_facts()
    vm = _running_clone(gsi, "windows-template", "files-windows")
    yield Vm(gsi, vm, vim.vm.guest.NamePasswordAuthentication(username=facts["WINDOWS_GUEST_USER"],
                                                               password=facts["WINDOWS_GUEST_PASSWORD"]))
    _destroy(vm)


# --- directories and listings, Linux -------------------------------------------------------------


def test_make_and_list_directories_linux(linux: Vm) -> None:
    files, vm, auth = linux.files, linux.vm, linux.auth
    base = files.CreateTemporaryDirectoryInGuest(vm, auth, "pvcs-", ".d")
    assert base.startswith("/tmp/pvcs-") and base.endswith(".d")  # unset directoryPath: the guest's own
    listing = files.ListFilesInGuest(vm, auth, base)
    assert [f.path for f in listing.files] == [".", ".."] and listing.remaining == 0
    dot = listing.files[0]
    assert dot.type == "directory" and isinstance(dot.attributes, vim.vm.guest.FileManager.PosixFileAttributes)
    assert dot.attributes.permissions & 0o777 == 0o700 and dot.attributes.ownerId == 0

    with pytest.raises(vim.fault.FileNotFound):
        files.MakeDirectoryInGuest(vm, auth, f"{base}/a/b/c", False)
    files.MakeDirectoryInGuest(vm, auth, f"{base}/a/b/c", True)
    [c] = [f for f in files.ListFilesInGuest(vm, auth, f"{base}/a/b").files if f.path == "c"]
    assert c.type == "directory" and c.attributes.permissions & 0o777 == 0o700  # as VMware Tools makes them
    with pytest.raises(vim.fault.FileAlreadyExists):
        files.MakeDirectoryInGuest(vm, auth, f"{base}/a/b/c", True)

    assert linux.sh(f"cd {base} && for i in 1 2 3 4 5; do echo x$i > file$i.txt; done && "
                    f"ln -s file1.txt link && ln -s /nonexistent dangling") == 0
    # matchPattern is a Perl-compatible regular expression; index and maxResults page the matches.
    page = files.ListFilesInGuest(vm, auth, base, matchPattern=r"^file\d\.txt$", maxResults=2)
    assert [f.path for f in page.files] == ["file1.txt", "file2.txt"] and page.remaining == 3
    assert {f.size for f in page.files} == {3} and {f.type for f in page.files} == {"file"}
    page = files.ListFilesInGuest(vm, auth, base, index=2, maxResults=2, matchPattern=r"^file")
    assert [f.path for f in page.files] == ["file3.txt", "file4.txt"] and page.remaining == 1
    page = files.ListFilesInGuest(vm, auth, base, index=4, maxResults=2, matchPattern=r"^file")
    assert [f.path for f in page.files] == ["file5.txt"] and page.remaining == 0
    counted = files.ListFilesInGuest(vm, auth, base, maxResults=0)
    assert not counted.files and counted.remaining == 10  # ".", "..", a, 5 files, 2 links
    links = {f.path: f for f in files.ListFilesInGuest(vm, auth, base, matchPattern="link|dangling").files}
    assert links["link"].type == "symlink" and links["link"].attributes.symlinkTarget == "file1.txt"
    assert links["dangling"].type == "symlink" and links["dangling"].attributes.symlinkTarget == "/nonexistent"
    [single] = files.ListFilesInGuest(vm, auth, f"{base}/file1.txt").files  # a file lists itself
    assert (single.path, single.type, single.size) == (f"{base}/file1.txt", "file", 3)

    with pytest.raises(vim.fault.FileNotFound):
        files.ListFilesInGuest(vm, auth, f"{base}/nothing")
    with pytest.raises(vmodl.fault.InvalidArgument):
        files.ListFilesInGuest(vm, auth, base, matchPattern="(")

    # maxResults defaults to 50.
    assert linux.sh(f"mkdir {base}/many && cd {base}/many && for i in $(seq 1 60); do : > f$i; done") == 0
    listing = files.ListFilesInGuest(vm, auth, f"{base}/many")
    assert len(listing.files) == 50 and listing.remaining == 12
    # A name that is not valid UTF-8 is listed as three substitution characters, as VMware Tools does.
    assert linux.sh(f"touch \"{base}/bad$(printf '\\377')\"") == 0
    assert "\ufffd" * 3 in linux.names(base) and linux.names(base, matchPattern="^bad") == []
    files.DeleteDirectoryInGuest(vm, auth, base, True)


def test_delete_directories_and_files_linux(linux: Vm) -> None:
    files, vm, auth = linux.files, linux.vm, linux.auth
    base = files.CreateTemporaryDirectoryInGuest(vm, auth, "del-", "", "/root")
    assert base.startswith("/root/del-")  # in the directory asked for
    files.MakeDirectoryInGuest(vm, auth, f"{base}/full/deeper", True)
    assert linux.sh(f"echo data > {base}/full/deeper/f && echo x > {base}/file && ln -s full {base}/link") == 0
    with pytest.raises(vim.fault.DirectoryNotEmpty):
        files.DeleteDirectoryInGuest(vm, auth, f"{base}/full", False)
    with pytest.raises(vim.fault.NotADirectory):
        files.DeleteDirectoryInGuest(vm, auth, f"{base}/file", True)
    with pytest.raises(vim.fault.NotADirectory):  # a link to a directory is no directory to delete
        files.DeleteDirectoryInGuest(vm, auth, f"{base}/link", True)
    with pytest.raises(vim.fault.FileNotFound):
        files.DeleteDirectoryInGuest(vm, auth, f"{base}/none", True)
    files.DeleteDirectoryInGuest(vm, auth, f"{base}/full", True)
    assert "full" not in linux.names(base)
    files.MakeDirectoryInGuest(vm, auth, f"{base}/empty", False)
    files.DeleteDirectoryInGuest(vm, auth, f"{base}/empty", False)
    with pytest.raises(vim.fault.NotAFile):
        files.DeleteFileInGuest(vm, auth, base)
    files.DeleteFileInGuest(vm, auth, f"{base}/file")
    files.DeleteFileInGuest(vm, auth, f"{base}/link")  # the link, not what it points to
    assert linux.names(base) == [".", ".."]
    files.DeleteDirectoryInGuest(vm, auth, base, False)
    with pytest.raises(vim.fault.FileNotFound):
        files.ListFilesInGuest(vm, auth, base)


def test_a_guest_user_meets_the_guests_permissions(linux: Vm) -> None:
    files, vm, auth = linux.files, linux.vm, linux.auth
    assert linux.sh("id bob >/dev/null 2>&1 || useradd -m bob && echo 'bob:Bob-pw-1' | chpasswd") == 0
    bob = vim.vm.guest.NamePasswordAuthentication(username="bob", password="Bob-pw-1")
    private = files.CreateTemporaryDirectoryInGuest(vm, auth, "root-only-", "")  # 0700, root's
    with pytest.raises(vim.fault.GuestPermissionDenied):
        files.ListFilesInGuest(vm, bob, private)
    with pytest.raises(vim.fault.GuestPermissionDenied):
        files.MakeDirectoryInGuest(vm, bob, f"{private}/sub", False)
    with pytest.raises(vim.fault.GuestPermissionDenied):
        files.DeleteDirectoryInGuest(vm, bob, private, True)
    mine = files.CreateTemporaryDirectoryInGuest(vm, bob, "bob-", "", "/home/bob")
    [dot] = [f for f in files.ListFilesInGuest(vm, bob, mine).files if f.path == "."]
    assert dot.attributes.ownerId != 0  # made as bob
    files.DeleteDirectoryInGuest(vm, bob, mine, False)
    files.DeleteDirectoryInGuest(vm, auth, private, True)


# --- Windows-family guests ----------------------------------------------------------------------------


def test_directories_and_listings_windows(windows: Vm) -> None:
    files, vm, auth = windows.files, windows.vm, windows.auth
    temp = files.CreateTemporaryDirectoryInGuest(vm, auth, "pvcs", "")
    assert temp.startswith("C:\\Users\\Administrator\\AppData\\Local\\Temp\\pvcs")
    base = "C:\\pvcs-files"
    with pytest.raises(vim.fault.FileNotFound):
        files.MakeDirectoryInGuest(vm, auth, f"{base}\\a\\b", False)
    files.MakeDirectoryInGuest(vm, auth, f"{base}\\a\\b", True)
    with pytest.raises(vim.fault.FileAlreadyExists):
        files.MakeDirectoryInGuest(vm, auth, f"{base}\\a", False)
    created = files.CreateTemporaryFileInGuest(vm, auth, "note", ".txt", f"{base}\\a")
    listing = files.ListFilesInGuest(vm, auth, f"{base}\\a")
    by_name = {f.path: f for f in listing.files}
    assert list(by_name)[:2] == [".", ".."] and set(by_name) == {".", "..", "b", created.rsplit("\\", 1)[1]}
    assert by_name["b"].type == "directory"
    assert isinstance(by_name["b"].attributes, vim.vm.guest.FileManager.WindowsFileAttributes)
    [single] = files.ListFilesInGuest(vm, auth, created).files
    assert (single.path, single.type, single.size) == (created, "file", 0)
    assert not files.ListFilesInGuest(vm, auth, f"{base}\\a", matchPattern=r"\.txt$", index=1).files
    with pytest.raises(vim.fault.DirectoryNotEmpty):
        files.DeleteDirectoryInGuest(vm, auth, f"{base}\\a", False)
    with pytest.raises(vim.fault.NotADirectory):
        files.DeleteDirectoryInGuest(vm, auth, created, False)
    with pytest.raises(vim.fault.FileNotFound):
        files.ListFilesInGuest(vm, auth, f"{base}\\missing")
    files.DeleteDirectoryInGuest(vm, auth, base, True)
    files.DeleteDirectoryInGuest(vm, auth, temp, False)
    with pytest.raises(vim.fault.FileNotFound):
        files.DeleteDirectoryInGuest(vm, auth, base, True)


def test_uploads_windows(gsim: Simulator, windows: Vm) -> None:
    # A Windows guest takes WindowsFileAttributes; the file lands on drive C: as cmd.exe's type sees it.
    files, vm, auth = windows.files, windows.vm, windows.auth
    attributes = vim.vm.guest.FileManager.WindowsFileAttributes()
    path = "C:\\pvcs-upload.txt"
    data = b"uploaded to windows\r\n"
    url = files.InitiateFileTransferToGuest(vm, auth, path, attributes, len(data), False)
    assert _https(gsim, str(url), "PUT", data)[0] == 200
    with pytest.raises(vim.fault.FileAlreadyExists):
        files.InitiateFileTransferToGuest(vm, auth, path, attributes, 1, False)
    with pytest.raises(vim.fault.FileNotFound):
        files.InitiateFileTransferToGuest(vm, auth, "C:\\no-such-dir\\x.txt", attributes, 1, True)
    out = files.CreateTemporaryFileInGuest(vm, auth, "type", ".out")
    info = windows.run("C:\\Windows\\System32\\cmd.exe", f'/c type "{path}" > "{out}"')
    assert info.exitCode == 0
    typed = files.InitiateFileTransferFromGuest(vm, auth, out)
    assert _https(gsim, typed.url) == (200, data)
    files.DeleteFileInGuest(vm, auth, out)
    files.DeleteFileInGuest(vm, auth, path)


def _https(sim: Simulator, url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """One request for a transfer URL, as a client sends it (the simulator's CA trusted)."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=30, context=context)
    try:
        connection.request(method, f"{parts.path}?{parts.query}", body=body,
                           headers={"Content-Length": str(len(body or b""))})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_environment_variables_windows(windows: Vm) -> None:
    values = windows.processes.ReadEnvironmentVariableInGuest(windows.vm, windows.auth,
                                                              ["userprofile", "COMPUTERNAME", "NOT_SET"])
    assert values[0] == "userprofile=C:\\Users\\Administrator"  # Windows names match in any case
    assert values[1].startswith("COMPUTERNAME=") and len(values[1]) > len("COMPUTERNAME=")
    assert len(values) == 2  # an unset name is left out
    everything = windows.processes.ReadEnvironmentVariableInGuest(windows.vm, windows.auth)
    assert "OS=Windows_NT" in everything
    assert not [v for v in everything if v.startswith("PYTHONPATH=")]  # the emulator's own is not the guest's


# --- environment and process exit codes, Linux ------------------------------------------------------


def test_environment_variables_linux(linux: Vm) -> None:
    values = linux.processes.ReadEnvironmentVariableInGuest(linux.vm, linux.auth, ["HOME", "PATH", "NOT_SET"])
    assert values == ["HOME=/root", f"PATH={LINUX_ROOT_PATH}"]
    everything = dict(v.split("=", 1) for v in linux.processes.ReadEnvironmentVariableInGuest(linux.vm, linux.auth))
    assert everything["USER"] == "root" and everything["LOGNAME"] == "root"
    # What is reported is what a program started for the user gets.
    check = " && ".join(f'[ "${name}" = {_quote(value)} ]' for name, value in everything.items())
    assert linux.sh(check) == 0


def test_exit_codes_are_kept_five_minutes(linux: Vm, monkeypatch: pytest.MonkeyPatch) -> None:
    # GuestProcessInfo.exitCode/endTime: "available if queried within 5 minutes after it completes".
    info = linux.run("/bin/sh", "-c 'exit 7'")
    assert info.exitCode == 7 and info.endTime is not None and info.endTime >= info.startTime
    pid = info.pid
    real = time.monotonic

    class Clock:
        """The guest's program table's clock, moved on (only that module's)."""

        offset = 0.0

        @classmethod
        def monotonic(cls) -> float:
            return real() + cls.offset

    monkeypatch.setattr(programs, "time", Clock)
    Clock.offset = 290.0
    [kept] = linux.processes.ListProcessesInGuest(linux.vm, linux.auth, [pid])
    assert kept.exitCode == 7
    Clock.offset = 301.0
    assert linux.processes.ListProcessesInGuest(linux.vm, linux.auth, [pid]) == []
    assert pid not in [p.pid for p in linux.processes.ListProcessesInGuest(linux.vm, linux.auth)]


# --- RebootGuest, reverts, failed instant clones ----------------------------------------------------


def _netns(sim: Simulator) -> set[str]:
    assert sim.vc is not None and sim.vc.guests is not None
    tag = sim.vc.guests.host.tag
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(tag)}


def test_reboot_guest_restarts_the_guest_os(gsim: Simulator, gsi: Any) -> None:
    vm = _running_clone(gsi, "linux-template", "rebooted")
    facts = gsim.connection_facts()
    guest = Vm(gsi, vm, vim.vm.guest.NamePasswordAuthentication(username=facts["GUEST_USER"],
                                                                 password=facts["GUEST_PASSWORD"]))
    assert guest.sh("echo kept > /root/on-disk && echo lost > /tmp/in-memory") == 0
    _until(lambda: vm.guest.ipAddress is not None, what="an address")
    boot_time = vm.runtime.bootTime
    assert vm.RebootGuest() is None  # not a task: returns at once
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"  # the guest is going down
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what="Tools after the reboot")
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime == boot_time
    names = guest.names("/root")
    assert "on-disk" in names
    with pytest.raises(vim.fault.FileNotFound):  # /tmp is the guest's tmpfs: a reboot empties it
        guest.files.ListFilesInGuest(vm, guest.auth, "/tmp/in-memory")
    _until(lambda: vm.guest.ipAddress is not None, what="an address after the reboot")
    _destroy(vm)


def test_revert_to_a_disk_only_snapshot_stops_the_guest(gsim: Simulator, gsi: Any) -> None:
    vm = _running_clone(gsi, "linux-template", "reverted")
    before = _netns(gsim)
    wait(vm.CreateSnapshot_Task(name="disk-only", memory=False, quiesce=False))
    wait(vm.RevertToCurrentSnapshot_Task())
    assert vm.runtime.powerState == "poweredOff"
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"
    assert len(_netns(gsim)) == len(before) - 1  # its guest is gone
    wait(vm.Destroy_Task())


def test_a_failed_instant_clone_leaves_nothing(gsim: Simulator, gsi: Any) -> None:
    source = _running_clone(gsi, "linux-template", "ic-source")
    assert gsim.vc is not None and gsim.vc.guests is not None
    runtime = gsim.vc.guests
    # White-box: the source's guest OS dies while the VM stays powered on; there is no running state
    # to resume from, so the instant clone fails.
    source_guest = runtime.host.guest(source._moId)
    assert source_guest is not None
    source_guest.shutdown()
    namespaces = _netns(gsim)
    disks = sorted(p.name for p in (runtime.state_dir / "disks").iterdir())
    guests = len(runtime.host.guests)
    fault = wait_fault(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="ic-failed",
                                                                             location=vim.vm.RelocateSpec())))
    assert isinstance(fault, vmodl.fault.SystemError) and "ic-failed" in fault.msg, fault
    assert gsi.content.searchIndex.FindByInventoryPath("dc1/vm/ic-failed") is None
    assert "ic-failed" not in gsim.vm_names()
    assert _netns(gsim) == namespaces and len(runtime.host.guests) == guests
    assert sorted(p.name for p in (runtime.state_dir / "disks").iterdir()) == disks
    _destroy(source)
