"""Process inspection through the host's /proc: namespace membership, pids, liveness, RSS.

Guest processes are host processes in the guest's namespaces. What makes a process
part of a guest is its PID namespace (see namespace.py), so that is how a running
guest's processes are found, listed, frozen and killed; the network namespace is the
catch-all a crashed simulator's sweep uses. Every pid here is a host pid unless a
name says otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache

log = logging.getLogger(__name__)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


_PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit()


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat this package uses."""

    pid: int
    comm: str
    state: str
    start_ticks: int
    flags: int = 0


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def ns_inode(path: str) -> int:
    """Inode of a namespace file (/run/netns/X or /proc/PID/ns/net): its identity."""
    return os.stat(path).st_ino


def pids_in_namespace(kind: str, inode: int) -> list[int]:
    """All processes whose ``kind`` namespace ("net", "pid", ...) is ``inode`` (zombies have none)."""
    pids = []
    for pid in _all_pids():
        try:
            if os.stat(f"/proc/{pid}/ns/{kind}").st_ino == inode:
                pids.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


def own_ns_pid(pid: int) -> int | None:
    """The pid of host process ``pid`` in its own PID namespace (a guest pid); None if it is gone.

    The NSpid line of /proc/PID/status lists the pid in every namespace from the
    host's down to the process's own.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/PID/stat; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(pid=pid, comm=comm, state=fields[0], start_ticks=int(fields[19]), flags=int(fields[6]))


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if ``pid`` runs and, if given, started at ``start_ticks`` (no pid reuse).

    A zombie is dead, and so is a process already in exit: a PID namespace's init
    stays in exit until every other process of its namespace has been reaped.
    """
    stat = read_stat(pid)
    if stat is None or stat.state in ("Z", "X") or stat.flags & _PF_EXITING:
        return False
    return start_ticks is None or stat.start_ticks == start_ticks


@cache
def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def start_time(stat: ProcStat) -> datetime:
    """Wall-clock start time of a process."""
    return datetime.fromtimestamp(_boot_time() + stat.start_ticks / _CLOCK_TICKS, tz=timezone.utc)


def cmdline(pid: int) -> list[str]:
    """argv of a process; empty for kernel threads and vanished processes."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]]


def real_uid(pid: int) -> int | None:
    """Real uid of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (0 if gone)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: RSS with shared pages divided among their users (0 if gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def signal_namespace(kind: str, inode: int, sig: int) -> list[int]:
    """Send ``sig`` to every process of a namespace; return the pids signalled."""
    pids = pids_in_namespace(kind, inode)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def kill_namespace(kind: str, inode: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of a namespace until none is left.

    Repeated because a process may fork between the scan and the kill.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in signal_namespace(kind, inode, signal.SIGKILL) if is_alive(pid)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {alive} survived SIGKILL")
        time.sleep(0.005)


def kill_netns(inode: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of a network namespace until none is left."""
    kill_namespace("net", inode, timeout)


def stop_namespace(kind: str, inode: int, timeout: float = 5.0) -> None:
    """SIGSTOP every process of a namespace, repeating until all are stopped."""
    deadline = time.monotonic() + timeout
    while True:
        running = []
        for pid in signal_namespace(kind, inode, signal.SIGSTOP):
            stat = read_stat(pid)
            if stat is not None and stat.state not in ("T", "t", "Z", "X"):
                running.append(pid)
        if not running:
            return
        if time.monotonic() > deadline:
            log.warning("processes %s did not stop within %s s", running, timeout)
            return
        time.sleep(0.002)

