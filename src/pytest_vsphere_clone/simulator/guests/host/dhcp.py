"""The DHCP server of a guest bridge: a private dnsmasq, DHCP only."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

from ..errors import GuestHostError
from .host_tools import tool

_START_TIMEOUT = 5.0


class DhcpServer:
    """dnsmasq serving one bridge, with its own lease, pid and log files.

    Leases are keyed as a real DHCP server keys them (RFC 2131 section 4.2: "the combination of
    'client identifier' or 'chaddr' and assigned network address constitute a unique identifier for
    the client's lease"): by the client identifier when the client sends one, else by MAC. A clone
    - a new MAC - gets a new address, while a power-cycled VM keeps its own; but clones that send
    their template's identifier (systemd-networkd's, from a machine-id they share: see
    os_image.py) get the same lease, as on a real network.
    """

    def __init__(self, bridge: str, subnet: ipaddress.IPv4Network, run_dir: Path, lease_time: int) -> None:
        self.bridge = bridge
        self.subnet = subnet
        self.lease_file = run_dir / "dnsmasq.leases"
        self.pid_file = run_dir / "dnsmasq.pid"
        self.log_file = run_dir / "dnsmasq.log"
        self.stderr_file = run_dir / "dnsmasq.stderr"  # startup errors, before the log file is open
        self.lease_time = max(lease_time, 120)  # dnsmasq's minimum
        self._proc: subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        hosts = list(self.subnet.hosts())
        first, last = hosts[9], hosts[-5]  # .10 - .250: leaves room for fixed addresses
        return [
            tool("dnsmasq"),
            "--conf-file=/dev/null",  # ignore the host's /etc/dnsmasq.conf
            "--keep-in-foreground",
            "--port=0",  # no DNS: DHCP only
            "--no-ping",  # the default ping-before-offer costs ~3 s per lease
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",  # SO_BINDTODEVICE: lets several instances share port 67
            f"--interface={self.bridge}",
            "--except-interface=lo",
            "--dhcp-authoritative",  # NAK stale requests (e.g. a clone asking for its source's address)
            f"--dhcp-range={first},{last},{self.subnet.netmask},{self.lease_time}",
            f"--dhcp-leasefile={self.lease_file}",
            f"--pid-file={self.pid_file}",
            f"--log-facility={self.log_file}",
            "--user=root",  # the lease file lives in a directory only root may enter
        ]

    def start(self) -> None:
        """Start dnsmasq and wait until it has bound its sockets (it writes the pid file after that)."""
        self.pid_file.unlink(missing_ok=True)
        with open(self.stderr_file, "wb") as stderr:
            self._proc = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self.pid_file.exists():
            if self._proc.poll() is not None:
                err = self.stderr_file.read_text(errors="replace")
                raise GuestHostError(f"dnsmasq on {self.bridge} failed to start: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise GuestHostError(f"dnsmasq on {self.bridge} did not start within {_START_TIMEOUT} s")
            time.sleep(0.002)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def leases(self) -> dict[str, str]:
        """Current leases as MAC -> IPv4 address."""
        try:
            lines = self.lease_file.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return {fields[1]: fields[2] for fields in (line.split() for line in lines) if len(fields) >= 3}

    def stop(self) -> None:
        """Stop dnsmasq and remove its files."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        for path in (self.lease_file, self.pid_file, self.log_file, self.stderr_file):
            path.unlink(missing_ok=True)
