"""The bundled vCenter simulator as one object: start, stop, inspect, inject faults."""

from __future__ import annotations

import logging
import secrets
import shutil
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tempdirs import make_owned_tempdir, sweep_orphans
from .auth import ADMIN_USER
from .faults import FaultRule
from .host_transfers import HostTransferService
from .inventory import DEFAULT_INVENTORY, InventoryError, build_inventory, build_service, load_inventory_file
from .latency import LatencyProfile
from .objects.inventory import HostSystem
from .objects.virtual_machine import VirtualMachine
from .server import GuestFileHandler, SoapServer
from .tls import TlsFiles, create_tls_files
from .vcenter import VCenter, VCenterOptions

log = logging.getLogger(__name__)

STATE_DIR_PREFIX = "vsphere-clone-sim-"


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulator instance."""

    host: str = "127.0.0.1"
    port: int = 0
    profile: str = "fast"
    time_scale: float = 1.0
    inventory: Path | None = None
    user: str = ADMIN_USER
    password: str | None = None  # None: a fresh random password
    session_idle_timeout: float = 1800.0
    guests: bool = False
    state_dir: Path | None = None
    extra_users: tuple[tuple[str, str, frozenset[str]], ...] = field(default=())
    #: ``AboutInfo.apiType``: None takes the inventory's ``api_type`` (default "VirtualCenter");
    #: "HostAgent" answers as an ESXi host reached directly, which offers no cloning.
    api_type: str | None = None
    #: Report ManagedEntity.recentTask changes to property collectors (see VCenterOptions).
    recent_task_updates: bool = False
    #: The port of each simulated ESXi host's guest file transfer service (with guests), on the
    #: host's own loopback address: 443 as on ESXi; 0 picks a free port per host. Without root or
    #: CAP_NET_BIND_SERVICE a privileged port falls back to a free one, with a warning.
    transfer_port: int = 443


class Simulator:
    """A running simulated vCenter reachable at ``url`` over HTTPS."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.password = self.config.password or secrets.token_urlsafe(12)
        self.vc: VCenter | None = None
        self.tls: TlsFiles | None = None
        self._server: SoapServer | None = None
        self._host_transfers: HostTransferService | None = None
        self._state_dir: Path | None = None
        self._own_state_dir = False

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Simulator:
        """Build the inventory, start HTTPS and (optionally) the guests."""
        config = self.config
        profile = LatencyProfile.named(config.profile, config.time_scale)
        data = load_inventory_file(config.inventory) if config.inventory else DEFAULT_INVENTORY
        if config.state_dir is None:
            sweep_orphans(STATE_DIR_PREFIX)  # state of killed simulators on this machine
            self._state_dir = make_owned_tempdir(STATE_DIR_PREFIX)
            self._own_state_dir = True
        else:
            self._state_dir = config.state_dir
            self._state_dir.mkdir(parents=True, exist_ok=True)
        try:
            vc = VCenter(VCenterOptions(profile=profile, session_idle_timeout=config.session_idle_timeout,
                                        recent_task_updates=config.recent_task_updates,
                                        api_type=config.api_type or data.get("api_type") or "VirtualCenter"))
            self.vc = vc
            vc.authorizer.add_user(config.user, self.password)
            for name, password, denied in config.extra_users:
                vc.authorizer.add_user(name, password, denied)
            build_service(vc)
            try:
                build_inventory(vc, data)
            except InventoryError as exc:
                if config.inventory is None:
                    raise
                raise InventoryError(f"inventory file {config.inventory}: {exc}") from None  # say which file
            self.tls = create_tls_files(self._state_dir / "tls", [config.host, "localhost"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
            self._server = SoapServer(vc, config.host, config.port, context, config.user, self.password)
            if config.guests:
                if not vc.options.host_agent:  # a direct ESXi connection serves its own transfers
                    self._start_host_transfers()
                self._start_guests()
            else:
                self._settle_initial_power()
            self._server.start()
        except BaseException:
            self.stop()
            raise
        log.info("vCenter simulator serving at %s", self.url)
        return self

    def _settle_initial_power(self) -> None:
        """Without guests, bring VMs to their initial power and frozen state directly."""
        assert self.vc is not None
        for vm in self.vc.of_type(VirtualMachine):
            if vm.initial_power == "poweredOn":
                vm.power_state = "poweredOn"
                vm.boot_time = vm.created
                vm.tools.running = vm.tools_installed
                vm.frozen = vm.initial_frozen

    def _start_host_transfers(self) -> None:
        """Each ESXi host's /guestFile service on an address of its own (see host_transfers)."""
        assert self.vc is not None and self.tls is not None and self._state_dir is not None
        vc = self.vc

        def handler_for(host_id: str) -> GuestFileHandler:
            def handle(method: str, token: str, body: bytes) -> tuple[int, bytes]:
                runtime = vc.guests
                if runtime is None:
                    return 404, b"no such guest file transfer"
                return runtime.file_transfers.handle(method, token, body, host_id)
            return handle

        service = HostTransferService(vc, vc.of_type(HostSystem), self.config.transfer_port, handler_for)
        self._host_transfers = service
        service.bind()
        service.use_certificates(self.tls, self._state_dir / "tls")
        service.start()

    def _start_guests(self) -> None:
        from .guest_runtime import GuestRuntime

        assert self.vc is not None and self._server is not None and self._state_dir is not None
        transfers = self._host_transfers
        runtime = GuestRuntime(self.vc, self._state_dir / "guests",
                               transfer_endpoint=transfers.endpoint if transfers is not None else None)
        self.vc.guests = runtime
        if transfers is None:  # ESXi: "*" URLs, served on the port the client talks to
            self._server.set_guest_file_handler(runtime.file_transfers.handle)
        runtime.start()

    def stop(self) -> None:
        """Stop serving and remove every guest, process and file the simulator made."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._host_transfers is not None:
            self._host_transfers.stop()
            self._host_transfers = None
        if self.vc is not None:
            self.vc.close()
            self.vc.tasks.wait_idle(10.0)
            if self.vc.guests is not None:
                self.vc.guests.stop()
                self.vc.guests = None
        if self._own_state_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- facts for clients --------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the simulator is not running"
        return self._server.port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/sdk"

    @property
    def user(self) -> str:
        return self.config.user

    @property
    def ca_file(self) -> Path:
        assert self.tls is not None
        return self.tls.ca_file

    @property
    def state_dir(self) -> Path:
        assert self._state_dir is not None
        return self._state_dir

    def connection_facts(self) -> dict[str, str]:
        """The KEY=value facts ``vsphere-clone simulator`` prints (the password included)."""
        assert self.tls is not None
        facts = {"URL": self.url, "HOST": f"{self.host}:{self.port}", "USER": self.user,
                 "PASSWORD": self.password, "CA_FILE": str(self.tls.ca_file), "THUMBPRINT": self.tls.thumbprint}
        if self.vc is not None and self.vc.guests is not None:
            facts.update(self.vc.guests.connection_facts())
        return facts

    # --- test and benchmark controls -----------------------------------------------------

    def _vc(self) -> VCenter:
        assert self.vc is not None, "the simulator is not running"
        return self.vc

    def inject_fault(self, method: str, fault: str | None = None, *, count: int = 1, delay: float = 0.0,
                     drop: bool = False, mo_id: str | None = None, message: str = "",
                     in_task: bool = False, obj: tuple[str, str] | None = None, probability: float = 1.0,
                     seed: int | None = None, drop_reply: bool = False) -> FaultRule:
        """Make the next ``count`` calls of ``method`` fail (-1: every call), stall or drop their connection.

        With ``in_task`` a method that returns a task answers normally and its task ends with the fault.
        ``obj``: the object the fault names, as (wsdl type, moref id). ``method="*"`` matches every
        method; ``probability`` hits only that share of matching calls (drawn from ``random.Random(seed)``);
        ``drop_reply`` runs the call and then closes the connection instead of answering.
        """
        return self._vc().faults.add(FaultRule(method, fault, count, delay, drop, mo_id, message, in_task, obj,
                                               probability, seed, drop_reply))

    def clear_faults(self) -> None:
        self._vc().faults.clear()

    def counters(self) -> Counter[str]:
        """Requests served per method since the start or the last reset."""
        vc = self._vc()
        with vc.lock:
            return Counter(vc.counters)

    def reset_counters(self) -> None:
        vc = self._vc()
        with vc.lock:
            vc.counters.clear()

    def add_user(self, name: str, password: str, denied: set[str] | frozenset[str] = frozenset()) -> None:
        """Add a user whose role lacks the ``denied`` privileges."""
        self._vc().authorizer.add_user(name, password, denied)

    def expire_sessions(self) -> None:
        """End every session now, as an idle timeout would."""
        self._vc().sessions.expire_all()

    def go_away(self) -> None:
        """Become unavailable, as a vCenter that went down: the listening socket closes (connections are
        refused), open connections close and every session ends. Tasks already running go on."""
        assert self._server is not None, "the simulator is not running"
        self._server.stop_listening()
        self.expire_sessions()  # after the close: no call can still reach a session that is about to go

    def come_back(self) -> None:
        """Serve again on the same port after :meth:`go_away`; clients must log in again."""
        assert self._server is not None, "the simulator is not running"
        self._server.listen_again()

    def outage(self, seconds: float) -> None:
        """Be unavailable for ``seconds`` (blocks; :meth:`go_away`, then :meth:`come_back`)."""
        self.go_away()
        try:
            time.sleep(seconds)
        finally:
            self.come_back()

    def _transfers(self) -> HostTransferService:
        assert self._host_transfers is not None, \
            "the ESXi hosts serve guest file transfers of their own only with guests and through a vCenter"
        return self._host_transfers

    def host_address(self, name: str) -> tuple[str, int]:
        """(address, port) where ESXi host ``name`` serves guest file transfers (its management address)."""
        endpoint = self._transfers().by_name(name)
        return endpoint.address, endpoint.port

    def host_unreachable(self, name: str, mode: str = "refuse") -> None:
        """Cut ESXi host ``name`` off from clients, as a firewall between the runner and the host would:
        ``refuse`` closes its port (connections refused), ``drop`` takes connections and never answers
        (clients time out). The vCenter and the host's VMs go on; :meth:`host_reachable` undoes it."""
        self._transfers().make_unreachable(name, mode)

    def host_reachable(self, name: str) -> None:
        """Serve ESXi host ``name``'s guest file transfers again after :meth:`host_unreachable`."""
        self._transfers().make_reachable(name)

    def vm_names(self) -> list[str]:
        vc = self._vc()
        with vc.lock:
            return sorted(vm.name for vm in vc.of_type(VirtualMachine))

    def find_vm(self, name: str) -> Any:
        """The simulated VM called ``name`` (for white-box checks in tests)."""
        vc = self._vc()
        with vc.lock:
            for vm in vc.of_type(VirtualMachine):
                if vm.name == name:
                    return vm
        raise KeyError(name)
