"""A guest's namespaces: a named network namespace, plus PID, IPC, mount and UTS namespaces.

The guest's init is started as pid 1 of a new PID namespace (see pidns.py); it joins
the network namespace with ``nsenter --net``, makes the IPC, mount and UTS namespaces
with ``unshare``, and runs a short shell script that builds the guest's view and then
becomes the init proper (``libexec/init`` in the tools directory, see vmtools/shims.py): pid
1 reaps the orphans the guest's processes leave, keeps the namespaces alive and is
what ``nsenter --target`` and setns point at (the role vmtoolsd plays for guest
operations: if it is gone, guest operations are unavailable). Every other guest
process is started in the PID namespace too, so a guest sees, and can signal, only
its own processes: ``ps``, ``pkill sshd`` and ``kill -9 -1`` as guest root reach
nothing of the host, the simulator or other guests, as in a VM. The kernel drops a
signal the init has no handler for when it comes from inside the guest, and when
the init dies, the kernel kills every process of the guest.

The guest's root is a copy-on-write view of the host's: an overlay whose lower
layer is the host's / and whose upper layer is on the VM disk (see disk.py), made
the root of the mount namespace with pivot_root - so whatever the guest writes
(package installs, /usr/local, /opt, /var, new top-level directories) lands on its
disk, never on the host. /etc, and every directory file system the host mounts
below / (which an overlay of / cannot show), get overlays of their own with
uppers on the disk. /proc is the guest's own (its PID namespace's processes),
/sys the guest network's (read-only), /dev the host's with the guest's own
/dev/pts (pseudo-terminals) and /dev/mqueue (POSIX message queues); /run, /tmp
and /dev/shm are private tmpfs; /home, /root, /var/lib/dhcp and a Windows guest's
drives are bound from the disk (see paths.py). Everything is mounted while the
host's paths are still reachable, so it works wherever the state and disk
directories live. Nothing is mounted in the host's namespace: the mounts go away
with the guest's last process.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GuestHostError, GuestOperationsUnavailable
from ..paths import DRIVES_ROOT, GUEST_INIT, TOOLS_DIR
from . import pidns, procfs
from .host_tools import run, tool

_SETUP_TIMEOUT = 10.0
#: How long destroy() waits for the dead init to be reaped.
_REAP_TIMEOUT = 5.0
#: The guest's init, as the guest sees it.
INIT_PID = 1

# Arguments: $1 disk dir, $2 tools dir, $3 empty directory (the new root's mount point),
# $4 hostname, $5 family, then per overlay: mount point, upper dir, work dir ("/" first).
_SETUP_SCRIPT = f"""\
set -eu
disk=$1 tools=$2 root=$3
hostname=$4 family=$5
shift 5
# cow TARGET LOWER UPPER WORK: a copy-on-write view of LOWER at TARGET, changes going to UPPER.
# If UPPER's file system cannot be an overlay's upper layer (e.g. it is an overlay itself),
# the changes go to a tmpfs and are lost at power-off - but never to the host.
cow() {{
    mount -n -t overlay overlay -o "lowerdir=$2,upperdir=$3,workdir=$4" "$1" 2>/dev/null && return 0
    echo "guest-setup: $3 cannot be an overlay upper layer: changes to $1 will not persist" >&2
    mount -n -t tmpfs -o mode=0755 tmpfs "$1" && mkdir "$1/.upper" "$1/.work" || return 1
    chmod --reference="$2" "$1/.upper" && chown --reference="$2" "$1/.upper" || return 1
    mount -n -t overlay overlay -o "lowerdir=$3:$2,upperdir=$1/.upper,workdir=$1/.work" "$1" 2>/dev/null ||
        mount -n -t overlay overlay -o "lowerdir=$2,upperdir=$1/.upper,workdir=$1/.work" "$1"
}}
# In a user namespace (a run without root, see simulator/userns.py) the host's mounts are locked
# together (mount_namespaces(7)) and an overlay cannot take / as a lower layer while mounts lie below
# it: there the root is a tmpfs holding an overlay of each top-level directory, uppers on the same
# disk layer. A directory with mounts below it shows only those (the loop's own overlays).
split_root() {{
    target=$1 upper=$2 work=$3
    mount -n -t tmpfs -o mode=0755 tmpfs "$target"
    # Directories programs write to, made the VM disk's own (its root's) on a fresh disk: the host's
    # copies belong to an id the namespace cannot map, so the guest could not create files in them.
    set --
    for dir in usr/local usr/local/bin usr/local/sbin usr/local/lib usr/local/share usr/local/etc usr/local/src \\
            var/lib var/log var/cache var/spool var/opt var/backups; do
        if [ -d "/$dir" ] && [ ! -L "/$dir" ] && [ ! -e "$upper/$dir" ] && [ ! -L "$upper/$dir" ]; then
            set -- "$@" "$upper/$dir"
        fi
    done
    # Few forks: this runs at every boot. One mkdir for every directory, chmod only where not 0755.
    fresh=" " overlays=" "
    for entry in /*; do
        name=${{entry#/}}
        if [ -L "$entry" ]; then cp -P "$entry" "$target/$name"; continue; fi
        [ -d "$entry" ] || continue
        set -- "$@" "$target/$name"
        case $name in proc | sys | dev | run | tmp | etc) continue ;; esac
        [ -e "$upper/$name" ] || [ -L "$upper/$name" ] || fresh="$fresh$name "
        overlays="$overlays$name "
        set -- "$@" "$upper/$name" "$work/$name"
    done
    mkdir -p -m 0755 "$@"
    if [ -d /var/tmp ] && [ ! -e "$upper/var/tmp" ] && [ ! -L "$upper/var/tmp" ]; then
        mkdir -p -m 1777 "$upper/var/tmp"
    fi
    stat -c '%a %n' /* | while read -r mode entry; do
        name=${{entry#/}}
        if [ "$mode" = 755 ] || [ -L "$entry" ] || [ ! -d "$entry" ]; then continue; fi
        chmod "$mode" "$target/$name"
        case $fresh in *" $name "*) chmod "$mode" "$upper/$name" ;; esac
    done
    for name in $overlays; do
        mount -n -t overlay overlay -o "lowerdir=/$name,upperdir=$upper/$name,workdir=$work/$name" "$target/$name" \\
            2>/dev/null || echo "guest-setup: /$name shows only the mounts below it" >&2
    done
}}
read -r _ _ ids < /proc/self/uid_map
rootless=; [ "$ids" = 4294967295 ] || rootless=1
printf 'link set lo up\\nlink set eth0 up\\n' | ip -batch -
while [ $# -ge 3 ]; do
    case $1 in
        /) if [ -z "$rootless" ]; then cow "$root" / "$2" "$3"; else split_root "$root" "$2" "$3"; fi ;;
        /etc) cow "$root$1" "$1" "$2" "$3" ;;
        *) {{ [ -d "$root$1" ] || {{ [ -n "$rootless" ] && mkdir -p "$root$1"; }}; }} &&
            cow "$root$1" "$1" "$2" "$3" || echo "guest-setup: $1 hidden" >&2 ;;
    esac
    shift 3
done
[ -e "$root/usr/bin/vmtoolsd" ] || cp "$tools/bin/vmtoolsd" "$tools/bin/vmware-rpctool" "$root/usr/bin/"
mount -n -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs "$root/run"
mkdir "$root{TOOLS_DIR}" "$root/run/sshd"
mount -n --bind "$tools" "$root{TOOLS_DIR}"
# This shell is pid 1 of the guest's PID namespace: a proc mounted here lists the guest's processes only.
mount -n -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -n -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -n --rbind /dev "$root/dev"
if [ -d "$root/dev/shm" ]; then mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"; fi
# The guest's own pseudo-terminals (not the host's sessions) and POSIX message queues (its IPC namespace's).
if [ -d "$root/dev/pts" ]; then
    mount -n -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
    mount -n --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
fi
if [ -d "$root/dev/mqueue" ]; then mount -n -t mqueue -o nosuid,nodev,noexec mqueue "$root/dev/mqueue"; fi
mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
if [ -d "$root/var/lib/dhcp" ]; then mount -n --bind "$disk/var/lib/dhcp" "$root/var/lib/dhcp"; fi
if [ "$family" = windows ]; then
    mount -n --bind "$disk/drives" "$root{DRIVES_ROOT}"
else
    mount -n --bind "$disk/home" "$root/home"
    mount -n --bind "$disk/root" "$root/root"
fi
# Host directories the guest's own programs need but would not see (a Python under /tmp or /home
# running a Windows guest's WinRM server): shown read-only at the same paths.
printf '%s\n' "${{PVCS_HOST_BINDS:-}}" | while IFS= read -r path; do
    [ -n "$path" ] && [ -d "$path" ] || continue
    {{ mkdir -p "$root$path" && mount -n --bind "$path" "$root$path" && mount -n -o remount,bind,ro "$root$path"; }} ||
        echo "guest-setup: cannot show $path" >&2
done
cd "$root"
pivot_root . .
umount -n -l /
cd /
# In a user namespace /proc/sys/kernel/hostname belongs to the host's root; sethostname(2) still works.
{{ printf '%s' "$hostname" > /proc/sys/kernel/hostname; }} 2>/dev/null || hostname "$hostname"
echo ready
exec /bin/sh {GUEST_INIT} </dev/null >/dev/null 2>&1
"""

# Host mounts the guest does not see through an overlay: replaced, or from the VM disk.
_REPLACED = ("/proc", "/sys", "/dev", "/run", "/tmp", "/etc")
_FAMILY_REPLACED = {"linux": ("/home", "/root"), "windows": (DRIVES_ROOT,)}
# Pseudo file systems: nothing to copy-on-write (and an overlay of them makes no sense).
_PSEUDO_FS = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "nsfs", "autofs", "binfmt_misc", "securityfs",
        "debugfs", "tracefs", "bpf", "mqueue", "hugetlbfs", "configfs", "fusectl", "pstore", "efivarfs", "rpc_pipefs",
    }
)  # fmt: skip
# The guest's init must not inherit the simulator's environment (guest root can read it).
_INIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_FORBIDDEN_IN_PATHS = (":", ",", "\\", "\n")  # they would break overlayfs mount options


def _unescape(text: str) -> str:
    """A /proc/self/mountinfo field: octal escapes (\\040 for a space) decoded."""
    out, i = bytearray(), 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1 : i + 4].isdigit() and len(raw[i + 1 : i + 4]) == 3:
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def host_submounts(family: str, mountinfo: str | None = None) -> list[str]:
    """Directories where the host mounts a real file system below / that a guest must see.

    The overlay of / shows only the root file system: each of these gets an overlay of
    its own. Pseudo file systems, places the guest replaces, and file mounts are left out
    (the guest then sees the directory or file underneath, on the root file system).
    """
    if mountinfo is None:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            mountinfo = f.read()
    excluded = _REPLACED + _FAMILY_REPLACED.get(family, ())
    found: dict[str, str] = {}
    for line in mountinfo.splitlines():
        fields, sep, rest = line.partition(" - ")
        parts = fields.split()
        if not sep or len(parts) < 5 or not rest.split():
            continue
        found[_unescape(parts[4])] = rest.split()[0]  # a later mount at the same place hides earlier ones
    return sorted(
        mp
        for mp, fstype in found.items()
        if mp != "/"
        and fstype not in _PSEUDO_FS
        and not _under(mp, excluded)
        and not any(c in mp for c in _FORBIDDEN_IN_PATHS)
        and os.path.isdir(mp)
        and not os.path.islink(mp)
    )


@dataclass(frozen=True)
class GuestView:
    """What the guest's mount namespace is made of."""

    disk_dir: Path
    tools_dir: Path
    staging_dir: Path  # an empty directory, the new root's mount point during setup
    hostname: str
    family: str
    # (mount point, upper dir, work dir) per overlay: "/" first, then "/etc", then host submounts.
    overlays: tuple[tuple[str, Path, Path], ...] = field(default=())
    #: Host directories shown read-only at the same path (the guest would not see them otherwise).
    host_binds: tuple[str, ...] = ()


class GuestNamespace:
    """Creates, enters and destroys one guest's namespaces.

    Pids are host pids unless a name says "guest pid": the pid a process has in the
    guest, which is what the guest's ``ps`` and Guest Operations report.
    """

    def __init__(self, name: str, log_file: Path) -> None:
        self.name = name
        self.netns_path = f"/run/netns/{name}"
        self._log_file = log_file
        self._anchor: subprocess.Popen[bytes] | None = None
        self._inode: int | None = None
        self._pid_inode: int | None = None
        self._created = False

    @property
    def netns_inode(self) -> int | None:
        """Identity of the network namespace."""
        return self._inode

    @property
    def anchor_pid(self) -> int:
        """Host pid of the guest's init; raises if it is gone (the guest can then not be entered).

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
        """Build the PID, IPC, mount and UTS namespaces and leave the guest's init running in them."""
        paths = [view.disk_dir, view.tools_dir, view.staging_dir, *map(Path, view.host_binds)]
        paths += [p for _, upper, work in view.overlays for p in (upper, work)]
        for path in paths:
            if any(c in str(path) for c in _FORBIDDEN_IN_PATHS):
                raise GuestHostError(f"unsupported character in path {path}")
        view.staging_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            tool("nsenter"), f"--net={self.netns_path}", "--",
            tool("unshare"), "--mount", "--uts", "--ipc", "--propagation", "private", "--",
            "/bin/sh", "-c", _SETUP_SCRIPT, "guest-setup",
            str(view.disk_dir), str(view.tools_dir), str(view.staging_dir), view.hostname, view.family,
            *(str(item) for overlay in view.overlays for item in overlay),
        ]  # fmt: skip
        with open(self._log_file, "ab") as log:
            self._anchor = pidns.spawn(
                argv, None, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env={**_INIT_ENV, "PVCS_HOST_BINDS": "\n".join(view.host_binds)},
                # A session of its own, like every guest process: never in the simulator's process
                # group. When the shell that started the simulator exits, the kernel sends SIGHUP,
                # then SIGCONT, to the stopped members of a process group it orphans (POSIX _exit());
                # a frozen guest's are all stopped, and SIGCONT would resume even an init.
                start_new_session=True,
            )  # fmt: skip
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
        self._pid_inode = procfs.ns_inode(f"/proc/{self._anchor.pid}/ns/pid")

    def _log_tail(self) -> str:
        try:
            return self._log_file.read_text(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            return "(no output)"

    def enter(self, argv: list[str], uid: int | None = None, gid: int | None = None) -> list[str]:
        """``argv`` prefixed to run in the guest's network, IPC, mount and UTS namespaces, optionally as another user.

        Run as is, the program stays in the host's PID namespace, unseen by the guest:
        for the simulator's own short queries. Guest processes are started with spawn().
        No fork is added: nsenter and setpriv exec in turn, so the final program keeps
        the pid of the process spawned.
        """
        prefix = [tool("nsenter"), f"--target={self.anchor_pid}", "--mount", "--uts", "--ipc", "--net", "--"]
        if uid is not None:
            prefix += [tool("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
        return prefix + argv

    def spawn(
        self, argv: list[str], uid: int | None = None, gid: int | None = None, **popen_kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """Start a guest process: ``argv`` in all of the guest's namespaces, a child of the simulator.

        The caller must reap it (``wait``) before destroy(): the kernel holds a dead
        init in exit until every process of its namespace has been reaped.
        """
        init = self.anchor_pid
        try:
            return pidns.spawn(self.enter(argv, uid, gid), f"/proc/{init}/ns/pid", **popen_kwargs)
        except OSError as exc:
            if not procfs.is_alive(init):  # the namespace is dying: fork fails with ENOMEM
                raise GuestOperationsUnavailable(f"guest {self.name}: its init process is not running") from exc
            raise

    def pids(self) -> list[int]:
        """Host pids of all processes of the guest."""
        return procfs.pids_in_namespace("pid", self._pid_inode) if self._pid_inode is not None else []

    def guest_pid(self, pid: int) -> int | None:
        """The guest pid of the guest process with host pid ``pid`` (None if it is gone)."""
        return procfs.own_ns_pid(pid)

    def host_pid(self, guest_pid: int) -> int | None:
        """The host pid of the guest's process ``guest_pid``, or None if the guest has no such process."""
        for pid in self.pids():
            if procfs.own_ns_pid(pid) == guest_pid:
                return pid
        return None

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every process of the guest, its init included."""
        if self._pid_inode is not None:
            procfs.signal_namespace("pid", self._pid_inode, sig)

    def stop_all(self) -> None:
        """SIGSTOP every process of the guest (a paused VM), until all are stopped."""
        if self._pid_inode is not None:
            procfs.stop_namespace("pid", self._pid_inode)

    def kill(self) -> None:
        """SIGKILL every process of the guest; returns when none runs (the simulator's children may be zombies).

        The init's death alone makes the kernel kill the rest of the PID namespace; the
        network namespace is swept too, for what the simulator ran in it alone.
        """
        if self._pid_inode is not None:
            procfs.kill_namespace("pid", self._pid_inode)
        if self._anchor is not None and self._anchor.returncode is None:
            self._anchor.kill()
        if self._inode is not None:
            procfs.kill_netns(self._inode)

    def destroy(self) -> None:
        """Kill every guest process, reap the init and delete the network namespace (its veth goes with it).

        Reap the guest processes spawn() started first: until they are, the kernel holds
        the dead init in exit. Idempotent, and safe after a partial creation.
        """
        self.kill()
        held = False
        if self._anchor is not None:
            try:
                self._anchor.wait(_REAP_TIMEOUT)
                self._anchor = None
            except subprocess.TimeoutExpired:
                held = True
        if self._created and os.path.exists(self.netns_path):
            run(["ip", "netns", "delete", self.name])
        self._created = False
        self._inode = None
        self._pid_inode = None
        if held:
            raise GuestHostError(
                f"guest {self.name}: its init did not exit within {_REAP_TIMEOUT} s: a process started in the "
                "guest by the simulator has not been reaped"
            )


#: Where the guest sees its own files, not the host's.
_PRIVATE_IN_GUEST = ("/tmp/", "/run/", "/dev/shm/", "/home/", "/root/")


def python_host_binds() -> tuple[str, ...]:
    """The host directories this Python (interpreter, venv, this package) needs, where a guest would miss them.

    Windows guests run the simulator's WinRM server and cmd shell with this very interpreter.
    """
    import sys

    import pytest_vsphere_clone

    candidates = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
                  str(Path(pytest_vsphere_clone.__file__).resolve().parents[1])}
    wanted = sorted(p for p in candidates if os.path.isdir(p) and p.startswith(_PRIVATE_IN_GUEST))
    # A directory inside another one already shown needs no mount of its own.
    return tuple(p for p in wanted if not any(p != q and p.startswith(q + "/") for q in wanted))
