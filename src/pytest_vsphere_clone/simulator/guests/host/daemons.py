"""The guest OS services the runtime starts: sshd, the DHCP client, the WinRM server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest_vsphere_clone

from ..errors import GuestHostError
from ..paths import DHCP_RENEW, DRIVES_ROOT, TOOLS_DIR, WINRM_ACCOUNTS
from ..windows.winrm.accounts import ACCOUNT_FILE_ENV, write_account_file
from .host_tools import tool
from .namespace import GuestNamespace

WINRM_MODULE = "pytest_vsphere_clone.simulator.guests.windows.winrm.server"
# The directory holding pytest_vsphere_clone/ (named from the package, not this file's depth in it).
PACKAGE_ROOT = Path(pytest_vsphere_clone.__file__).resolve().parents[1]
_TCP_LISTEN = "0A"
# What init would give a service: nothing inherited from the simulator's environment.
SERVICE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the package's own Python programs run in a guest (it may not be installed)."""
    env = {**SERVICE_ENV, **(extra or {})}
    env["PYTHONPATH"] = str(PACKAGE_ROOT)
    return env


def _spawn(ns: GuestNamespace, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        # A session of its own, as init would give a service (and never in the simulator's process group).
        return ns.spawn(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True)


def start_sshd(ns: GuestNamespace, log: Path) -> subprocess.Popen[bytes]:
    """sshd in the foreground, with the guest's own config and host keys (from its /etc)."""
    # An absolute path: sshd re-executes itself per connection.
    return _spawn(ns, [tool("sshd"), "-D", "-e", "-f", "/etc/ssh/sshd_config"], log, SERVICE_ENV)


def start_dhclient(ns: GuestNamespace, log: Path, delay: float = 0.0) -> subprocess.Popen[bytes]:
    """dhclient for eth0, as Debian's ifupdown runs it; its default script acts on the guest's
    private /etc, /run and /var/lib/dhcp only. -d keeps it our child, so it is reaped cleanly.
    ``delay`` seconds pass first (the guest OS still bringing its network up)."""
    argv = [
        tool("dhclient"), "-4", "-d",
        "-pf", "/run/dhclient.eth0.pid",
        "-lf", "/var/lib/dhcp/dhclient.eth0.leases",
        "eth0",
    ]  # fmt: skip
    if delay > 0:
        # exec keeps the process (and so its reaping and teardown) the same once dhclient runs.
        argv = ["/bin/sh", "-c", f'sleep {delay:.3f}; exec "$@"', "dhclient", *argv]
    return _spawn(ns, argv, log, SERVICE_ENV)


def windows_context_args(user: str, hostname: str, powershell_start: tuple[float, float] = (0.0, 0.0)) -> list[str]:
    """Who and where the emulated Windows is: options the Windows programs share.

    (windows/cmd/cli.py and windows/winrm/server.py; see windows/context.py.)
    """
    return [
        "--user", user,
        "--hostname", hostname,
        "--disk-root", DRIVES_ROOT,
        # "ipconfig /renew" restarts the guest's DHCP client (and so resets a stale clone's NIC).
        "--dhcp-command", f"{DHCP_RENEW} {{interface}}",
        "--powershell-start", f"{powershell_start[0]:g},{powershell_start[1]:g}",
    ]  # fmt: skip


def start_winrm(
    ns: GuestNamespace, log: Path, tools_dir: Path, port: int, user: str, password: str, hostname: str,
    powershell_start: tuple[float, float] = (0.0, 0.0),
) -> subprocess.Popen[bytes]:
    """The WinRM server standing in for a Windows guest's remote management.

    Its account file (the user's NT hash, never the password) is written to the guest's tools
    directory (``tools_dir`` on the host, TOOLS_DIR in the guest), which is new at every boot, and
    named by ``NTLM_USER_FILE`` in the server's environment: see windows/winrm/accounts.py.
    """
    accounts = tools_dir / os.path.relpath(WINRM_ACCOUNTS, TOOLS_DIR)
    accounts.parent.mkdir(mode=0o700)
    write_account_file(accounts, user, password, hostname)
    argv = [
        sys.executable, "-m", WINRM_MODULE, "--port", str(port), "--bind", "0.0.0.0",
        *windows_context_args(user, hostname, powershell_start),
    ]  # fmt: skip
    return _spawn(ns, argv, log, python_env({ACCOUNT_FILE_ENV: WINRM_ACCOUNTS}))


def _listening(pid: int, port: int) -> bool:
    """True if a TCP socket listens on ``port`` in the network namespace of ``pid``."""
    suffix = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(suffix) and fields[3] == _TCP_LISTEN:
                        return True
        except (FileNotFoundError, ProcessLookupError):
            return False
    return False


def wait_listening(proc: subprocess.Popen[bytes], port: int, what: str, log: Path, timeout: float) -> None:
    """Wait until ``proc`` (or a sibling in its namespace) listens on ``port``; raise if it dies first."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not _listening(proc.pid, port):
        if proc.poll() is not None:
            raise GuestHostError(f"{what} exited with status {proc.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise GuestHostError(f"{what} is not listening on port {port} after {timeout} s: {_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"
