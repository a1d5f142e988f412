"""A guest's namespaces: a named network namespace, plus mount and UTS namespaces.

The mount and UTS namespaces are built by a short shell script run under
``nsenter --net`` + ``unshare --mount --uts``; the script then execs ``sleep
infinity``, the guest's "init", whose only job is to keep the namespaces alive
and give ``nsenter --target`` something to point at (the role vmtoolsd plays
for guest operations: if it is killed, guest operations become unavailable).

The guest's view of the file system (see paths.py): the VM disk and tools
directory are bound into a fresh tmpfs *before* anything is hidden, and that
tmpfs is then moved over /run - so the setup works wherever the state and disk
directories live, even under /tmp, /home or /run which the guest replaces.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import procfs
from .commands import run, tool
from .errors import GuestHostError, GuestOperationsUnavailable
from .paths import DRIVES_ROOT, TOOLS_DIR

_SETUP_TIMEOUT = 10.0

# Arguments: $1 disk dir, $2 tools dir, $3 empty staging dir, $4 hostname, $5 family.
_SETUP_SCRIPT = f"""\
set -eu
disk=$1 tools=$2 stage=$3
printf 'link set lo up\\nlink set eth0 up\\n' | ip -batch -
mount -n -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs "$stage"
mkdir -p "$stage/.disk" "$stage/{TOOLS_DIR.removeprefix("/run/")}" "$stage/sshd" "$stage/.etc/upper" \
    "$stage/.etc/work"
mount -n --bind "$disk" "$stage/.disk"
mount -n --bind "$tools" "$stage/{TOOLS_DIR.removeprefix("/run/")}"
mount -n --move "$stage" /run
mount -n -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -n -t overlay overlay -o lowerdir=/run/.disk/etc:/etc,upperdir=/run/.etc/upper,workdir=/run/.etc/work /etc
mount -n -t overlay overlay -o lowerdir={TOOLS_DIR}/bin:/usr/bin /usr/bin
if [ -d /var/lib/dhcp ]; then mount -n --bind /run/.disk/var/lib/dhcp /var/lib/dhcp; fi
if [ "$5" = windows ]; then
    mount -n --bind /run/.disk/drives {DRIVES_ROOT}
else
    mount -n --bind /run/.disk/home /home
    mount -n --bind /run/.disk/root /root
fi
mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
umount -n /run/.disk
rmdir /run/.disk
printf '%s' "$4" > /proc/sys/kernel/hostname
echo ready
exec sleep infinity </dev/null >/dev/null 2>&1
"""

# The guest's init must not inherit the simulator's environment (guest root can read it).
_INIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_FORBIDDEN_IN_PATHS = (":", ",", "\\", "\n")  # they would break overlayfs mount options


@dataclass(frozen=True)
class GuestView:
    """What the guest's mount namespace is made of."""

    disk_dir: Path
    tools_dir: Path
    staging_dir: Path  # an empty directory, used as a mount point during setup
    hostname: str
    family: str


class GuestNamespace:
    """Creates, enters and destroys one guest's namespaces."""

    def __init__(self, name: str, log_file: Path) -> None:
        self.name = name
        self.netns_path = f"/run/netns/{name}"
        self._log_file = log_file
        self._anchor: subprocess.Popen[bytes] | None = None
        self._inode: int | None = None
        self._created = False

    @property
    def netns_inode(self) -> int | None:
        """Identity of the network namespace: every guest process lives in it."""
        return self._inode

    @property
    def anchor_pid(self) -> int:
        """The guest's init; raises if it is gone (the guest can then not be entered).

        It is reaped only in destroy(), so its pid cannot have been reused meanwhile.
        """
        anchor = self._anchor
        if anchor is None or not procfs.is_alive(anchor.pid):
            raise GuestOperationsUnavailable(f"guest {self.name}: its init process is not running")
        return anchor.pid

    def create_netns(self) -> None:
        if os.path.exists(self.netns_path):
            raise GuestHostError(f"network namespace {self.name} already exists")
        run(["ip", "netns", "add", self.name])
        self._created = True
        self._inode = procfs.ns_inode(self.netns_path)

    def start_init(self, view: GuestView) -> None:
        """Build the mount and UTS namespaces and leave the guest's init running in them."""
        for path in (view.disk_dir, view.tools_dir, view.staging_dir):
            if any(c in str(path) for c in _FORBIDDEN_IN_PATHS):
                raise GuestHostError(f"unsupported character in path {path}")
        view.staging_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            tool("nsenter"), f"--net={self.netns_path}", "--",
            tool("unshare"), "--mount", "--uts", "--propagation", "private", "--",
            "/bin/sh", "-c", _SETUP_SCRIPT, "guest-setup",
            str(view.disk_dir), str(view.tools_dir), str(view.staging_dir), view.hostname, view.family,
        ]  # fmt: skip
        with open(self._log_file, "ab") as log:
            self._anchor = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=_INIT_ENV
            )
        assert self._anchor.stdout is not None
        with self._anchor.stdout, selectors.DefaultSelector() as sel:
            sel.register(self._anchor.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + _SETUP_TIMEOUT
            line = b""
            while not line.endswith(b"\n") and time.monotonic() < deadline:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    chunk = os.read(self._anchor.stdout.fileno(), 64)
                    if not chunk:
                        break
                    line += chunk
        if line != b"ready\n":
            raise GuestHostError(f"guest {self.name}: namespace setup failed: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self._log_file.read_text(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            return "(no output)"

    def enter(self, argv: list[str], uid: int | None = None, gid: int | None = None) -> list[str]:
        """``argv`` prefixed to run inside the guest's namespaces, optionally as another user.

        No fork is added: nsenter and setpriv exec in turn, so the final program
        keeps the pid of the process spawned.
        """
        prefix = [tool("nsenter"), f"--target={self.anchor_pid}", "--mount", "--uts", "--net", "--"]
        if uid is not None:
            prefix += [tool("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
        return prefix + argv

    def pids(self) -> list[int]:
        """All processes of the guest."""
        return procfs.pids_in_netns(self._inode) if self._inode is not None else []

    def destroy(self) -> None:
        """Kill every guest process and delete the network namespace (its veth goes with it).

        Idempotent, and safe after a partial creation.
        """
        if self._inode is not None:
            procfs.kill_netns(self._inode)
        if self._anchor is not None:
            self._anchor.kill()
            self._anchor.wait()
            self._anchor = None
        if self._created and os.path.exists(self.netns_path):
            run(["ip", "netns", "delete", self.name])
        self._created = False
        self._inode = None
