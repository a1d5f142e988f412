"""One VM's guest: power, guest operations, NIC state, freeze and instant-clone resume."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ntpath
import os
import posixpath
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .accounts import Account, group_ids, parse_passwd, parse_shadow, verify_password
from .disk import GuestDisk
from .errors import (
    GuestHostError,
    GuestLoginError,
    GuestNotRunning,
    GuestOperationsUnavailable,
    GuestProcessNotFound,
)
from .host import procfs
from .host.daemons import python_env, start_dhclient, start_sshd, start_winrm, wait_listening
from .host.events import EventLoopThread
from .host.host_tools import ip_batch, run
from .host.linkwatch import LinkDownWatcher
from .host.namespace import INIT_PID, GuestNamespace, GuestView, host_submounts, python_host_binds
from .host.vnic import GUEST_IFNAME, VirtualNic
from .models import GuestIpAddress, GuestNic, GuestProcessInfo, GuestSpec
from .ops.files import run_fileop
from .ops.launch import command_line, linux_environment, spawn_linux, spawn_windows, windows_environment
from .ops.programs import ProgramTable
from .paths import EXIT_CODES_DIR, from_view, temp_dir, to_view
from .vmtools import shims
from .vmtools.backdoor import BackdoorServer

log = logging.getLogger(__name__)

# (vm_id, rpc command) -> reply text; raising makes the guest's tool exit 1.
BackdoorDispatch = Callable[[str, str], str]

FREEZE_RPC = "instantclone.freeze"
NIC_RESET_RPC = "pvcs.nic.reset"  # internal: sent by the guest's dhclient hook (see disk.py)
_SSHD_TIMEOUT = 10.0
_WINRM_TIMEOUT = 30.0
_TERMINATE_GRACE = 5.0  # TerminateProcessInGuest: SIGTERM, then SIGKILL if the process lingers


@dataclass(frozen=True)
class _ResumeState:
    """What an instant clone inherits from its running source's guest OS."""

    hostname: str
    mac: str
    addresses: tuple[str, ...]  # "ip/prefix" on eth0
    routes: tuple[str, ...]  # ``ip -batch`` lines re-adding gateway routes


