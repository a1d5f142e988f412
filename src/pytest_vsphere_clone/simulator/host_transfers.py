"""Each simulated ESXi host's ``/guestFile`` service, on an address of its own on this machine.

Through a vCenter, InitiateFileTransferFromGuest/ToGuest answer a URL that names the ESXi host
running the VM, on port 443 (FileTransferInformation.url: "the URL to which the user has to send
a HTTP GET request"; through an ESXi host the host part is ``*``). The client then talks to that
host directly, not to the vCenter: a runner that cannot reach the hosts on 443 cannot transfer
files (govmomi #3739: "ESX host access is required for guest file transfer").

So every host gets a loopback address of its own (``127.a.b.c``; Linux routes all of 127.0.0.0/8
to ``lo``), its management address (vmk0's), where its service answers HTTPS with a certificate
of the simulator's CA. Each simulator draws its own random block of addresses, so simulators
running side by side (test workers) do not collide; a block already taken is given up for
another. Port 443 needs root or CAP_NET_BIND_SERVICE; without either the service falls back to
a free port per host, logs a warning and names that port in its URLs.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .server import GuestFileHandler, HostGuestFileHandler, SoapServer
from .tls import TlsFiles, issue_certificate

if TYPE_CHECKING:
    from .objects.inventory import HostSystem
    from .vcenter import VCenter

log = logging.getLogger(__name__)

#: The port of an ESXi host's HTTPS service.
ESXI_HTTPS_PORT = 443
#: Blocks of addresses tried before giving up (each is taken only if another simulator holds it).
BLOCK_ATTEMPTS = 32
#: How a host is made unreachable: its service refuses connections (closed port), or takes them
#: and never answers (a firewall dropping the traffic: the client times out).
UNREACHABLE_MODES = ("refuse", "drop")


@dataclass
class HostEndpoint:
    """One host's service: its address, port and server."""

    host: HostSystem
    address: str
    server: SoapServer
    #: "" while reachable, else the UNREACHABLE_MODES entry in force.
    unreachable: str = ""

    @property
    def port(self) -> int:
        return self.server.port


class HostTransferService:
    """The ``/guestFile`` services of every ESXi host of one simulated vCenter.

    ``handler_for(host_id)`` serves the transfers of host ``host_id``; ``port`` is the port to
    listen on (443 as ESXi; 0: a free one per host).
    """

    def __init__(self, vc: VCenter, hosts: list[HostSystem], port: int,
                 handler_for: Callable[[str], GuestFileHandler]) -> None:
        self.vc = vc
        self.hosts = list(hosts)
        self.requested_port = port
        self.handler_for = handler_for
        self.endpoints: dict[str, HostEndpoint] = {}  # by host MoRef id
        #: True when the requested port could not be bound for lack of privilege.
        self.fell_back = False

    # --- lifecycle ---------------------------------------------------------------------

    def bind(self) -> None:
        """Bind every host's listener in a free random block and give each host its address."""
        port = self.requested_port
        for _ in range(BLOCK_ATTEMPTS):
            try:
                self._bind_block(_random_block(len(self.hosts)), port)
            except PermissionError:
                if port == 0:
                    raise
                log.warning("cannot listen on port %d for the simulated ESXi hosts' guest file transfers (needs "
                            "root or CAP_NET_BIND_SERVICE): using a free port per host instead; transfer URLs "
                            "name that port", port)
                port = 0
                self.fell_back = True
                continue
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue  # another simulator holds an address of this block: draw another
            with self.vc.lock:
                for endpoint in self.endpoints.values():
                    endpoint.host.address = endpoint.address
            return
        raise OSError(errno.EADDRINUSE, f"no free block of loopback addresses for {len(self.hosts)} ESXi "
                                        f"host(s) on port {port} after {BLOCK_ATTEMPTS} tries")

    def _bind_block(self, addresses: list[str], port: int) -> None:
        made: dict[str, HostEndpoint] = {}
        try:
            for host, address in zip(self.hosts, addresses, strict=True):
                server = SoapServer(self.vc, address, port, None, "", "", handler=HostGuestFileHandler)
                server.set_guest_file_handler(self.handler_for(host.mo_id))
                made[host.mo_id] = HostEndpoint(host, address, server)
        except BaseException:
            for endpoint in made.values():
                endpoint.server.stop()
            raise
        self.endpoints = made

    def use_certificates(self, ca: TlsFiles, directory: Path) -> None:
        """Give each host a server certificate of the simulator's CA for its name and address; its
        SHA-1 thumbprint is what the host reports (HostSystem summary.config.sslThumbprint)."""
        for endpoint in self.endpoints.values():
            host = endpoint.host
            files = issue_certificate(ca, directory, f"host-{host.mo_id}", [endpoint.address, host.name])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.cert_file, files.key_file)
            endpoint.server.httpd.tls = context
            with self.vc.lock:
                host.ssl_thumbprint = files.thumbprint

    def start(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.server.start()

    def stop(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.server.stop()  # whatever its state: a closed socket closes again harmlessly
        self.endpoints = {}

    # --- facts ---------------------------------------------------------------------------

    def endpoint(self, host: Any) -> tuple[str, int] | None:
        """(address, port) of ``host``'s service, None for a host without one."""
        found = self.endpoints.get(getattr(host, "mo_id", ""))
        return (found.address, found.port) if found is not None else None

    def by_name(self, name: str) -> HostEndpoint:
        for endpoint in self.endpoints.values():
            if endpoint.host.name == name:
                return endpoint
        known = ", ".join(sorted(e.host.name for e in self.endpoints.values()))
        raise KeyError(f"no ESXi host {name!r} serves guest file transfers (known: {known})")

    # --- faults --------------------------------------------------------------------------

    def make_unreachable(self, name: str, mode: str = "refuse") -> None:
        """Cut host ``name`` off from clients: ``refuse`` closes its port (connections are refused),
        ``drop`` leaves it open but never answers (clients time out, as behind a dropping firewall)."""
        if mode not in UNREACHABLE_MODES:
            raise ValueError(f"mode must be one of {', '.join(UNREACHABLE_MODES)}, not {mode!r}")
        endpoint = self.by_name(name)
        if endpoint.unreachable:
            self.make_reachable(name)
        if mode == "refuse":
            endpoint.server.stop_listening()
        else:
            endpoint.server.stop_accepting()
        endpoint.unreachable = mode

    def make_reachable(self, name: str) -> None:
        """Serve host ``name``'s transfers again, on the same address and port."""
        endpoint = self.by_name(name)
        if endpoint.unreachable == "refuse":
            endpoint.server.listen_again()
        elif endpoint.unreachable == "drop":
            endpoint.server.start()
        endpoint.unreachable = ""


def _random_block(count: int) -> list[str]:
    """``count`` consecutive loopback addresses from a random start, never in 127.0.0.0/16 (where
    127.0.0.1 and the resolver's 127.0.0.53 live). Drawn from the OS's randomness: test workers
    whose ``random`` is seeded alike still draw different blocks."""
    first = ipaddress.IPv4Address(f"127.{1 + secrets.randbelow(250)}.{secrets.randbelow(256)}.1")
    return [str(first + i + i // 254 * 2) for i in range(count)]  # skip each .255 and .0
