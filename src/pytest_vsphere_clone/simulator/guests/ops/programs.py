"""Bookkeeping of programs started in a guest: exit codes, and listing after exit.

VMware keeps a program started by StartProgramInGuest in ListProcessesInGuest for
about five minutes after it ends, with its exit code and end time.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..host.events import EventLoopThread
from ..models import GuestProcessInfo

DEFAULT_RETENTION = 300.0


def exit_code(returncode: int) -> int:
    """Exit status as a shell reports it: a process killed by signal N reports 128+N."""
    return returncode if returncode >= 0 else 128 - returncode


@dataclass
class _Entry:
    info: GuestProcessInfo
    proc: subprocess.Popen[Any]
    exit_code_file: Path | None = None
    finished_at: float | None = None  # monotonic, for retention


class ProgramTable:
    """The programs started in one guest."""

    def __init__(self, events: EventLoopThread, retention: float = DEFAULT_RETENTION) -> None:
        self._events = events
        self._retention = retention
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def add(
        self,
        proc: subprocess.Popen[Any],
        name: str,
        owner: str,
        cmd_line: str,
        exit_code_file: Path | None = None,
        pid: int | None = None,
    ) -> int:
        """Track a started program (reaped by the event loop); returns its pid.

        ``pid`` is the program's pid as the guest sees it (default: ``proc.pid``).
        ``exit_code_file``, if the program writes one, holds the exact exit code
        (an exit status keeps only 8 bits; Windows codes such as 9009 do not fit).
        """
        guest_pid = proc.pid if pid is None else pid
        info = GuestProcessInfo(
            pid=guest_pid, name=name, owner=owner, cmd_line=cmd_line, start_time=datetime.now(timezone.utc)
        )
        with self._lock:
            self._entries[guest_pid] = _Entry(info, proc, exit_code_file)
        self._events.watch_exit(proc, lambda returncode: self._exited(guest_pid, returncode))
        return guest_pid

    def _exited(self, pid: int, returncode: int) -> None:
        with self._lock:
            entry = self._entries.get(pid)
            if entry is None:
                return
            code = exit_code(returncode)
            if entry.exit_code_file is not None:
                with contextlib.suppress(OSError, ValueError):
                    code = int(entry.exit_code_file.read_text().strip())
                entry.exit_code_file.unlink(missing_ok=True)
            entry.info = replace(entry.info, end_time=datetime.now(timezone.utc), exit_code=code)
            entry.finished_at = time.monotonic()

    def snapshot(self) -> dict[int, GuestProcessInfo]:
        """All tracked programs, running or recently finished, by pid."""
        cutoff = time.monotonic() - self._retention
        with self._lock:
            for pid in [p for p, e in self._entries.items() if e.finished_at and e.finished_at < cutoff]:
                del self._entries[pid]
            return {pid: entry.info for pid, entry in self._entries.items()}

    def clear(self, timeout: float = 5.0) -> None:
        """Forget every program, reaping those still unreaped (call after killing them)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.proc.wait(timeout)
