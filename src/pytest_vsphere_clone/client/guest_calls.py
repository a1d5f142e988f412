"""One VM's Guest Operations calls as one guest user: files and processes, one call each.

:class:`GuestCalls` finds the Guest Operations managers (once per session), authenticates as the
guest user, retries what is transient (Tools not up yet) and turns the faults of a call into one
clear error (a wrong login, no Guest Operations on the server, a guest path's fault). On it stand
small files (InitiateFileTransfer{From,To}Guest, their HTTPS side in ``guest_files.py``) and
processes (StartProgramInGuest, their end awaited through ListProcessesInGuest). Running shell
commands through result files is :class:`~.guest_ops.GuestOperations`'s, which builds on this class.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import faults, guest_files, pacing, props
from .errors import GuestLoginFailed, GuestOperationFailed, GuestOperationsUnsupported, VSphereCloneError, WaitTimeout
from .retry import NO_RETRY, RetryPolicy, retry_call
from .secret import Secret

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)
T = TypeVar("T")
G = TypeVar("G", bound="GuestCalls")

#: Faults that mean "Tools are not ready yet" (e.g. right after power-on): retried.
_GUEST_TRANSIENT = ("GuestOperationsUnavailable", "ToolsUnavailable", "GuestComponentsOutOfDate")
DEFAULT_GUEST_RETRY = RetryPolicy(attempts=8, base_delay=0.25, max_delay=4.0)


class GuestCalls:
    """Guest Operations calls on one VM as one guest user.

    ``os_family`` (``linux``/``windows``): None reads it from the VM once.
    """

    def __init__(self, conn: VSphereConnection, vm: Any, username: str, password: str | Secret, *,
                 os_family: str | None = None, retry: RetryPolicy | None = None, vm_name: str | None = None) -> None:
        self.conn = conn
        self.vm = vm
        self.username = username
        self._password = Secret(password)
        self._os_family = os_family
        self.retry = retry or DEFAULT_GUEST_RETRY
        self._vm_name = vm_name
        self._managers_cache: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vm={self.vm_name!r}, username={self.username!r}, password=***)"

    # --- facts ----------------------------------------------------------------------------

    @property
    def vm_name(self) -> str:
        return self._vm_name or str(getattr(self.vm, "_moId", self.vm))

    @property
    def os_family(self) -> str:
        """``linux`` or ``windows`` (read from guest.guestFamily / config.guestId when not given)."""
        if self._os_family is None:
            values = props.read(self.conn, self.vm, ["name", "guest.guestFamily", "config.guestId"])
            self._vm_name = self._vm_name or values.get("name")
            family = str(values.get("guest.guestFamily") or "")
            guest_id = str(values.get("config.guestId") or "").lower()
            windows = family.startswith("windows") or (not family and guest_id.startswith("win"))
            self._os_family = "windows" if windows else "linux"
        return self._os_family

    def _auth(self) -> Any:
        from pyVmomi import vim

        return vim.vm.guest.NamePasswordAuthentication(username=self.username, password=self._password.reveal(),
                                                       interactiveSession=False)

    def _managers(self) -> tuple[Any, Any]:
        if self._managers_cache is None:
            cached = self.conn.facts.get("guest_managers")
            if cached is None:
                manager = self.conn.content.guestOperationsManager
                if manager is None:
                    raise GuestOperationFailed("this vCenter offers no Guest Operations (guestOperationsManager is "
                                               "unset): use one that does, or --vsphere-discovery=tools")
                values = props.read(self.conn, manager, ["processManager", "fileManager"])
                cached = (values.get("processManager"), values.get("fileManager"))
                self.conn.facts["guest_managers"] = cached  # once per session, not once per VM
            self._managers_cache = cached
        return self._managers_cache

    def _call(self, fn: Any, *args: object, what: str, idempotent: bool = True, missing_ok: bool = False,
              fault_error: Callable[[Any], Exception] | None = None) -> Any:
        """One guest operation: transient faults retried, credentials and Tools faults made clear;
        with ``missing_ok`` a FileNotFound answer returns None; ``fault_error`` makes the error of a
        file fault, a guest permission fault or an InvalidArgument (a path's own faults)."""
        from pyVmomi import vim, vmodl

        try:
            # Through the connection: a vCenter already taken for gone fails fast here too.
            return self.conn.call(fn, *args, policy=self.retry, idempotent=idempotent, what=what,
                                  extra_transient=faults.fault_types(_GUEST_TRANSIENT))
        except vim.fault.FileNotFound as fault:
            if missing_ok:
                return None
            if fault_error is not None:
                raise fault_error(fault) from None
            raise GuestOperationFailed(f"{what} in VM {self.vm_name!r} failed: {faults.describe(fault)}") from None
        except vim.fault.InvalidGuestLogin:
            raise GuestLoginFailed(self.vm_name, self.username) from None
        except VSphereCloneError:
            raise
        except vmodl.fault.NotSupported as fault:
            raise GuestOperationsUnsupported(
                f"{what} in VM {self.vm_name!r} is not supported by the server ({faults.describe(fault)}): use a "
                f"vCenter and VM with Guest Operations, or --vsphere-discovery=tools") from None
        except (vim.fault.GuestOperationsFault, vim.fault.FileFault, vmodl.fault.InvalidArgument) as fault:
            path_fault = isinstance(fault, vim.fault.FileFault | vim.fault.GuestPermissionDenied
                                    | vmodl.fault.InvalidArgument)
            if fault_error is not None and path_fault:
                raise fault_error(fault) from None
            if isinstance(fault, vmodl.fault.InvalidArgument):
                raise
            # File faults (e.g. FileNotFound) are what a missing guest path answers.
            raise GuestOperationFailed(f"{what} in VM {self.vm_name!r} failed: {faults.describe(fault)}") from None

    def limited(self: G, seconds: float) -> G:
        """The same guest operations with retries cut off after ``seconds`` (for overall deadlines)."""
        other = copy.copy(self)
        other.retry = dataclasses.replace(self.retry, deadline=max(0.0, seconds))
        return other

    # --- files ----------------------------------------------------------------------------

    def temp_file(self, prefix: str = "pytest-vsphere-clone-", suffix: str = ".txt") -> str:
        """A new empty temporary file in the guest; returns its path."""
        _, files = self._managers()
        return str(self._call(files.CreateTemporaryFileInGuest, self.vm, self._auth(), prefix, suffix, None,
                              what="CreateTemporaryFileInGuest"))

    def delete_file(self, path: str, missing_ok: bool = False) -> None:
        """Delete ``path`` in the guest; with ``missing_ok`` a file that is not there is no error."""
        _, files = self._managers()
        self._call(files.DeleteFileInGuest, self.vm, self._auth(), path, what="DeleteFileInGuest",
                   missing_ok=missing_ok)

    def read_file(self, path: str) -> bytes:
        """The content of ``path`` in the guest (InitiateFileTransferFromGuest + HTTPS GET)."""
        data = self._read(path, missing_ok=False)
        assert data is not None
        return data

    def read_file_if_exists(self, path: str) -> bytes | None:
        """The content of ``path`` in the guest, or None if there is no such file (one guest operation)."""
        return self._read(path, missing_ok=True)

    def _read(self, path: str, missing_ok: bool) -> bytes | None:
        _, files = self._managers()

        def once() -> bytes | None:
            info = self._call(files.InitiateFileTransferFromGuest, self.vm, self._auth(), path,
                              what="InitiateFileTransferFromGuest", missing_ok=missing_ok)
            if info is None:
                return None
            return bytes(guest_files.request(self, "GET", str(info.url), f"download of {path}"))

        return self._transfer(once, f"download of {path}")

    def write_file(self, path: str, data: bytes, overwrite: bool = True) -> None:
        """Write ``data`` to ``path`` in the guest (InitiateFileTransferToGuest + HTTPS PUT)."""
        guest_files.upload(self, path, io.BytesIO(data), len(data), overwrite=overwrite, path_errors=False)

    def _transfer(self, once: Callable[[], T], what: str, idempotent: bool = True) -> T:
        """One transfer (a fresh URL, then its GET or PUT), repeated whole when the connection to the
        host dropped or the host answered 502-504: a transfer URL is good for one request only (ESXi
        refuses a second), so a repeat needs a new one. An upload that may not overwrite is not
        repeated after a lost answer (the repeat would meet the file the first one made)."""
        return retry_call(once, policy=self.retry, what=what, idempotent=idempotent)

    def transfer_url(self, url: str) -> str:
        """The transfer URL as this client uses it (see :func:`guest_files.transfer_url`)."""
        return guest_files.transfer_url(self, url)

    # --- processes ------------------------------------------------------------------------

    def start(self, program: str, arguments: str, working_directory: str | None = None,
              env: dict[str, str] | None = None) -> int:
        """StartProgramInGuest (never repeated when its answer was lost); returns the pid."""
        from pyVmomi import vim

        processes, _ = self._managers()
        spec = vim.vm.guest.ProcessManager.ProgramSpec(
            programPath=program, arguments=arguments, workingDirectory=working_directory,
            envVariables=[f"{k}={v}" for k, v in (env or {}).items()] or None)
        return int(self._call(processes.StartProgramInGuest, self.vm, self._auth(), spec,
                              what="StartProgramInGuest", idempotent=False))

    def wait_exit(self, pid: int, timeout: float, what: str, poll_max: float | None = None) -> int:
        """The exit code of ``pid`` once it ended (ListProcessesInGuest; guest processes have no
        property to wait on, so this polls with short, growing sleeps)."""
        processes, _ = self._managers()
        deadline = time.monotonic() + timeout
        pause = pacing.LOOK_START
        time.sleep(min(pacing.FIRST_LOOK, timeout))  # see client/pacing.py
        while True:
            infos = self._call(processes.ListProcessesInGuest, self.vm, self._auth(), [pid],
                               what="ListProcessesInGuest") or []
            info = next((p for p in infos if p.pid == pid), None)
            if info is None:
                raise GuestOperationFailed(f"process {pid} of {what} vanished from VM {self.vm_name!r}")
            if info.exitCode is not None and info.endTime is not None:
                return int(info.exitCode)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._terminate(processes, pid)
                raise WaitTimeout(f"{what} in VM {self.vm_name!r}", timeout, f"pid {pid} still running",
                                  "pass a longer timeout")
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, poll_max or pacing.LOOK_MAX)

    def wait_exit_or(self, pid: int, event: Callable[[float], bool], timeout: float, *,
                     check_every: float = 1.0) -> int | None:
        """Wait until ``event`` happens (None) or process ``pid`` ends (its exit code), whichever is first.

        ``event(seconds)`` waits at most that long for something outside the guest (e.g. a
        property through a Waiter) and says whether it happened; after each such wait the process
        is looked at once (see :meth:`exit_code`). Raises :class:`WaitTimeout` after ``timeout``,
        leaving the process running (unlike :meth:`wait_exit`, which terminates it).
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"process {pid} in VM {self.vm_name!r}", timeout, f"pid {pid} still running")
            if event(min(check_every, remaining)):
                return None
            status = self.exit_code(pid)
            if status is not None:
                return status

    def exit_code(self, pid: int) -> int | None:
        """The exit code of ``pid`` if it ended; None while it runs or when the guest cannot say.

        One ListProcessesInGuest, never retried: a guest that is busy (e.g. freezing) answers
        GuestOperationsUnavailable, which only means "look again later".
        """
        processes, _ = self._managers()
        try:
            infos = self.conn.call(processes.ListProcessesInGuest, self.vm, self._auth(), [pid],
                                   what="ListProcessesInGuest", policy=NO_RETRY) or []
        except Exception as exc:  # any answer but an exit code means "not ended as far as is known"
            log.debug("cannot look at pid %s in VM %s: %s", pid, self.vm_name, faults.describe(exc))
            return None
        info = next((p for p in infos if p.pid == pid), None)
        if info is None or info.endTime is None or info.exitCode is None:
            return None
        return int(info.exitCode)

    def _terminate(self, processes: Any, pid: int) -> None:
        try:
            self._call(processes.TerminateProcessInGuest, self.vm, self._auth(), pid, what="TerminateProcessInGuest")
        except Exception as exc:  # it may just have ended; the timeout error is what matters
            log.debug("could not terminate pid %s: %s", pid, faults.describe(exc))
