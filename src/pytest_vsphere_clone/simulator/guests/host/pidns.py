"""Starting a process in a guest's PID namespace, as a direct child of the simulator.

unshare(CLONE_NEWPID) and setns(CLONE_NEWPID) do not move the caller: they choose
the PID namespace of the calling thread's *next children* (pid_namespaces(7)). A
throw-away thread therefore switches, forks the process and ends, so no other
thread of the simulator is affected and nothing needs switching back.

Being the simulator's own child (rather than a ``nsenter --pid`` wrapper's, which
forks and waits) keeps ``Popen.pid``, exit status and reaping exactly as for any
other subprocess, and leaves nothing outside the guest to freeze or to stop: a
wrapper stops itself whenever its child stops (util-linux nsenter waits with
WUNTRACED), which a frozen guest's processes all do.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from functools import cache
from typing import Any

from .host_tools import start_retrying_efault

_CLONE_NEWPID = 0x20000000
#: Host CPUs a guest's processes run on, by the inode of its PID namespace (guests/host/hardware_view.py
#: sets it for a VM with fewer CPUs than the host). sched_setaffinity(2) is per thread and fork(2)
#: children inherit the forking thread's mask: the switching thread takes it, so the process does from
#: its first instruction (``nproc`` through Guest Operations counts the VM's CPUs).
_AFFINITY: dict[int, set[int]] = {}


def set_affinity(pidns_inode: int, cpus: set[int] | None) -> None:
    """Run the processes started later in PID namespace ``pidns_inode`` on ``cpus`` (None: any CPU)."""
    if cpus is None:
        _AFFINITY.pop(pidns_inode, None)
    else:
        _AFFINITY[pidns_inode] = set(cpus)


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def spawn(argv: list[str], pidns: str | None, **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen_kwargs)`` with the child in a guest's PID namespace.

    ``pidns`` is a namespace file (/proc/PID/ns/pid) to join; None makes the child
    the init (pid 1) of a new PID namespace - when it dies, the kernel kills every
    other process of that namespace.
    """
    procs: list[subprocess.Popen[bytes]] = []
    errors: list[BaseException] = []

    def fork() -> None:
        try:
            if pidns is None:
                _check(_libc().unshare(_CLONE_NEWPID), "unshare(CLONE_NEWPID)")
            else:
                fd = os.open(pidns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _check(_libc().setns(fd, _CLONE_NEWPID), f"setns({pidns})")
                    cpus = _AFFINITY.get(os.fstat(fd).st_ino)
                    if cpus:
                        os.sched_setaffinity(0, cpus)  # this thread's: the child inherits it
                finally:
                    os.close(fd)
            procs.append(start_retrying_efault(lambda: subprocess.Popen(argv, **popen_kwargs)))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=fork, name="pvcs-pidns")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return procs[0]
