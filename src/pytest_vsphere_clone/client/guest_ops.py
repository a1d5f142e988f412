"""Run commands in a guest through VMware Tools Guest Operations (no network needed).

A command runs as ``/bin/sh -c`` (Linux) or ``cmd.exe /c`` (Windows) with its output
redirected to files with random names in the guest's temp directory; they come back over
HTTPS from InitiateFileTransferFromGuest and are deleted afterwards: at once, or (for callers
that ask, such as discovery) by the next command run in that guest, which costs no request
(client/leftovers.py). When the client looks for a command's end is client/pacing.py's. The
single calls this stands on (files, processes, faults made clear) are client/guest_calls.py's.
"""

from __future__ import annotations

import logging
import ntpath
import secrets
import shlex
import time

from . import faults, pacing
from .errors import GuestOperationFailed, WaitTimeout
from .guest_calls import GuestCalls
from .result import CommandResult

log = logging.getLogger(__name__)

LINUX_SHELL = "/bin/sh"
WINDOWS_SHELL = r"C:\Windows\System32\cmd.exe"
#: The line run_merged appends to a Windows command's output: its success (0) or failure (1).
_STATUS_LINE = "pytest-vsphere-clone-status: "
#: Where Linux commands leave their result: world-writable and sticky on every distribution.
LINUX_RESULT_DIR = "/tmp"


def quote_windows(path: str) -> str:
    """A path in double quotes for cmd.exe (paths cannot contain quotes on Windows)."""
    return f'"{path}"'


def wrap_windows_command(command: str, stdout_path: str, stderr_path: str,
                         delete_first: tuple[str, ...] | list[str] = ()) -> tuple[str, str]:
    """(programPath, arguments) that run ``command`` in cmd.exe with its output redirected to the
    two files, after deleting the files ``delete_first`` (quietly: a missing one is no error).
    Linux commands need no such wrapper: see :meth:`GuestOperations._run_linux`."""
    before = delete_command(delete_first, "windows")
    # /s: strip exactly the outer quotes; the parentheses send every part of "a & b" to the files.
    inner = f"{before}({command}) 1> {quote_windows(stdout_path)} 2> {quote_windows(stderr_path)}"
    return WINDOWS_SHELL, f'/s /c "{inner}"'


def delete_command(paths: tuple[str, ...] | list[str], os_family: str) -> str:
    """A shell prefix deleting ``paths`` quietly (empty for none): how a command clears the result
    files of the commands before it, where DeleteFileInGuest would cost a request per file."""
    if not paths:
        return ""
    if os_family == "windows":
        return f"(del /f /q {' '.join(quote_windows(p) for p in paths)} >nul 2>&1) & "
    return f"rm -f -- {' '.join(shlex.quote(p) for p in paths)} 2>/dev/null\n"


