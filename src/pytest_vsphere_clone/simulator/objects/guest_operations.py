"""Guest Operations: GuestOperationsManager, ProcessManager and FileManager.

Every call runs for real inside the VM's guest (a network namespace) as the
authenticated guest user; the faults are those a vCenter answers with.
"""

from __future__ import annotations

import contextlib
import re
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import SimObject, vmomi_method

if TYPE_CHECKING:
    from ..guest_runtime import GuestRuntime
    from ..vcenter import CallContext
    from .virtual_machine import VirtualMachine


#: ListFilesInGuest's defaults, per the API reference.
DEFAULT_LIST_INDEX = 0
DEFAULT_LIST_MAX_RESULTS = 50


def _file_info(entry: dict[str, Any], name: str, windows: bool) -> Any:
    """A GuestFileInfo from one entry of the guest's listing (Windows or POSIX attributes)."""
    target = entry.get("target") or None
    if windows:
        attributes: Any = vim.vm.guest.FileManager.WindowsFileAttributes(
            modificationTime=_utc(entry["mtime"]), accessTime=_utc(entry["atime"]),
            createTime=_utc(entry["ctime"]), symlinkTarget=target, hidden=False,
            readOnly=not int(entry["mode"]) & stat.S_IWUSR)
    else:
        attributes = vim.vm.guest.FileManager.PosixFileAttributes(
            modificationTime=_utc(entry["mtime"]), accessTime=_utc(entry["atime"]), symlinkTarget=target,
            ownerId=int(entry["uid"]), groupId=int(entry["gid"]), permissions=int(entry["mode"]))
    return vim.vm.guest.FileManager.FileInfo(path=name, type=str(entry["type"]), size=int(entry["size"]),
                                             attributes=attributes)


def _utc(ts: float | datetime | None) -> datetime | None:
    if ts is None or isinstance(ts, datetime):
        return ts
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class _GuestOpsBase(SimObject):
    """Shared checks: the VM is on, Tools run, the guest login is right."""

    def runtime(self) -> GuestRuntime:
        runtime = self.vc.guests
        assert runtime is not None
        return runtime

    @contextlib.contextmanager
    def latency(self) -> Iterator[None]:
        """A guest operation takes the profile's guest_op time, answer or fault: the simulator's own
        real work (a process in the guest, a file read) is part of that time, not added to it."""
        drawn = self.vc.profile.duration("guest_op")
        started = time.monotonic()
        try:
            yield
        finally:
            remaining = drawn - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)

    def _ready_guest(self, vm_ref: Any, auth: Any) -> tuple[VirtualMachine, Any]:
        from .virtual_machine import VirtualMachine

        with self.vc.lock:
            vm = self.vc.lookup_as(vm_ref, VirtualMachine)
            if vm.power_state != "poweredOn":
                raise vim.fault.InvalidPowerState(msg="The attempted operation cannot be performed in the current "
                                                      "state (Powered off).", requestedState="poweredOn",
                                                  existingState=vm.power_state)
            if vm.tools_running_status() != "guestToolsRunning":
                raise vim.fault.GuestOperationsUnavailable(
                    msg="The guest operations agent could not be contacted.")
        guest = self.runtime().guest_for(vm)
        if guest is None:
            raise vim.fault.GuestOperationsUnavailable(msg="The guest operations agent could not be contacted.")
        if not isinstance(auth, vim.vm.guest.NamePasswordAuthentication):
            raise vmodl.fault.NotSupported(msg="The simulator supports only name and password authentication.")
        if not self.runtime().check_login(guest, auth.username, auth.password or ""):
            raise vim.fault.InvalidGuestLogin(msg="Failed to authenticate with the guest operating system using "
                                                  "the supplied credentials.")
        return vm, guest


class GuestOperationsManager(SimObject):
    """vim.vm.guest.GuestOperationsManager."""

    vim_type = vim.vm.guest.GuestOperationsManager

    def prop_processManager(self) -> Any:
        return vim.vm.guest.ProcessManager("guestOperationsProcessManager")

    def prop_fileManager(self) -> Any:
        return vim.vm.guest.FileManager("guestOperationsFileManager")


class GuestProcessManager(_GuestOpsBase):
    """vim.vm.guest.ProcessManager."""

    vim_type = vim.vm.guest.ProcessManager

    @vmomi_method("VirtualMachine.GuestOperations.Execute", on="vm")
    def StartProgramInGuest(self, ctx: CallContext, vm: Any, auth: Any, spec: Any) -> int:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            return self.runtime().start_program(guest, auth.username, spec.programPath, spec.arguments or "",
                                                spec.workingDirectory, list(spec.envVariables or []))

    @vmomi_method("VirtualMachine.GuestOperations.Query", on="vm")
    def ListProcessesInGuest(self, ctx: CallContext, vm: Any, auth: Any, pids: list[int] | None = None) -> list[Any]:
        # GuestProcessInfo.endTime/exitCode: "If the process was started using StartProgramInGuest then
        # the process [completion time | exit code] will be available if queried within 5 minutes after
        # it completes." The guest's program table keeps a finished program that long, then drops it:
        # its pid is no longer listed.
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            return [
                vim.vm.guest.ProcessManager.ProcessInfo(
                    name=p.name, pid=p.pid, owner=p.owner, cmdLine=p.cmd_line, startTime=_utc(p.start_time),
                    endTime=_utc(p.end_time), exitCode=p.exit_code)
                for p in self.runtime().list_processes(guest, pids or None)
            ]

    @vmomi_method("VirtualMachine.GuestOperations.Execute", on="vm")
    def TerminateProcessInGuest(self, ctx: CallContext, vm: Any, auth: Any, pid: int) -> None:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            self.runtime().terminate_process(guest, pid)

    @vmomi_method("VirtualMachine.GuestOperations.Query", on="vm")
    def ReadEnvironmentVariableInGuest(self, ctx: CallContext, vm: Any, auth: Any,
                                       names: list[str] | None = None) -> list[str]:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            return self.runtime().environment(guest, auth.username, names or [])


