"""The simulated VMware Tools installed in every guest's tools directory.

``bin/vmtoolsd --cmd "<rpc>"`` and ``bin/vmware-rpctool "<rpc>"`` (installed in
the guest's /usr/bin on the VM disk at each boot) send the RPC over the guest's backdoor socket -
the stand-in for the VMware backdoor port - and print the reply; a failed RPC exits
1 with the error on stderr, like the real tools. ``libexec/dhcp-renew`` restarts the
guest's DHCP client (the Windows emulation's ``ipconfig /renew``); ``libexec/init`` is
the guest's pid 1.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from ..paths import BACKDOOR_SOCKET, DHCP_RENEW, GUEST_INIT

SHIM_NAMES = ("vmtoolsd", "vmware-rpctool")

_SHIM_SOURCE = '''\
#!{python} -IS
"""Simulated VMware Tools ({name}): sends an RPC to the virtual machine's backdoor."""
import os
import socket
import sys


def rpc(command):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect({socket_path!r})
        sock.sendall(command.encode())
        sock.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    if not reply:
        return False, "the virtual machine closed the RPC channel"
    return reply[:1] == b"1", reply[1:].decode(errors="replace")


def main(argv):
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name == "vmtoolsd":
        if len(args) == 2 and args[0] == "--cmd":
            command = args[1]
        elif len(args) == 1 and args[0].startswith("--cmd="):
            command = args[0][len("--cmd="):]
        else:
            print("usage: vmtoolsd --cmd <command> (the simulated vmtoolsd runs no service)", file=sys.stderr)
            return 1
    elif len(args) == 1:
        command = args[0]
    else:
        print("usage: vmware-rpctool <command>", file=sys.stderr)
        return 1
    try:
        ok, text = rpc(command)
    except OSError as exc:
        print(f"{{name}}: cannot reach the virtual machine: {{exc}}", file=sys.stderr)
        return 1
    if not ok:
        print(text, file=sys.stderr)
        return 1
    if text:
        print(text)
    return 0


sys.exit(main(sys.argv))
'''


# Stops the interface's running client (as ifdown would), then gets a lease anew.
_DHCP_RENEW_SOURCE = """\
#!/bin/sh
iface=${1:-eth0}
dhclient -x -pf /run/dhclient.$iface.pid "$iface" 2>/dev/null || :
exec dhclient -1 -4 -pf /run/dhclient.$iface.pid -lf /var/lib/dhcp/dhclient.$iface.leases "$iface"
"""


# pid 1 of the guest's PID namespace. Orphans are reparented to it: its ``wait`` reaps them
# (the shell waits for any child, not only its own job). Signals from inside the guest that
# it has no handler for never reach it (pid_namespaces(7)): it outlives ``kill -9 -1``.
_INIT_SOURCE = """\
#!/bin/sh
while :; do
    sleep 2147483647 &
    wait
done
"""


def _world_executable(path: str) -> bool:
    """True if any user can execute ``path`` (o+x on the file and every parent directory)."""
    real = os.path.realpath(path)
    try:
        if not os.stat(real).st_mode & stat.S_IXOTH:
            return False
        return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in Path(real).parents)
    except OSError:
        return False


def guest_python() -> str:
    """An interpreter every guest user can run, outside the directories a guest replaces."""
    hidden = ("/root/", "/home/", "/tmp/", "/run/")
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        real = os.path.realpath(candidate)
        if _world_executable(real) and not real.startswith(hidden):
            return real
    return sys.executable  # works for root only if it is not under a replaced directory


def install(tools_dir: Path) -> None:
    """Populate a guest's tools directory (mounted at paths.TOOLS_DIR in the guest)."""
    python = guest_python()
    for sub in ("bin", "libexec", "exit"):
        (tools_dir / sub).mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in SHIM_NAMES:
        _write_executable(
            tools_dir / "bin" / name, _SHIM_SOURCE.format(python=python, name=name, socket_path=BACKDOOR_SOCKET)
        )
    _write_executable(tools_dir / "libexec" / Path(DHCP_RENEW).name, _DHCP_RENEW_SOURCE)
    _write_executable(tools_dir / "libexec" / Path(GUEST_INIT).name, _INIT_SOURCE)


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)
