"""Run commands and move files in a guest through VMware Tools Guest Operations (no network needed).

A command runs as ``/bin/sh -c`` (Linux) or ``cmd.exe /c`` (Windows) with stdout and
stderr redirected to temporary files made by CreateTemporaryFileInGuest; the exit code
comes from ListProcessesInGuest; the files come back over HTTPS from
InitiateFileTransferFromGuest and are always deleted afterwards.
"""

from __future__ import annotations

import copy
import dataclasses
import http.client
import logging
import secrets
import shlex
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import faults, props
from .errors import GuestLoginFailed, GuestOperationFailed, VSphereCloneError, WaitTimeout
from .result import CommandResult
from .retry import RetryPolicy, retry_call
from .secret import Secret

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)

LINUX_SHELL = "/bin/sh"
WINDOWS_SHELL = r"C:\Windows\System32\cmd.exe"
#: Faults that mean "Tools are not ready yet" (e.g. right after power-on): retried.
_GUEST_TRANSIENT = ("GuestOperationsUnavailable", "ToolsUnavailable", "GuestComponentsOutOfDate")
DEFAULT_GUEST_RETRY = RetryPolicy(attempts=8, base_delay=0.25, max_delay=4.0)
_FIRST_POLL, _POLL_START, _POLL_MAX = 0.03, 0.05, 0.5


def quote_windows(path: str) -> str:
    """A path in double quotes for cmd.exe (paths cannot contain quotes on Windows)."""
    return f'"{path}"'


def wrap_command(command: str, stdout_path: str, stderr_path: str, os_family: str) -> tuple[str, str]:
    """(programPath, arguments) that run ``command`` with its output redirected to the two files."""
    if os_family == "windows":
        # /s: strip exactly the outer quotes; the parentheses send every part of "a & b" to the files.
        inner = f"({command}) 1> {quote_windows(stdout_path)} 2> {quote_windows(stderr_path)}"
        return WINDOWS_SHELL, f'/s /c "{inner}"'
    # The braces (with a newline, so a trailing comment cannot eat them) redirect "a; b" as a whole.
    inner = f"{{ {command}\n}} >{shlex.quote(stdout_path)} 2>{shlex.quote(stderr_path)}"
    return LINUX_SHELL, "-c " + shlex.quote(inner)


