"""A real sshd for the conformance tier's clones to "run": the machine behind every vcsim VM's address.

vcsim's VMs run nothing, so the tier gives them one guest to answer for all of them: an OpenSSH
server on addresses of its own. They are not loopback ones, because the plugin (rightly) never
takes a loopback address as a guest's: they live on a veth pair of this machine (one end holds
them, the other only gives the link a carrier), in 198.18.0.0/15 (RFC 2544's benchmarking range,
routed nowhere), so no packet leaves the host.

There is a pool of :data:`POOL_SIZE` addresses, not one, because clones that live at the same
time must have addresses of their own, as a DHCP server gives each VM its own lease: the plugin
refuses a clone whose address another live clone of its run has (plugin/shared_address.py), and
the Tools player (vcsim_tools.py) hands each clone a free address of the pool.

The guest account is key-only (root with a temporary key, no password): the case of a user
without Guest Operations that the plugin must still reach over SSH. The interface is named
after the owning pid, so a start removes what a killed run left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Interfaces of this module: ``pvcc<pid>`` (holds the address) and its veth peer ``pvcp<pid>``.
IFACE_PREFIX = "pvcc"
PEER_PREFIX = "pvcp"
_NETWORK = ipaddress.ip_network("198.18.0.0/15")
#: Addresses of one guest: more than the clones any test has alive at once (two: one per xdist worker).
POOL_SIZE = 8
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the process that started it dies (even by SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class SshdGuest:
    """Where the guest's sshd answers (each of ``addresses``, one ``port``) and how to log in (user
    ``root``, key file ``key``)."""

    addresses: tuple[str, ...]
    port: int
    user: str
    key: Path
    host_key_line: str


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], check=True, capture_output=True, text=True).stdout
    return re.findall(r"^\d+: ([^:@\s]+)", out, re.MULTILINE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_interfaces() -> None:
    """Delete interfaces whose owning process is gone (a killed test run's; the peer goes with them)."""
    for name in _links():
        if name.startswith(IFACE_PREFIX) and name[len(IFACE_PREFIX):].isdigit() \
                and not _alive(int(name[len(IFACE_PREFIX):])):
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _addresses_for(pid: int) -> tuple[str, ...]:
    # A block of POOL_SIZE per pid, clear of the network's first and last addresses: two sessions on
    # one machine never share an address.
    blocks = (_NETWORK.num_addresses - 4) // POOL_SIZE
    first = _NETWORK.network_address + 2 + (pid % blocks) * POOL_SIZE
    return tuple(str(first + i) for i in range(POOL_SIZE))


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _wait_listening(address: str, port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: "
                               f"{process.stderr.read().decode(errors='replace') if process.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not listen on {address}:{port} within {timeout:.0f} s")
        time.sleep(0.05)


@contextlib.contextmanager
def sshd_guest(workdir: Path) -> Iterator[SshdGuest]:
    """Run sshd on a fresh veth pair's addresses until the block ends; remove both after."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists() or os.geteuid() != 0:
        raise RuntimeError("the conformance tier runs a real sshd on its own address: run as root after .ci/setup "
                           "(openssh-server)")
    sweep_dead_interfaces()
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "ssh_host_ed25519_key", workdir / "client_key"
    for path in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    (workdir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    # sshd refuses to start without its privilege separation directory (the package creates it at boot).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    iface = f"{IFACE_PREFIX}{os.getpid()}"
    addresses = _addresses_for(os.getpid())
    peer = f"{PEER_PREFIX}{os.getpid()}"
    subprocess.run(["ip", "link", "add", iface, "type", "veth", "peer", "name", peer], check=True,
                   capture_output=True)
    process: subprocess.Popen[bytes] | None = None
    try:
        for address in addresses:
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", iface], check=True, capture_output=True)
        for name in (peer, iface):
            subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
        port = _free_port(addresses[0])  # the addresses are new: a port free on one is free on all
        config = workdir / "sshd_config"
        config.write_text("\n".join([
            *(f"ListenAddress {address}:{port}" for address in addresses),
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "PidFile none",
            "AllowUsers root",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the key files live in a pytest temp directory
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ]))
        process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        for address in addresses:
            _wait_listening(address, port, process)
        host_key_line = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        yield SshdGuest(addresses, port, "root", client_key, host_key_line)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
        subprocess.run(["ip", "link", "del", iface], check=False, capture_output=True)
