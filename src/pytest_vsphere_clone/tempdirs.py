"""Temporary directories that a later process can clean up when their owner was killed.

Each directory made here holds an ``owner`` file with the creating process's pid and
host; ``sweep_orphans`` removes those whose owner on this machine is gone (a SIGKILLed
run or simulator cannot remove its own).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

OWNER_FILE = "owner"
#: A directory without an owner file yet may be in the middle of being made: leave young ones alone.
_GRACE_SECONDS = 60.0


def make_owned_tempdir(prefix: str) -> Path:
    """A new directory under the system temp dir, marked with this process as its owner."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(f"{os.getpid()} {socket.gethostname()} {_pid_namespace('self')}\n")
    return path


def _owner_alive(path: Path) -> bool:
    try:
        pid_text, host, *pidns = (path / OWNER_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return time.time() - path.stat().st_mtime < _GRACE_SECONDS
    if host != socket.gethostname():
        return True  # a shared temp dir: not ours to judge
    if pidns and pidns[0] != _pid_namespace("self"):
        # A pid of another PID namespace (a run without root has its own, see simulator/userns.py):
        # alive while that namespace has processes, which only the host's namespace sees all of.
        return _pid_namespace("self") != str(_INITIAL_PID_NS) or _pid_namespace_alive(pidns[0], path.stat().st_uid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(prefix: str) -> list[Path]:
    """Remove this machine's directories named ``prefix*`` whose owner process is gone."""
    removed = find_orphans(prefix)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def find_orphans(prefix: str) -> list[Path]:
    """This machine's directories named ``prefix*`` whose owner process is gone."""
    found = []
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if path.is_dir() and not path.is_symlink() and not _owner_alive(path):
                found.append(path)
        except OSError:
            continue
    return found


#: The initial PID namespace's inode (PROC_PID_INIT_INO in the kernel's proc_ns.h).
_INITIAL_PID_NS = 0xEFFFFFFC


def _pid_namespace(pid: str) -> str:
    """The inode of a process's PID namespace, as text ("" if it is gone); PermissionError if not ours to read."""
    try:
        return str(os.stat(f"/proc/{pid}/ns/pid").st_ino)
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _pid_namespace_alive(inode: str, owner: int) -> bool:
    """True if a process is in the PID namespace ``inode``, or may be: one of ``owner``'s that this
    process may not inspect (in a user namespace this one has no rights over)."""
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if _pid_namespace(pid) == inode:
                return True
        except PermissionError:
            try:
                if os.stat(f"/proc/{pid}").st_uid == owner:
                    return True
            except OSError:
                continue
    return False