class GuestFileManager(_GuestOpsBase):
    """vim.vm.guest.FileManager: transfers go through the /guestFile URLs of the VM's ESXi host."""

    vim_type = vim.vm.guest.FileManager

    @vmomi_method("VirtualMachine.GuestOperations.Query", on="vm")
    def InitiateFileTransferFromGuest(self, ctx: CallContext, vm: Any, auth: Any, guestFilePath: str) -> Any:
        with self.latency():
            sim_vm, guest = self._ready_guest(vm, auth)
            url, size = self.runtime().offer_download(sim_vm, guest, auth.username, guestFilePath)
            return vim.vm.guest.FileManager.FileTransferInformation(
                attributes=vim.vm.guest.FileManager.FileAttributes(), size=size, url=url)

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def InitiateFileTransferToGuest(self, ctx: CallContext, vm: Any, auth: Any, guestFilePath: str,
                                    fileAttributes: Any, fileSize: int, overwrite: bool) -> str:
        # GuestPosixFileAttributes.permissions: "in chmod(2) format ... If this property is not
        # specified ... the file will be created with 0644 permissions." Other attribute types
        # (the base GuestFileAttributes, Windows') leave the default.
        mode = getattr(fileAttributes, "permissions", None) \
            if isinstance(fileAttributes, vim.vm.guest.FileManager.PosixFileAttributes) else None
        with self.latency():
            sim_vm, guest = self._ready_guest(vm, auth)
            return self.runtime().offer_upload(sim_vm, guest, auth.username, guestFilePath, fileSize, overwrite,
                                               mode)

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def DeleteFileInGuest(self, ctx: CallContext, vm: Any, auth: Any, filePath: str) -> None:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            self.runtime().delete_file(guest, auth.username, filePath)

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def CreateTemporaryFileInGuest(self, ctx: CallContext, vm: Any, auth: Any, prefix: str, suffix: str,
                                   directoryPath: str | None = None) -> str:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            return self.runtime().create_temp_file(guest, auth.username, prefix, suffix, directoryPath)

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def CreateTemporaryDirectoryInGuest(self, ctx: CallContext, vm: Any, auth: Any, prefix: str, suffix: str,
                                        directoryPath: str | None = None) -> str:
        # "directoryPath: ... If unset or an empty string, a guest-specific location will be used."
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            return self.runtime().create_temp_directory(guest, auth.username, prefix, suffix, directoryPath or None)

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def MakeDirectoryInGuest(self, ctx: CallContext, vm: Any, auth: Any, directoryPath: str,
                             createParentDirectories: bool) -> None:
        # An existing path is FileAlreadyExists even with createParentDirectories (as VMware Tools).
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            self.runtime().make_directory(guest, auth.username, directoryPath, bool(createParentDirectories))

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def DeleteDirectoryInGuest(self, ctx: CallContext, vm: Any, auth: Any, directoryPath: str,
                               recursive: bool) -> None:
        # "recursive: If true, all subdirectories are also deleted. If false, the directory must be
        # empty for the operation to succeed." A file or a link is NotADirectory.
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            self.runtime().delete_directory(guest, auth.username, directoryPath, bool(recursive))

    @vmomi_method("VirtualMachine.GuestOperations.Query", on="vm")
    def ListFilesInGuest(self, ctx: CallContext, vm: Any, auth: Any, filePath: str, index: int | None = None,
                         maxResults: int | None = None, matchPattern: str | None = None) -> Any:
        # index: "Which result to start the list with. The default is 0." maxResults: "The maximum
        # number of results to return. The default is 50." matchPattern: "perl-compatible regular
        # expressions. If matchPattern is unset, then the pattern '.*' is used." The pattern filters
        # first, index and maxResults count the matches; GuestListFileInfo.remaining is "The number of
        # files left to be returned". A directory lists "." and ".." first, a file lists itself.
        start = DEFAULT_LIST_INDEX if index is None else index
        limit = DEFAULT_LIST_MAX_RESULTS if maxResults is None else maxResults
        if start < 0 or limit < 0:
            raise vmodl.fault.InvalidArgument(msg="index and maxResults must not be negative",
                                              invalidProperty="index" if start < 0 else "maxResults")
        try:
            pattern = re.compile(matchPattern) if matchPattern else None
        except re.error as exc:
            raise vmodl.fault.InvalidArgument(msg=f"Invalid matchPattern: {exc}", invalidProperty="matchPattern") \
                from None
        with self.latency():
            found_vm, guest = self._ready_guest(vm, auth)
            entries = self.runtime().list_files(guest, auth.username, filePath)
        if pattern is not None:
            entries = [e for e in entries if pattern.search(str(e["name"]))]
        page = entries[start:start + limit]
        windows = found_vm.family == "windows"
        return vim.vm.guest.FileManager.ListFileInfo(
            files=[_file_info(e, filePath if e.get("single") else str(e["name"]), windows) for e in page],
            remaining=max(0, len(entries) - start - limit))
