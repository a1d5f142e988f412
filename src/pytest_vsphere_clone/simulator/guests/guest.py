"""One VM's guest: power, NIC state, freeze and instant-clone resume.

The Guest Operations a running guest answers (logins, programs, files) are its methods too,
inherited from ``ops.operations.GuestOperations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .disk import GuestDisk
from .errors import GuestHostError, GuestNotRunning, GuestOperationsUnavailable
from .host import procfs
from .host.daemons import start_dhclient, start_sshd, start_winrm, wait_listening
from .host.events import EventLoopThread
from .host.host_tools import ip_batch, run
from .host.linkwatch import LinkDownWatcher
from .host.namespace import GuestNamespace, GuestView, host_submounts, python_host_binds
from .host.vnic import GUEST_IFNAME, VirtualNic
from .models import GuestIpAddress, GuestNic, GuestSpec
from .ops.operations import GuestOperations
from .ops.programs import ProgramTable
from .vmtools import shims
from .vmtools.backdoor import BackdoorServer

log = logging.getLogger(__name__)

# (vm_id, rpc command) -> reply text; raising makes the guest's tool exit 1.
BackdoorDispatch = Callable[[str, str], str]

FREEZE_RPC = "instantclone.freeze"
NIC_RESET_RPC = "pvcs.nic.reset"  # internal: sent by the guest's dhclient hook (see disk.py)
_SSHD_TIMEOUT = 10.0
_WINRM_TIMEOUT = 30.0


@dataclass(frozen=True)
class _ResumeState:
    """What an instant clone inherits from its running source's guest OS."""

    hostname: str
    mac: str
    addresses: tuple[str, ...]  # "ip/prefix" on eth0
    routes: tuple[str, ...]  # ``ip -batch`` lines re-adding gateway routes


class Guest(GuestOperations):
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


def _ignore_exit(returncode: int) -> None:
    """A guest service's end is the guest's business."""


def _log_failure(what: str) -> Callable[[asyncio.Future[None]], None]:
    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("%s failed", what, exc_info=future.exception())

    return done