class GuestOperations(GuestCalls):
    """Guest Operations on one VM as one guest user: the single calls, and shell commands.

    ``os_family`` (``linux``/``windows``) picks the shell; None reads it from the VM once.
    """

    #: Windows: where command output files go (learned once)
    _temp_dir: str | None = None

    def start_command(self, command: str, *, stderr_path: str) -> int:
        """Start ``command`` in the guest's shell without waiting for it; returns its pid.

        Its stderr goes to the guest file ``stderr_path``, which the command deletes when it
        succeeds: read it when it fails. For commands whose end is awaited some other way
        (:meth:`wait_exit_or`), e.g. one that returns only after the VM was frozen and resumed.
        """
        if self.os_family == "windows":
            path = quote_windows(stderr_path)
            # cmd /c strips the outer quotes, leaving a quoted program path as the first token.
            return self.start(WINDOWS_SHELL, f'/c "{command} 2>{path} && del {path}"')
        path = shlex.quote(stderr_path)
        return self.start(LINUX_SHELL, "-c " + shlex.quote(f"{command} 2>{path} && rm -f {path}"))

    def run(self, command: str, timeout: float = 120.0, *, poll_max: float | None = None,
            clean_up_later: bool = False, first_look: float = 0.0) -> CommandResult:
        """Run ``command`` in the guest's shell; returns its exit status, stdout and stderr.

        ``poll_max``: the beat of looks for a command that waits for something in the guest (see
        client/pacing.py); None looks soon, then less and less often; ``first_look``: no look for the
        result before that many seconds (a paced wait, client/pacing.py). ``clean_up_later`` leaves
        the result files for the next command run in this guest to delete as it starts
        (client/leftovers.py; :meth:`clean_up` deletes what is left). On Windows the command runs inside
        parentheses, so an unbalanced ``)`` must be escaped as ``^)`` as in any cmd.exe block.
        """
        if self.os_family != "windows":
            return self._run_linux(command, timeout, poll_max, clean_up_later, first_look)
        return self._run_windows(command, timeout, poll_max, clean_up_later)

    def run_merged(self, command: str, timeout: float = 120.0, *, poll_max: float | None = None,
                   clean_up_later: bool = False, first_look: float = 0.0) -> CommandResult:
        """Like :meth:`run`, with stdout and stderr in one stream (in both fields of the result) and
        the exit status only as success (0) or failure (1) on Windows: there the output lands in
        one file that appears when the command has ended, so a round costs a StartProgramInGuest and
        a look or two for the file instead of ListProcessesInGuest and two downloads. For commands
        whose output is all that matters (discovery). Linux commands get this from :meth:`run`."""
        if self.os_family != "windows":
            result = self.run(command, timeout, poll_max=poll_max, clean_up_later=clean_up_later,
                              first_look=first_look)
            both = result.stdout + result.stderr
            return CommandResult(result.exit_status, both, both)
        token = secrets.token_hex(16)
        path = ntpath.join(self._temp_directory(), f"pytest-vsphere-clone-{token}.out")
        part, final = quote_windows(f"{path}.part"), quote_windows(path)
        # cmd.exe expands %ERRORLEVEL% when it reads the line, so the outcome comes from && / ||.
        stale = self._take_leftovers()
        inner = (f"{delete_command(stale, 'windows')}"
                 f"({command}) 1> {part} 2>&1 && (echo {_STATUS_LINE}0 >> {part}) || "
                 f"(echo {_STATUS_LINE}1 >> {part}) & move /y {part} {final} >nul")
        deadline = time.monotonic() + timeout
        pid = self._start_deleting(WINDOWS_SHELL, f'/s /c "{inner}"', stale)
        try:
            raw = self._await_result(path, pid, deadline, timeout, command, poll_max, first_look)
        finally:
            self._discard(path, clean_up_later)
        text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
        body, found, status = text.rpartition(f"{_STATUS_LINE}")
        exit_status = 0 if found and status.strip() == "0" else 1
        output = body if found else text
        return CommandResult(exit_status, output, output)

    def clean_up(self) -> None:
        """Delete the result files left for later (see :meth:`run`): one DeleteFileInGuest each."""
        for path in self._take_leftovers():
            self._delete_quietly(path)

    @property
    def leftovers(self) -> tuple[str, ...]:
        """Result files left for the next command in this guest to delete (see client/leftovers.py)."""
        return self.conn.leftover_files.left(self._moref)

    @property
    def _moref(self) -> str:
        return str(getattr(self.vm, "_moId", self.vm))

    def _take_leftovers(self) -> list[str]:
        return self.conn.leftover_files.take(self._moref)

    def _leave(self, paths: list[str]) -> None:
        """Leave ``paths`` for the next command in this guest to delete."""
        self.conn.leftover_files.leave(self._moref, paths)

    def _start_deleting(self, program: str, arguments: str, stale: list[str]) -> int:
        try:
            return self.start(program, arguments)
        except BaseException:
            self._leave(stale)  # the command meant to delete them may not have started
            raise

    def _run_linux(self, command: str, timeout: float, poll_max: float | None = None,
                   clean_up_later: bool = False, first_look: float = 0.0) -> CommandResult:
        """One result file that appears only when the command has ended: stdout, then stderr after a
        one-off separator, then the exit status. The shell writes it under a ``.part`` name and
        renames it at the end, so polling for the file (InitiateFileTransferFromGuest answers
        FileNotFound until then) learns of the exit and fetches the output in one guest operation,
        where ListProcessesInGuest would need a second. The command runs in a subshell so that
        its own ``exit`` still lets the shell write the trailer."""
        token = secrets.token_hex(16)
        path = f"{LINUX_RESULT_DIR}/pytest-vsphere-clone-{token}.out"
        separator = f"--pytest-vsphere-clone-{token}--"
        part, err = shlex.quote(f"{path}.part"), shlex.quote(f"{path}.err")
        # noclobber: the random names must be new files (never a planted symlink); the user's
        # command gets the usual shell back. It runs in the background so that the shell can act
        # on a SIGTERM at once (a shell defers traps while a foreground child runs). Tools may
        # SIGKILL instead, so the client's own deletion of the .part file after a timeout is
        # also the signal to give up: a command that ends later writes no result.
        stale = self._take_leftovers()
        script = (f"{delete_command(stale, 'linux')}umask 077\nset -C\n"
                  f"trap 'kill -TERM $child 2>/dev/null; rm -f {part} {err}; exit 143' HUP INT TERM\n"
                  f"( set +C\n{command}\n) >{part} 2>{err} &\nchild=$!\nwait $child\nrc=$?\n"
                  f"[ -e {part} ] || {{ rm -f {err}; exit $rc; }}\n"
                  f"printf '\\n%s\\n' {shlex.quote(separator)} >>{part}\n"
                  f"cat {err} >>{part}\nrm -f {err}\nprintf '\\n%s rc=%d\\n' {shlex.quote(separator)} $rc >>{part}\n"
                  f"mv -f {part} {shlex.quote(path)}\nexit $rc")
        deadline = time.monotonic() + timeout
        pid = self._start_deleting(LINUX_SHELL, "-c " + shlex.quote(script), stale)
        try:
            output = self._await_result(path, pid, deadline, timeout, command, poll_max,
                                        first_look).decode("utf-8", "replace")
        finally:
            self._discard(path, clean_up_later)
        body, found, trailer = output.rpartition(f"\n{separator} rc=")
        if not found:
            raise GuestOperationFailed(f"command {command!r} in VM {self.vm_name!r} left an unreadable result "
                                       f"(no exit status in {path})")
        status = int(trailer.strip() or "1")
        stdout, found, stderr = body.rpartition(f"\n{separator}\n")
        if not found:  # the command wrote to the file itself: all of it is stdout
            return CommandResult(status, body, "")
        return CommandResult(status, stdout, stderr)

    def _await_result(self, path: str, pid: int, deadline: float, timeout: float, command: str,
                      poll_max: float | None, first_look: float = 0.0) -> bytes:
        """The result file's content once it exists; the process is checked now and then, so one
        that died without writing it fails within seconds instead of at the deadline."""
        processes, _ = self._managers()
        looks = pacing.ResultLooks(poll_max, time.monotonic(), first_look)  # the schedule: see client/pacing.py
        while True:
            time.sleep(max(0.0, min(looks.next_look - time.monotonic(), deadline - time.monotonic())))
            look_started = time.monotonic()
            data = self.read_file_if_exists(path)
            if data is not None:
                return data
            if looks.check_due(time.monotonic()):
                infos = self._call(processes.ListProcessesInGuest, self.vm, self._auth(), [pid],
                                   what="ListProcessesInGuest") or []
                info = next((p for p in infos if p.pid == pid), None)
                if info is None or info.endTime is not None:
                    data = self.read_file_if_exists(path)  # it may have ended right after the last look
                    if data is not None:
                        return data
                    ended = "vanished" if info is None else f"ended with exit code {info.exitCode}"
                    raise GuestOperationFailed(f"command {command!r} in VM {self.vm_name!r} {ended} without "
                                               f"writing its result file {path} (killed, or /tmp not writable?)")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._terminate(processes, pid)
                for leftover in (f"{path}.part", f"{path}.err"):
                    self._delete_quietly(leftover)
                raise WaitTimeout(f"command {command!r} in VM {self.vm_name!r}", timeout,
                                  f"pid {pid} still running, no result yet", "pass a longer timeout")
            looks.missed(look_started)

    def _temp_directory(self) -> str:
        """The Windows guest's temp directory, learned once from a temporary file made (and dropped) for it."""
        if self._temp_dir is None:
            learned = self.temp_file(suffix=".out")
            self._temp_dir = ntpath.dirname(learned)
            self._discard(learned, later=True)
        return self._temp_dir

    def _discard(self, path: str, later: bool) -> None:
        """Delete ``path`` now, or leave it to the next command in this guest (see :meth:`run`)."""
        if later:
            self._leave([path])
        else:
            self._delete_quietly(path)

    def _delete_quietly(self, path: str) -> None:
        try:
            self.delete_file(path, missing_ok=True)
        except Exception as exc:  # never hide the command's own outcome
            if faults.is_not_found(exc):  # the VM went first: so did the file
                log.debug("%s in VM %s went with the VM", path, self.vm_name)
                return
            log.warning("could not delete %s in VM %s: %s", path, self.vm_name, faults.describe(exc))

    def _run_windows(self, command: str, timeout: float, poll_max: float | None = None,
                     clean_up_later: bool = False) -> CommandResult:
        """stdout and stderr in two files of the guest's temp directory, named by the client
        (random names): two guest operations fewer per command than CreateTemporaryFileInGuest."""
        token = secrets.token_hex(16)
        directory = self._temp_directory()
        stdout_path = ntpath.join(directory, f"pytest-vsphere-clone-{token}.out")
        stderr_path = ntpath.join(directory, f"pytest-vsphere-clone-{token}.err")
        try:
            stale = self._take_leftovers()
            program, arguments = wrap_windows_command(command, stdout_path, stderr_path, stale)
            pid = self._start_deleting(program, arguments, stale)
            status = self.wait_exit(pid, timeout, f"command {command!r}", poll_max)
            stdout = self.read_file(stdout_path)
            stderr = self.read_file(stderr_path)
        finally:
            for path in (stdout_path, stderr_path):
                self._discard(path, clean_up_later)
        text_out = stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        text_err = stderr.decode("utf-8", "replace").replace("\r\n", "\n")
        return CommandResult(status, text_out, text_err)
