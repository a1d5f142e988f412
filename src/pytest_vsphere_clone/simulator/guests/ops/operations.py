"""Guest Operations on one guest: logins, programs, files and the environment, as VMware Tools serves them.

What vSphere's GuestAuthManager, GuestProcessManager and GuestFileManager ask of a guest, answered
from inside it: logins checked against the guest's own /etc/passwd and /etc/shadow, programs started,
listed and terminated in its PID namespace, file operations run by a child process as the guest user
in the guest's view (``files``), and the environment a started program gets. ``Guest`` inherits
these methods and supplies the namespace of a running, unfrozen guest (``_ops_namespace``).
"""

from __future__ import annotations

import contextlib
import json
import ntpath
import os
import posixpath
import signal
import uuid
from pathlib import Path

from ..accounts import Account, group_ids, parse_passwd, parse_shadow, verify_password
from ..disk import GuestDisk
from ..errors import GuestLoginError, GuestProcessNotFound
from ..host import procfs
from ..host.daemons import python_env
from ..host.events import EventLoopThread
from ..host.namespace import INIT_PID, GuestNamespace
from ..models import GuestProcessInfo, GuestSpec
from ..paths import EXIT_CODES_DIR, from_view, temp_dir, to_view
from .files import run_fileop
from .launch import command_line, linux_environment, spawn_linux, spawn_windows, windows_environment
from .programs import ProgramTable

_TERMINATE_GRACE = 5.0  # TerminateProcessInGuest: SIGTERM, then SIGKILL if the process lingers


