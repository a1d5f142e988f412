"""The run's ledger: every process writes what it is about to create before the clone task starts.

One JSON object per line, appended with O_APPEND so lines from concurrent
workers never interleave. The controller reads it to tear down whatever a
worker left behind, even a clone whose task was in flight when it died.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LedgerEntry:
    """What the ledger knows of one clone."""

    name: str
    worker: str
    template: str
    scope: str
    moref: str | None = None
    #: The key (moref) of the clone task that makes it, once started: the end of the run learns
    #: the task's outcome from it when no wait of the run could.
    task: str | None = None
    state: str = "creating"  # creating | created | destroyed | kept
    ip: str = ""
    clone_type: str = ""
    #: The clone's own collapse setting: what its source gets at the end of the run.
    collapse: str = "none"
    timings: dict[str, float] = field(default_factory=dict)
    #: A kept clone: how to reach it (``ssh root@10.0.0.5``) and the test that kept it.
    reach: str = ""
    kept_by: str = ""
    #: A clone that was started but never made ready: the one-line error and the phase it failed in
    #: (``clone``, ``power_on``, ``ip``, ``connect``); its state still says whether it was destroyed.
    error: str = ""
    failed_phase: str = ""

    @property
    def live(self) -> bool:
        """True while the clone may exist on vSphere."""
        return self.state in ("creating", "created")


class Ledger:
    """Append-only record of clones of one run, shared by controller and workers."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), "pid": os.getpid(), **fields}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def creating(self, name: str, worker: str, template: str, scope: str, clone_type: str = "",
                 collapse: str = "none") -> None:
        self._append("creating", name=name, worker=worker, template=template, scope=scope, clone_type=clone_type,
                     collapse=collapse)

    def task(self, name: str, task: str) -> None:
        """The clone task of ``name`` started (its key); the clone may exist from now on."""
        self._append("task", name=name, task=task)

    def created(self, name: str, moref: str) -> None:
        self._append("created", name=name, moref=moref)

    def ready(self, clone: Any) -> None:
        """The clone is up: its address and phase timings, for the run's summary."""
        self._append("ready", name=clone.name, ip=clone.ip, clone_type=clone.clone_type, timings=clone.timings)

    def destroyed(self, name: str) -> None:
        self._append("destroyed", name=name)

    def failed(self, name: str, error: str, phase: str, secrets: Iterable[str | None] = ()) -> None:
        """The clone could not be made ready: ``error`` on one line, every one of ``secrets`` masked."""
        line = " ".join(error.split())
        for secret in secrets:
            if secret:
                line = line.replace(secret, "***")
        self._append("failed", name=name, error=line, phase=phase)

    def kept(self, name: str, reach: str = "", kept_by: str = "") -> None:
        """The clone outlives the run: how to reach it and the test that kept it, for the summary."""
        self._append("kept", name=name, reach=reach, kept_by=kept_by)

    def entries(self) -> dict[str, LedgerEntry]:
        """The latest state of every clone named in the ledger."""
        found: dict[str, LedgerEntry] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return found
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a killed writer; the "creating" line before it still counts
            name = record.get("name")
            if not name:
                continue
            event = record["event"]
            if event == "creating":
                found[name] = LedgerEntry(name, record["worker"], record["template"], record["scope"],
                                          clone_type=record.get("clone_type", ""),
                                          collapse=record.get("collapse", "none"))
            elif name in found:
                entry = found[name]
                if event == "task":
                    entry.task = record.get("task")
                elif event == "created":
                    entry.moref = record.get("moref")
                    entry.state = "created"
                elif event == "ready":
                    entry.ip = record.get("ip", "")
                    entry.clone_type = record.get("clone_type", "")
                    entry.timings = dict(record.get("timings", {}))
                elif event == "failed":  # not a state: the clone may still be destroyed, or left
                    entry.error = record.get("error", "")
                    entry.failed_phase = record.get("phase", "")
                elif event == "kept":
                    entry.state = "kept"
                    entry.reach = record.get("reach", "")
                    entry.kept_by = record.get("kept_by", "")
                else:
                    entry.state = event
        return found

    def live(self, worker: str | None = None) -> list[LedgerEntry]:
        """Clones that may still exist (of one worker, or of everyone)."""
        return [e for e in self.entries().values() if e.live and (worker is None or e.worker == worker)]