class Guest:
    """The real guest behind one simulated VM. Create through ``GuestHost.create_guest``.

    Every method is thread-safe. Guest operations raise GuestNotRunning while the
    guest is off and GuestOperationsUnavailable while it is frozen.
    """

    def __init__(
        self,
        spec: GuestSpec,
        *,
        name: str,
        bridge: str,
        runtime_dir: Path,
        events: EventLoopThread,
        backdoor: BackdoorDispatch,
        resume_from: Guest | None = None,
    ) -> None:
        self.spec = spec
        self.name = name  # network namespace and host-side interface name
        self.runtime_dir = runtime_dir
        self.disk = GuestDisk(spec.disk_dir)
        self._events = events
        self._backdoor = backdoor
        self._resume_from = resume_from
        self._nic = VirtualNic(bridge, name, name, spec.mac)
        self._programs = ProgramTable(events)
        self._ns: GuestNamespace | None = None
        self._server: BackdoorServer | None = None
        self._watcher: LinkDownWatcher | None = None
        self._services: list[subprocess.Popen[bytes]] = []
        self._power_lock = threading.RLock()  # boot / shutdown
        self._hw_lock = threading.RLock()  # virtual hardware: NIC, freeze
        self._running = False
        self._frozen = False
        self._nic_connected = True
        self._stale_mac = False
        self._nic_ready_at = 0.0  # time.time() when a reset NIC has come back (driver reload, link)
        self._hostname = spec.hostname
        self._freeze_waiters: list[asyncio.Future[None]] = []  # touched in the loop thread only

    # -- state ---------------------------------------------------------------------------

    @property
    def vm_id(self) -> str:
        return self.spec.vm_id

    @property
    def running(self) -> bool:
        return self._running

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def hostname(self) -> str:
        """The hostname the guest booted (or resumed) with."""
        return self._hostname

    @property
    def nic_connected(self) -> bool:
        return self._nic_connected

    def pids(self) -> list[int]:
        """Host pids of every process of the guest (the guest knows them by other pids: its own PID namespace's)."""
        return self._ns.pids() if self._ns is not None else []

    def rss_bytes(self) -> int:
        """Memory in use by the guest: the sum of its processes' resident set sizes."""
        return sum(procfs.rss_bytes(pid) for pid in self.pids())

    # -- power ---------------------------------------------------------------------------

    def boot(self) -> None:
        """Power on: namespaces, NIC, accounts, sshd or WinRM, DHCP (completes asynchronously).

        An instant clone (created with ``resume_from``) instead resumes its source's
        guest state: hostname, address configuration and MAC on eth0 - stale until the
        guest resets its NIC. Idempotent; a failed boot leaves nothing behind.
        """
        with self._power_lock:
            if self._running:
                return
            try:
                self._boot()
            except BaseException:
                with contextlib.suppress(Exception):
                    self._teardown()
                raise

    def shutdown(self) -> None:
        """Power off: kill every guest process, remove namespaces, links and runtime files.

        The disk directory is kept. Idempotent.
        """
        with self._power_lock:
            self._teardown()

    def _boot(self) -> None:
        spec = self.spec
        resume = self._resume_from._resume_state() if self._resume_from is not None else None
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        tools = self.runtime_dir / "tools"
        tools.mkdir(mode=0o755, parents=True)
        self.disk.prepare(spec)
        shims.install(tools)
        self.disk.install_programs({name: tools / "bin" / name for name in shims.SHIM_NAMES})
        overlays = [(mp, *self.disk.ensure_overlay_dirs(mp)) for mp in ("/", "/etc", *host_submounts(spec.family))]
        self._ns = ns = GuestNamespace(self.name, self.runtime_dir / "init.log")
        ns.create_netns()
        self._nic.create(guest_mac=resume.mac if resume else spec.mac, connected=self._nic_connected)
        self._server = BackdoorServer(self._events, tools / "backdoor.sock", self._handle_rpc)
        self._server.start()
        self._hostname = resume.hostname if resume else spec.hostname
        view = GuestView(
            disk_dir=self.disk.root.resolve(),
            tools_dir=tools,
            staging_dir=self.runtime_dir / "stage",
            hostname=self._hostname,
            family=spec.family,
            overlays=tuple(overlays),
            host_binds=python_host_binds() if spec.family == "windows" else (),
        )
        ns.start_init(view)
        if resume is not None and resume.addresses:
            ip_batch(
                [f"address add {a} dev {GUEST_IFNAME}" for a in resume.addresses] + list(resume.routes),
                netns=self.name,
            )
        service_log = self.runtime_dir / "service.log"
        if spec.family == "linux":
            service = start_sshd(ns, service_log)
            port, what, timeout = 22, "sshd", _SSHD_TIMEOUT
        else:
            service = start_winrm(ns, service_log, tools, spec.winrm_port, spec.user, spec.password,
                                  self._hostname, spec.powershell_start)
            port, what, timeout = spec.winrm_port, "WinRM server", _WINRM_TIMEOUT
        self._services.append(service)
        if resume is None:  # a resumed clone has no DHCP client until the guest runs one
            self._services.append(start_dhclient(ns, self.runtime_dir / "dhclient.log",
                                                 spec.network_start_delay()))
        for proc in self._services:  # reaped when they end, as by the guest's init: no zombie in its ps
            self._events.watch_exit(proc, _ignore_exit)
        wait_listening(service, port, what, service_log, timeout)
        if resume is not None:
            self._stale_mac = True
            ifindex = int(str(self._nic.guest_link()["ifindex"]))
            self._watcher = LinkDownWatcher(self._events, ns.netns_path, ifindex, self._on_link_down)
        self._running = True

    def _teardown(self) -> None:
        self._running = False
        errors: list[str] = []

        def attempt(step: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:  # keep going: leave as little behind as possible
                errors.append(f"{step}: {exc}")

        if self._watcher is not None:
            attempt("link watcher", self._watcher.close)
            self._watcher = None
        if self._server is not None:
            attempt("backdoor", self._server.stop)  # also aborts a pending freeze RPC
            self._server = None
        with self._hw_lock:
            self._frozen = False
            self._stale_mac = False
        if self._ns is not None:
            attempt("guest processes", self._ns.kill)  # SIGKILLs every guest process
        for proc in self._services:
            attempt(f"reaping {proc.args[0] if isinstance(proc.args, list) else proc.pid}", proc.wait)
        self._services.clear()
        attempt("programs", self._programs.clear)
        if self._ns is not None:  # after the reaping: until then, the kernel holds the guest's dead init
            attempt("namespaces", self._ns.destroy)
            self._ns = None
        attempt("virtual NIC", self._nic.delete)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        if errors:
            raise GuestHostError(f"guest {self.vm_id}: incomplete shutdown: {'; '.join(errors)}")

    # -- network -------------------------------------------------------------------------

    def interfaces(self) -> list[GuestNic]:
        """The guest's interfaces (except lo) as its kernel reports them."""
        if not self._running:
            return []
        nics = []
        for link in json.loads(run(["ip", "-n", self.name, "-j", "address", "show"])):
            if link.get("link_type") == "loopback":
                continue
            addresses = tuple(
                GuestIpAddress(a["local"], int(a["prefixlen"])) for a in link.get("addr_info", []) if "local" in a
            )
            flags = link.get("flags", [])
            up = "UP" in flags and "LOWER_UP" in flags  # administratively up, with carrier
            nics.append(GuestNic(link["ifname"], link.get("address", ""), up, addresses))
        return nics

    def primary_ip(self) -> str | None:
        """The first global IPv4 address of eth0 (what VMware Tools reports as guest.ipAddress)."""
        for nic in self.interfaces():
            if nic.name == GUEST_IFNAME:
                for address in nic.ip_addresses:
                    if "." in address.ip and not address.ip.startswith("169.254."):
                        return address.ip
        return None

    def wait_for_ip(self, timeout: float = 10.0) -> str:
        """Block until eth0 has an IPv4 address (DHCP completes after boot returns)."""
        deadline = time.monotonic() + timeout
        while True:
            ip = self.primary_ip()
            if ip is not None:
                return ip
            if time.monotonic() > deadline:
                raise GuestHostError(f"guest {self.vm_id} got no IPv4 address within {timeout} s")
            time.sleep(0.005)  # DHCP takes tens of ms: a coarser poll would dominate the wait

    def set_nic_connected(self, connected: bool) -> None:
        """vSphere's connectable.connected: a disconnected NIC passes no traffic (guest sees no carrier).

        Remembered while the guest is off and applied at boot (startConnected).
        """
        with self._hw_lock:
            self._nic_connected = connected
            if self._running and not self._frozen:
                self._nic.set_connected(connected)

    def _reset_nic(self) -> None:
        """The simulated driver reload of an instant clone: adopt the hardware MAC, drop stale config."""
        with self._hw_lock:
            if not self._running or not self._stale_mac:
                return
            self._stale_mac = False
            self._nic_ready_at = time.time() + self.spec.refresh_delay
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
            self._nic.reset_guest_side()

    def _on_link_down(self) -> None:
        """eth0 set down inside a stale clone: reset the NIC (off the event loop)."""
        future = self._events.loop.run_in_executor(None, self._reset_nic)
        future.add_done_callback(_log_failure(f"NIC reset of {self.vm_id}"))

    def _resume_state(self) -> _ResumeState:
        """This running guest's OS network state, for an instant clone to resume with."""
        ns = self._ns
        if not self._running or ns is None:
            raise GuestNotRunning(f"instant clone source {self.vm_id} is not running")
        hostname = run(ns.enter(["uname", "-n"])).strip()
        mac = str(self._nic.guest_link()["address"])
        links = json.loads(run(["ip", "-n", self.name, "-j", "-4", "address", "show", "dev", GUEST_IFNAME]))
        addresses = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for link in links
            for a in link.get("addr_info", [])
            if a.get("scope") == "global"
        )
        routes = tuple(
            f"route add {r['dst']} via {r['gateway']} dev {GUEST_IFNAME}"
            for r in json.loads(run(["ip", "-n", self.name, "-j", "-4", "route", "show", "dev", GUEST_IFNAME]))
            if "gateway" in r
        )
        return _ResumeState(hostname=hostname, mac=mac, addresses=addresses, routes=routes)

    # -- freeze and backdoor -------------------------------------------------------------

    def freeze(self) -> None:
        """Pause the guest: SIGSTOP every process and drop the NIC's carrier, as a paused VM."""
        with self._hw_lock:
            if not self._running or self._frozen or self._ns is None:
                return
            self._frozen = True
            self._ns.stop_all()
            self._nic.set_connected(False)

    def unfreeze(self) -> None:
        """Resume a frozen guest; a pending ``instantclone.freeze`` RPC then returns (exit 0)."""
        with self._hw_lock:
            if not self._frozen:
                return
            self._frozen = False
            if self._running and self._ns is not None:
                self._ns.signal_all(signal.SIGCONT)
                self._nic.set_connected(self._nic_connected)
        self._events.call(self._release_freeze_waiters)

    def _release_freeze_waiters(self) -> None:
        for waiter in self._freeze_waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _handle_rpc(self, command: str) -> str:
        """Answer an RPC from the guest's tools (runs in the event loop thread)."""
        loop = asyncio.get_running_loop()
        if command.split(maxsplit=1)[:1] == [NIC_RESET_RPC]:
            await loop.run_in_executor(None, self._reset_nic)
            # The DHCP client waits here (its PREINIT hook) until the reloaded NIC is back: the
            # guest OS's own share of an instant clone's refresh, whichever way the reset began.
            await asyncio.sleep(max(0.0, self._nic_ready_at - time.time()))
            return ""
        reply = await loop.run_in_executor(None, self._backdoor, self.vm_id, command)
        if command.strip() == FREEZE_RPC:
            # Like vmtoolsd, the call returns only when the VM runs again.
            waiter: asyncio.Future[None] = loop.create_future()
            self._freeze_waiters.append(waiter)
            try:
                await loop.run_in_executor(None, self.freeze)
                await waiter
            finally:
                self._freeze_waiters.remove(waiter)
        return reply

    # -- guest operations ----------------------------------------------------------------

    def _ops_namespace(self) -> GuestNamespace:
        if not self._running or self._ns is None:
            raise GuestNotRunning(f"guest {self.vm_id} is not running")
        if self._frozen:
            raise GuestOperationsUnavailable(f"guest {self.vm_id} is frozen")
        return self._ns

    def _view_text(self, path: str) -> str:
        """A file as the guest sees it (through its init's root)."""
        pid = self._ops_namespace().anchor_pid
        with open(f"/proc/{pid}/root{path}", encoding="utf-8", errors="replace") as f:
            return f.read()

    def _account(self, user: str) -> Account:
        account = parse_passwd(self._view_text("/etc/passwd")).get(user)
        if account is None:
            raise GuestLoginError(f"no user {user!r} in guest {self.vm_id}")
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
            raise GuestLoginError(f"invalid login for user {user!r} in guest {self.vm_id}")

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
            raise GuestProcessNotFound(f"no process {pid} in guest {self.vm_id}")
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

    def write_file(self, user: str, path: str, data: bytes, overwrite: bool = False) -> None:
        """InitiateFileTransferToGuest: create (or with ``overwrite`` replace) a file as ``user``."""
        self._fileop(user, "write", path, data, overwrite=overwrite)

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


def _ignore_exit(returncode: int) -> None:
    """A guest service's end is the guest's business."""


def _log_failure(what: str) -> Callable[[asyncio.Future[None]], None]:
    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("%s failed", what, exc_info=future.exception())

    return done
