"""GuestHost: the network and services shared by all guests of one simulator."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .errors import GuestError, GuestHostError
from .guest import Guest
from .host import sweep
from .host.dhcp import DhcpServer
from .host.events import EventLoopThread
from .host.host_registry import DEFAULT_NETWORK, DEFAULT_REGISTRY_DIR, Allocation, Registry
from .host.host_tools import REQUIRED_TOOLS, ip_batch, missing_tools, run
from .models import GuestSpec

# Answers a guest's VMware Tools RPC: (vm_id, command) -> reply; raise to make the tool exit 1.
BackdoorHandler = Callable[[str, str], str]

DEFAULT_LEASE_TIME = 300


def missing_prerequisites(family: str = "linux") -> list[str]:
    """Why guests cannot run here (empty if they can): not root, or host tools missing."""
    problems = [] if os.geteuid() == 0 else ["must run as root (network and mount namespaces)"]
    tools = REQUIRED_TOOLS + (("sshd",) if family == "linux" else ())
    problems += [f"{name} not installed" for name in missing_tools(tools)]
    return problems


def guest_support_problem() -> str | None:
    """Why real guests cannot run on this machine (one line), or None when they can."""
    return "; ".join(missing_prerequisites()) or None


class GuestHost:
    """One simulator's guest network: a bridge, a DHCP server and the guests on it.

    ``start()`` first sweeps what crashed simulators left behind, then claims a
    /24 of ``network`` and a name tag machine-wide, so that concurrent simulators
    never collide. ``stop()`` removes everything it created.
    """

    def __init__(
        self,
        state_dir: Path,
        sim_id: str,
        *,
        backdoor: BackdoorHandler | None = None,
        network: str = DEFAULT_NETWORK,
        lease_time: int = DEFAULT_LEASE_TIME,
        registry_dir: Path = DEFAULT_REGISTRY_DIR,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.sim_id = sim_id
        self.backdoor = backdoor
        self._registry = Registry(registry_dir, network)
        self._lease_time = lease_time
        self._allocation: Allocation | None = None
        self._dhcp: DhcpServer | None = None
        self._events: EventLoopThread | None = None
        self._guests: dict[str, Guest] = {}
        self._counter = 0
        self._lock = threading.RLock()
        self._created_state_dir = False

    # -- identity ------------------------------------------------------------------------

    def _claim(self) -> Allocation:
        if self._allocation is None:
            raise GuestHostError("GuestHost is not started")
        return self._allocation

    @property
    def tag(self) -> str:
        """Name prefix of every resource of this host ("pvcs" + index)."""
        return self._claim().tag

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self._claim().subnet)

    @property
    def gateway_ip(self) -> str:
        """The host's address on the guest network (first address of the subnet)."""
        return str(next(self.subnet.hosts()))

    @property
    def bridge(self) -> str:
        return f"{self.tag}-br"

    @property
    def runtime_dir(self) -> Path:
        return Path(self._claim().runtime_dir)

    @property
    def dhcp(self) -> DhcpServer:
        if self._dhcp is None:
            raise GuestHostError("GuestHost is not started")
        return self._dhcp

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Sweep stale resources, claim a subnet, create the bridge and start DHCP."""
        with self._lock:
            if self._allocation is not None:
                return
            problems = missing_prerequisites()
            if problems:
                raise GuestHostError("cannot run guests: " + "; ".join(problems))
            self._created_state_dir = not self.state_dir.exists()
            self._allocation = self._registry.allocate(
                self.sim_id, self.state_dir, sweep=sweep.sweep, scan=sweep.scan_indices
            )
            try:
                self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._create_bridge()
                self._dhcp = DhcpServer(self.bridge, self.subnet, self.runtime_dir, self._lease_time)
                self._dhcp.start()
                self._events = EventLoopThread(f"{self.tag}-events")
                self._events.start()
            except BaseException:
                self._release()
                raise

    def _create_bridge(self) -> None:
        index = self._claim().index
        ip_batch(
            [
                f"link add {self.bridge} type bridge stp_state 0 forward_delay 0",
                # A fixed MAC: by default a bridge takes its lowest port's MAC, which changes
                # as guests come and go and leaves the guests' ARP caches stale.
                f"link set {self.bridge} address 02:50:56:fe:{index >> 8:02x}:{index & 0xFF:02x}",
                f"address add {self.gateway_ip}/{self.subnet.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up",
            ]
        )

    def stop(self) -> None:
        """Shut down every guest and remove the DHCP server, bridge and runtime files. Idempotent."""
        with self._lock:
            if self._allocation is None:
                return
            errors = []
            for guest in list(self._guests.values()):
                try:
                    guest.shutdown()
                except GuestError as exc:
                    errors.append(str(exc))
            self._guests.clear()
            self._release()
            if errors:
                raise GuestHostError("; ".join(errors))

    def _release(self) -> None:
        """Remove host resources and the registry claim; tolerant of a partial start."""
        allocation = self._claim()
        if self._events is not None:
            self._events.stop()
            self._events = None
        if self._dhcp is not None:
            self._dhcp.stop()
            self._dhcp = None
        run(["ip", "link", "delete", self.bridge], check=False)
        try:
            sweep.sweep(allocation.index, allocation)  # safety net: anything still carrying our tag
        finally:
            self._registry.release(allocation)
            self._allocation = None
            if self._created_state_dir:
                with contextlib.suppress(OSError):
                    self.state_dir.rmdir()  # only if empty: the simulator may keep VM disks there

    def __enter__(self) -> GuestHost:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- guests --------------------------------------------------------------------------

    def create_guest(self, spec: GuestSpec, resume_from: Guest | None = None) -> Guest:
        """A powered-off guest for ``spec``; ``resume_from`` makes it an instant clone of a running guest.

        A stopped guest previously created for the same vm_id is replaced.
        """
        with self._lock:
            events = self._events
            if events is None:
                raise GuestHostError("GuestHost is not started")
            existing = self._guests.get(spec.vm_id)
            if existing is not None:
                if existing.running:
                    raise GuestHostError(f"VM {spec.vm_id} already has a running guest")
                existing.shutdown()
            self._counter += 1
            name = f"{self.tag}-{self._counter}"
            guest = Guest(
                spec,
                name=name,
                bridge=self.bridge,
                runtime_dir=self.runtime_dir / "guests" / name,
                events=events,
                backdoor=self._dispatch_rpc,
                resume_from=resume_from,
            )
            self._guests[spec.vm_id] = guest
            return guest

    def guest(self, vm_id: str) -> Guest | None:
        """The guest created for ``vm_id``, if any."""
        return self._guests.get(vm_id)

    @property
    def guests(self) -> list[Guest]:
        return list(self._guests.values())

    def remove_guest(self, vm_id: str) -> None:
        """Shut down and forget a VM's guest (e.g. when the VM is destroyed)."""
        with self._lock:
            guest = self._guests.pop(vm_id, None)
        if guest is not None:
            guest.shutdown()

    def _dispatch_rpc(self, vm_id: str, command: str) -> str:
        handler = self.backdoor
        if handler is None:
            raise GuestError("Unknown command")
        return handler(vm_id, command)