class GuestOperations:
    """The Guest Operations methods of ``Guest``, which provides the state declared here.

    Every method is thread-safe. Each raises GuestNotRunning while the guest is off and
    GuestOperationsUnavailable while it is frozen (through ``_ops_namespace``).
    """

    spec: GuestSpec
    disk: GuestDisk
    runtime_dir: Path
    _events: EventLoopThread
    _programs: ProgramTable
    _hostname: str

    def _ops_namespace(self) -> GuestNamespace:
        """The running guest's namespace; raises unless Guest Operations may run now."""
        raise NotImplementedError

    def _view_text(self, path: str) -> str:
        """A file as the guest sees it (through its init's root)."""
        pid = self._ops_namespace().anchor_pid
        with open(f"/proc/{pid}/root{path}", encoding="utf-8", errors="replace") as f:
            return f.read()

    def _account(self, user: str) -> Account:
        account = parse_passwd(self._view_text("/etc/passwd")).get(user)
        if account is None:
            raise GuestLoginError(f"no user {user!r} in guest {self.spec.vm_id}")
        return account

    def _credentials(self, user: str) -> tuple[int, int, list[int]]:
        account = self._account(user)
        if self.spec.family == "windows":
            return 0, 0, [0]  # Windows accounts are logical; the emulation runs as root
        return account.uid, account.gid, group_ids(self._view_text("/etc/group"), account)

    def check_login(self, user: str, password: str) -> bool:
        """True if ``user`` may log in to the guest with ``password`` (per the guest's /etc/shadow)."""
        hashed = parse_shadow(self._view_text("/etc/shadow")).get(user)
        return hashed is not None and verify_password(password, hashed)

    def require_login(self, user: str, password: str) -> None:
        """Raise GuestLoginError unless ``check_login`` succeeds."""
        if not self.check_login(user, password):
            raise GuestLoginError(f"invalid login for user {user!r} in guest {self.spec.vm_id}")

    def start_program(
        self,
        user: str,
        program_path: str,
        arguments: str,
        working_directory: str | None = None,
        env: list[str] | None = None,
    ) -> int:
        """StartProgramInGuest: run a program as ``user``; returns its guest pid.

        Raises GuestProgramNotFound if the program does not exist, GuestFileNotFound if
        the working directory does not.
        """
        ns = self._ops_namespace()
        account = self._account(user)
        if self.spec.family == "linux":
            proc = spawn_linux(ns, account, program_path, arguments, working_directory, env)
            return self._programs.add(
                proc, posixpath.basename(program_path), user, command_line(program_path, arguments),
                pid=ns.guest_pid(proc.pid),
            )
        exit_file = f"{uuid.uuid4().hex}.exit"
        proc = spawn_windows(
            ns,
            self.disk,
            user,
            self._hostname,
            program_path,
            arguments,
            working_directory,
            env,
            exit_code_file=f"{EXIT_CODES_DIR}/{exit_file}",
            powershell_start=self.spec.powershell_start,
        )
        return self._programs.add(
            proc,
            ntpath.basename(program_path),
            user,
            command_line(program_path, arguments, "windows"),
            exit_code_file=self.runtime_dir / "tools" / "exit" / exit_file,
            pid=ns.guest_pid(proc.pid),
        )

    def list_processes(self, pids: list[int] | None = None) -> list[GuestProcessInfo]:
        """ListProcessesInGuest: live processes plus programs started here that ended recently."""
        ns = self._ops_namespace()
        names = {a.uid: a.name for a in parse_passwd(self._view_text("/etc/passwd")).values()}
        found = self._programs.snapshot()
        for host_pid in ns.pids():
            pid = ns.guest_pid(host_pid)  # as in a VM, the pid the guest knows the process by
            if pid is None or pid in found:
                continue
            stat = procfs.read_stat(host_pid)
            if stat is None:
                continue
            argv = procfs.cmdline(host_pid)
            uid = procfs.real_uid(host_pid)
            # Daemons that rewrite their argv ("sshd: alice [priv]") keep a clean comm.
            plain = bool(argv) and " " not in argv[0] and ":" not in argv[0]
            found[pid] = GuestProcessInfo(
                pid=pid,
                name=posixpath.basename(argv[0]) if plain else stat.comm,
                owner=names.get(uid, str(uid)) if uid is not None else "",
                cmd_line=" ".join(argv) or f"[{stat.comm}]",
                start_time=procfs.start_time(stat),
            )
        wanted = set(pids) if pids is not None else None
        return [found[pid] for pid in sorted(found) if wanted is None or pid in wanted]

    def terminate_process(self, pid: int) -> None:
        """TerminateProcessInGuest (``pid`` a guest pid): SIGTERM now, SIGKILL after a grace period if still running."""
        ns = self._ops_namespace()
        host_pid = ns.host_pid(pid)
        stat = procfs.read_stat(host_pid) if host_pid is not None else None
        if host_pid is None or stat is None:
            raise GuestProcessNotFound(f"no process {pid} in guest {self.spec.vm_id}")
        if pid == INIT_PID:
            # Sent from inside the guest, as VMware Tools sends it, a signal its init has no handler
            # for never reaches it (pid_namespaces(7)); from the host, SIGKILL would end the guest.
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(host_pid, signal.SIGTERM)

        def kill_if_lingering() -> None:
            if procfs.is_alive(host_pid, stat.start_ticks):  # same pid and start time: not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host_pid, signal.SIGKILL)

        self._events.call(self._events.loop.call_later, _TERMINATE_GRACE, kill_if_lingering)

    def read_file(self, user: str, path: str) -> bytes:
        """InitiateFileTransferFromGuest: the file's content, read as ``user``."""
        return self._fileop(user, "read", path)

    def write_file(self, user: str, path: str, data: bytes, overwrite: bool = False, mode: int | None = None) -> None:
        """A transfer's PUT: create (or with ``overwrite`` replace) a file as ``user`` (``mode``: 0644 if None)."""
        self._fileop(user, "write", path, data, overwrite=overwrite, mode=mode)

    def check_write(self, user: str, path: str, overwrite: bool) -> None:
        """InitiateFileTransferToGuest's checks of ``path`` as ``user``, before any byte is sent."""
        self._fileop(user, "check-write", path, overwrite=overwrite)

    def delete_file(self, user: str, path: str) -> None:
        """DeleteFileInGuest (files only; a directory raises GuestNotAFile)."""
        self._fileop(user, "delete", path)

    def create_temp_file(self, user: str, prefix: str = "", suffix: str = "", directory: str | None = None) -> str:
        """CreateTemporaryFileInGuest: a new empty file (mode 0600) as ``user``; returns its guest path."""
        directory = directory or temp_dir(self.spec.family, user)
        created = self._fileop(user, "mktemp", directory, prefix=prefix, suffix=suffix)
        return from_view(self.spec.family, created.decode())

    def make_directory(self, user: str, path: str, create_parents: bool) -> None:
        """MakeDirectoryInGuest as ``user`` (mode 0700, as VMware Tools creates directories)."""
        self._fileop(user, "mkdir", path, parents=create_parents)

    def delete_directory(self, user: str, path: str, recursive: bool) -> None:
        """DeleteDirectoryInGuest as ``user`` (a file or a link raises GuestNotADirectory)."""
        self._fileop(user, "rmdir", path, recursive=recursive)

    def list_files(self, user: str, path: str) -> list[dict[str, object]]:
        """ListFilesInGuest as ``user``: a directory's entries ("." and ".." first), or the file itself."""
        return list(json.loads(self._fileop(user, "list", path)))

    def create_temp_directory(
        self, user: str, prefix: str = "", suffix: str = "", directory: str | None = None
    ) -> str:
        """CreateTemporaryDirectoryInGuest: a new directory (mode 0700) as ``user``; returns its guest path."""
        directory = directory or temp_dir(self.spec.family, user)
        created = self._fileop(user, "mkdtemp", directory, prefix=prefix, suffix=suffix)
        return from_view(self.spec.family, created.decode())

    def environment(self, user: str) -> dict[str, str]:
        """The environment a program started for ``user`` gets (ReadEnvironmentVariableInGuest)."""
        self._ops_namespace()
        if self.spec.family == "linux":
            return linux_environment(self._account(user), None)
        emulator = python_env()  # what the emulator's own Python needs is no part of the guest's
        return {k: v for k, v in windows_environment(user, self._hostname, None).items() if k not in emulator}

    def _fileop(self, user: str, op: str, path: str, data: bytes | None = None, **options: object) -> bytes:
        ns = self._ops_namespace()
        view_path = to_view(self.spec.family, path)
        return run_fileop(ns.anchor_pid, self._credentials(user), op, view_path, path, data, **options)