class GuestOperations:
    """Guest Operations on one VM as one guest user.

    ``os_family`` (``linux``/``windows``) picks the shell; None reads it from the VM once.
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
        return f"GuestOperations(vm={self.vm_name!r}, username={self.username!r}, password=***)"

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

    def _call(self, fn: Any, *args: object, what: str, idempotent: bool = True) -> Any:
        """One guest operation: transient faults retried, credentials and Tools faults made clear."""
        from pyVmomi import vim

        try:
            return retry_call(fn, *args, policy=self.retry, idempotent=idempotent, what=what,
                              extra_transient=faults.fault_types(_GUEST_TRANSIENT))
        except vim.fault.InvalidGuestLogin:
            raise GuestLoginFailed(self.vm_name, self.username) from None
        except VSphereCloneError:
            raise
        except (vim.fault.GuestOperationsFault, vim.fault.FileFault) as fault:
            # File faults (e.g. FileNotFound) are what a missing guest path answers.
            raise GuestOperationFailed(f"{what} in VM {self.vm_name!r} failed: {faults.describe(fault)}") from None

    def limited(self, seconds: float) -> GuestOperations:
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

    def delete_file(self, path: str) -> None:
        _, files = self._managers()
        self._call(files.DeleteFileInGuest, self.vm, self._auth(), path, what="DeleteFileInGuest")

    def read_file(self, path: str) -> bytes:
        """The content of ``path`` in the guest (InitiateFileTransferFromGuest + HTTPS GET)."""
        _, files = self._managers()
        info = self._call(files.InitiateFileTransferFromGuest, self.vm, self._auth(), path,
                          what="InitiateFileTransferFromGuest")
        return self._http("GET", str(info.url), None, f"download of {path}")

    def write_file(self, path: str, data: bytes, overwrite: bool = True) -> None:
        """Write ``data`` to ``path`` in the guest (InitiateFileTransferToGuest + HTTPS PUT)."""
        from pyVmomi import vim

        _, files = self._managers()
        attributes = (vim.vm.guest.FileManager.WindowsFileAttributes() if self.os_family == "windows"
                      else vim.vm.guest.FileManager.PosixFileAttributes())
        url = self._call(files.InitiateFileTransferToGuest, self.vm, self._auth(), path, attributes, len(data),
                         overwrite, what="InitiateFileTransferToGuest")
        self._http("PUT", str(url), data, f"upload to {path}")

    def transfer_url(self, url: str) -> str:
        """The transfer URL with a ``*`` host (ESXi's "same host you asked") replaced by the vCenter's."""
        parts = urlsplit(url)
        if parts.hostname not in ("*", None):
            return url
        host = f"[{self.conn.host}]" if ":" in self.conn.host else self.conn.host
        port = parts.port or self.conn.port
        return urlunsplit((parts.scheme or "https", f"{host}:{port}", parts.path, parts.query, parts.fragment))

    def _http(self, method: str, url: str, body: bytes | None, what: str) -> bytes:
        target = urlsplit(self.transfer_url(url))

        def once() -> bytes:
            connection = http.client.HTTPSConnection(target.hostname or self.conn.host, target.port or 443,
                                                     timeout=self.conn.timeout, context=self.conn.ssl_context)
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                connection.request(method, path, body=body, headers={"Content-Length": str(len(body or b""))})
                response = connection.getresponse()
                payload = response.read()
                if response.status >= 500:
                    raise http.client.HTTPException(f"{response.status} {response.reason}")
                if response.status >= 300:
                    raise GuestOperationFailed(f"{what} in VM {self.vm_name!r} failed: HTTP {response.status} "
                                               f"{response.reason}")
                return payload
            finally:
                connection.close()

        # The transfer URL may be used until it expires, so a dropped GET/PUT is simply repeated.
        return retry_call(once, policy=self.retry, what=what)

    # --- commands -------------------------------------------------------------------------

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

    def wait_exit(self, pid: int, timeout: float, what: str) -> int:
        """The exit code of ``pid`` once it ended (ListProcessesInGuest; guest processes have no
        property to wait on, so this polls with short, growing sleeps)."""
        processes, _ = self._managers()
        deadline = time.monotonic() + timeout
        pause = _POLL_START
        # Most commands (ip, ipconfig) end within this: asking later saves a round trip.
        time.sleep(min(_FIRST_POLL, timeout))
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
            pause = min(pause * 2, _POLL_MAX)

    def _terminate(self, processes: Any, pid: int) -> None:
        try:
            self._call(processes.TerminateProcessInGuest, self.vm, self._auth(), pid, what="TerminateProcessInGuest")
        except Exception as exc:  # it may just have ended; the timeout error is what matters
            log.debug("could not terminate pid %s: %s", pid, faults.describe(exc))

    def run(self, command: str, timeout: float = 120.0) -> CommandResult:
        """Run ``command`` in the guest's shell; returns its exit status, stdout and stderr.

        On Windows the command runs inside parentheses, so an unbalanced ``)`` must be
        escaped as ``^)`` as in any cmd.exe block.
        """
        if self.os_family != "windows":
            return self._run_linux(command, timeout)
        return self._run_two_files(command, timeout)

    def _run_linux(self, command: str, timeout: float) -> CommandResult:
        """One temp file for both streams: the shell appends stderr after a one-off separator and
        removes its own stderr file, saving a file creation, transfer and deletion per command.
        The command runs in a subshell so that its own ``exit`` still lets the shell append."""
        path = self.temp_file(suffix=".out")
        separator = f"--pytest-vsphere-clone-stderr-{secrets.token_hex(8)}--"
        err = f"{path}.err"
        script = (f"trap 'rm -f {shlex.quote(err)}' EXIT HUP INT TERM\n"
                  f"( {command}\n) >{shlex.quote(path)} 2>{shlex.quote(err)}\n"
                  f"rc=$?\nprintf '\\n%s\\n' {shlex.quote(separator)} >>{shlex.quote(path)}\n"
                  f"cat {shlex.quote(err)} >>{shlex.quote(path)}\nexit $rc")
        try:
            pid = self.start(LINUX_SHELL, "-c " + shlex.quote(script))
            status = self.wait_exit(pid, timeout, f"command {command!r}")
            output = self.read_file(path).decode("utf-8", "replace")
        finally:
            try:
                self.delete_file(path)
            except Exception as exc:  # never hide the command's own outcome
                log.warning("could not delete %s in VM %s: %s", path, self.vm_name, faults.describe(exc))
        stdout, found, stderr = output.rpartition(f"\n{separator}\n")
        if not found:  # the command replaced the file itself: all of it is stdout
            return CommandResult(status, output, "")
        return CommandResult(status, stdout, stderr)

    def _run_two_files(self, command: str, timeout: float) -> CommandResult:
        windows = self.os_family == "windows"
        stdout_path = self.temp_file(suffix=".out")
        stderr_path: str | None = None
        try:
            stderr_path = self.temp_file(suffix=".err")
            program, arguments = wrap_command(command, stdout_path, stderr_path, self.os_family)
            pid = self.start(program, arguments)
            status = self.wait_exit(pid, timeout, f"command {command!r}")
            stdout = self.read_file(stdout_path)
            stderr = self.read_file(stderr_path)
        finally:
            for path in (stdout_path, stderr_path):
                if path is not None:
                    try:
                        self.delete_file(path)
                    except Exception as exc:  # never hide the command's own outcome
                        log.warning("could not delete %s in VM %s: %s", path, self.vm_name, faults.describe(exc))
        encoding = "utf-8"
        text_out = stdout.decode(encoding, "replace")
        text_err = stderr.decode(encoding, "replace")
        if windows:
            text_out, text_err = text_out.replace("\r\n", "\n"), text_err.replace("\r\n", "\n")
        return CommandResult(status, text_out, text_err)
