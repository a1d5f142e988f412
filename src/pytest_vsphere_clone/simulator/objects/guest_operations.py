"""Guest Operations: GuestOperationsManager, ProcessManager and FileManager.

Every call runs for real inside the VM's guest (a network namespace) as the
authenticated guest user; the faults are those a vCenter answers with.
"""

from __future__ import annotations

import contextlib
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
    """vim.vm.guest.FileManager: transfers go through the simulator's /guestFile URLs."""

    vim_type = vim.vm.guest.FileManager

    @vmomi_method("VirtualMachine.GuestOperations.Query", on="vm")
    def InitiateFileTransferFromGuest(self, ctx: CallContext, vm: Any, auth: Any, guestFilePath: str) -> Any:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            token, size = self.runtime().file_transfers.offer_download(guest, auth.username, guestFilePath)
            return vim.vm.guest.FileManager.FileTransferInformation(
                attributes=vim.vm.guest.FileManager.FileAttributes(), size=size, url=self._url(token))

    @vmomi_method("VirtualMachine.GuestOperations.Modify", on="vm")
    def InitiateFileTransferToGuest(self, ctx: CallContext, vm: Any, auth: Any, guestFilePath: str,
                                    fileAttributes: Any, fileSize: int, overwrite: bool) -> str:
        with self.latency():
            _, guest = self._ready_guest(vm, auth)
            token = self.runtime().file_transfers.offer_upload(guest, auth.username, guestFilePath, fileSize, overwrite)
            return self._url(token)

    def _url(self, token: str) -> str:
        # Like ESXi, the host part is "*": the client puts in the host it talks to.
        return f"https://*:{self.runtime().http_port()}/guestFile?id={token}"

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
    def MakeDirectoryInGuest(self, ctx: CallContext, vm: Any, auth: Any, directoryPath: str,
                             createParentDirectories: bool) -> None:
        raise vmodl.fault.NotSupported(msg="MakeDirectoryInGuest is not simulated.")
