"""The real network behind a simulated Windows guest's adapters: interfaces, DNS, DHCP actions.

A Windows-family simulated VM is a Linux network namespace. ``ipconfig``, ``netsh`` and
``Get-NetIPAddress`` show its real interfaces (read with ``ip -j``) under Windows names, and act on
them through a :class:`NetworkBackend`; :class:`LinuxNetwork` is the one for the namespace the
program runs in.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "Adapter",
    "DnsConfig",
    "IpAddress",
    "LinuxNetwork",
    "NetInterface",
    "NetworkBackend",
    "NetworkError",
]

#: ``ip`` reports "forever" lifetimes as 2**32 - 1.
_FOREVER = 0xFFFFFFFF

class NetworkError(Exception):
    """A network operation on the real namespace failed; the message is shown to the guest user."""



@dataclass(frozen=True)
class IpAddress:
    """One address configured on a real interface."""

    address: str
    prefix_length: int
    family: Literal[4, 6]
    scope: str = "global"
    #: Leased by a DHCP client (the kernel's "dynamic" flag: the address has a finite lifetime).
    dynamic: bool = False
    #: Remaining lifetimes in seconds; ``None`` means forever.
    valid_lifetime: int | None = None
    preferred_lifetime: int | None = None


@dataclass(frozen=True)
class NetInterface:
    """A snapshot of one real Linux interface, as ``ip -j addr`` / ``ip -j route`` report it."""

    index: int
    name: str
    mac: str
    admin_up: bool
    carrier: bool
    mtu: int = 1500
    loopback: bool = False
    addresses: tuple[IpAddress, ...] = ()
    #: Default-route gateways through this interface (IPv6 first, as Windows lists them).
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True)
class Adapter:
    """A real interface under the name Windows shows for it ("Ethernet0")."""

    alias: str
    interface: NetInterface
    #: 1-based position among visible adapters; drives "vmxnet3 Ethernet Adapter #2" descriptions.
    ordinal: int = 1


@dataclass(frozen=True)
class DnsConfig:
    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


class NetworkBackend(Protocol):
    """Reads and changes the real interfaces the guest's adapters stand for."""

    @property
    def dhcp_available(self) -> bool:
        """Whether a DHCP client is configured (Windows then reports "DHCP Enabled: Yes")."""
        ...

    def interfaces(self) -> list[NetInterface]: ...

    def dns(self) -> DnsConfig: ...

    def renew_dhcp(self, ifname: str) -> None: ...

    def release_dhcp(self, ifname: str) -> None: ...

    def set_link(self, ifname: str, up: bool) -> None: ...


def _command_for(template: Sequence[str] | str, ifname: str) -> list[str]:
    """Expand a DHCP command template; without an ``{interface}`` placeholder the name is appended."""
    argv = shlex.split(template) if isinstance(template, str) else list(template)
    if not argv:
        raise NetworkError("empty DHCP command")
    if any("{interface}" in arg for arg in argv):
        return [arg.replace("{interface}", ifname) for arg in argv]
    return [*argv, ifname]


class LinuxNetwork:
    """:class:`NetworkBackend` for the network namespace this process runs in (``ip``, a DHCP client)."""

    def __init__(
        self,
        dhcp_command: Sequence[str] | str | None = None,
        dhcp_release_command: Sequence[str] | str | None = None,
        *,
        ip_binary: str = "ip",
        resolv_conf: Path = Path("/etc/resolv.conf"),
        timeout: float = 60.0,
    ) -> None:
        self._dhcp_command = dhcp_command or None
        self._dhcp_release_command = dhcp_release_command or None
        self._ip = ip_binary
        self._resolv_conf = resolv_conf
        self._timeout = timeout

    @property
    def dhcp_available(self) -> bool:
        return self._dhcp_command is not None

    def _run(self, argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self._timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"{argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise NetworkError(detail[-1] if detail else f"{argv[0]} exited with {proc.returncode}")
        return proc.stdout

    def _json(self, *args: str) -> list[dict[str, Any]]:
        # Older iproute2 prints nothing rather than "[]" for an empty table.
        out = self._run([self._ip, "-j", *args]).strip()
        data = json.loads(out) if out else []
        return data if isinstance(data, list) else []

    def interfaces(self) -> list[NetInterface]:
        links = self._json("addr", "show")
        gateways: dict[str, list[str]] = {}
        # IPv6 gateways first: Windows lists them before IPv4 ones.
        for family in ("-6", "-4"):
            for route in self._json(family, "route", "show", "table", "main"):
                if route.get("dst") == "default" and route.get("gateway") and route.get("dev"):
                    gateways.setdefault(str(route["dev"]), []).append(str(route["gateway"]))
        result = []
        for link in links:
            name = str(link.get("ifname", ""))
            flags = link.get("flags") or []
            addresses = []
            for info in link.get("addr_info") or []:
                if info.get("family") not in ("inet", "inet6"):
                    continue
                valid = int(info.get("valid_life_time", _FOREVER))
                preferred = int(info.get("preferred_life_time", _FOREVER))
                addresses.append(
                    IpAddress(
                        address=str(info["local"]),
                        prefix_length=int(info.get("prefixlen", 0)),
                        family=4 if info["family"] == "inet" else 6,
                        scope=str(info.get("scope", "global")),
                        dynamic=bool(info.get("dynamic", False)),
                        valid_lifetime=None if valid >= _FOREVER else valid,
                        preferred_lifetime=None if preferred >= _FOREVER else preferred,
                    )
                )
            result.append(
                NetInterface(
                    index=int(link.get("ifindex", 0)),
                    name=name,
                    mac=str(link.get("address", "00:00:00:00:00:00")),
                    admin_up="UP" in flags,
                    carrier="LOWER_UP" in flags,
                    mtu=int(link.get("mtu", 1500)),
                    loopback="LOOPBACK" in flags,
                    addresses=tuple(addresses),
                    gateways=tuple(gateways.get(name, ())),
                )
            )
        return result

    def dns(self) -> DnsConfig:
        servers: list[str] = []
        search: list[str] = []
        with contextlib.suppress(OSError):
            for line in self._resolv_conf.read_text(errors="replace").splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    servers.append(words[1])
                elif words and words[0] in ("search", "domain"):
                    search = words[1:]
        return DnsConfig(tuple(servers), tuple(search))

    def renew_dhcp(self, ifname: str) -> None:
        if self._dhcp_command is None:
            raise NetworkError("The DHCP client is not enabled on this adapter.")
        self._run(_command_for(self._dhcp_command, ifname))

    def release_dhcp(self, ifname: str) -> None:
        if self._dhcp_release_command is not None:
            self._run(_command_for(self._dhcp_release_command, ifname))
            return
        if self._dhcp_command is None:
            raise NetworkError("The DHCP client is not enabled on this adapter.")
        # Without a release command, drop the leased addresses locally; the lease simply expires
        # on the server, which is what happens when a Windows guest is powered off mid-lease.
        self._run([self._ip, "-4", "addr", "flush", "dev", ifname, "dynamic"])

    def set_link(self, ifname: str, up: bool) -> None:
        self._run([self._ip, "link", "set", "dev", ifname, "up" if up else "down"])
