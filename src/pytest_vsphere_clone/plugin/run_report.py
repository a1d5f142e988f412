"""The JSON run report (``--vsphere-report=PATH``), written by the run's owner at the end of the run.

Under xdist the controller gathers it: the clones from the run's ledger (every process writes there),
the tests that used each clone from the reports workers send (their ``vsphere_vm`` properties, see
:mod:`.reports`), the screenshots from the reports' evidence sections. A clone that was started but never
made ready is ``"outcome": "failed"`` with the one-line error the ledger recorded for it. Schema (versioned by
``"schema"``) in docs/reports.md; settings are listed without secrets.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .clone import PHASES
from .evidence import NOT_TAKEN_LINE, SCREENSHOT_LINE, SECTION
from .options import OPTIONS
from .reports import clone_names

if TYPE_CHECKING:
    from .ledger import LedgerEntry
    from .settings import Settings

#: The report's format version: bumped when a field changes meaning or goes away (new fields keep it).
SCHEMA = 1
#: Worse outcomes win when a test has several reports (setup, call, teardown).
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _outcome(report: pytest.TestReport) -> str:
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "skipped" if report.skipped else "passed"


def settings_document(settings: Settings) -> dict[str, Any]:
    """Every setting's value and where it came from; a secret only says whether it is set."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(settings, option.attr, None)
        if option.secret:
            value = "***" if value else None
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        values[option.name] = {"value": value, "source": settings.sources.get(option.name, "default")}
    return values


def check_paths(settings: Settings) -> None:
    """Fail at the start, with one line naming the fix, when the report or the artifacts cannot be written
    (rather than after every test ran). Creates the missing parent directories, as writing would."""
    from .settings import SettingsError

    checks = [("--vsphere-report", settings.report, settings.report.parent if settings.report else None),
              ("--vsphere-artifacts", settings.artifacts, settings.artifacts)]
    for option, path, directory in checks:
        if path is None or directory is None:
            continue
        if option == "--vsphere-report" and path.is_dir():
            raise SettingsError(f"{option}={path} is a directory: name a file, e.g. {path / 'vsphere-report.json'}")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"{option}={path}: cannot create {directory} ({exc.strerror or exc}): name a path "
                                f"in a writable directory") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise SettingsError(f"{option}={path}: {directory} is not writable: name a path in a writable "
                                f"directory")


class RunReport:
    """Gathers the tests' side of the report in the run's owner and writes the document at the end."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.started = time.time()
        #: clone name -> test node id -> outcome
        self.tests: dict[str, dict[str, str]] = {}
        #: test node id -> saved screenshot paths; and lines of screenshots not taken
        self.screenshots: dict[str, list[str]] = {}
        self.evidence_warnings: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        names = clone_names(getattr(report, "user_properties", ()))
        if not names:
            return
        outcome = _outcome(report)
        for name in names:
            tests = self.tests.setdefault(name, {})
            previous = tests.get(report.nodeid, "passed")
            tests[report.nodeid] = outcome if _RANK[outcome] >= _RANK[previous] else previous
        for section, text in report.sections:
            if section != SECTION:
                continue
            for line in text.splitlines():
                if line.startswith(SCREENSHOT_LINE):
                    self.screenshots.setdefault(report.nodeid, []).append(line[len(SCREENSHOT_LINE):])
                elif line.startswith(NOT_TAKEN_LINE):
                    self.evidence_warnings.append(f"{report.nodeid}: {line}")

    def document(self, entries: dict[str, LedgerEntry], errors: list[str], warnings: list[str],
                 exit_status: int) -> dict[str, Any]:
        """The report as a JSON-ready dict (see docs/reports.md)."""
        clones = [self._clone(entry, errors) for entry in entries.values()]
        ready = [e for e in entries.values() if e.timings]
        phases = {}
        for phase in PHASES:
            values = [e.timings[phase] for e in ready if phase in e.timings]
            if values:
                phases[phase] = {"min": round(min(values), 3), "max": round(max(values), 3),
                                 "avg": round(sum(values) / len(values), 3), "count": len(values)}
        outcomes: dict[str, str] = {}
        for tests in self.tests.values():
            for nodeid, outcome in tests.items():
                if _RANK[outcome] >= _RANK[outcomes.get(nodeid, "passed")]:
                    outcomes[nodeid] = outcome
        states = [c["state"] for c in clones]
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "started": _stamp(self.started),
            "finished": _stamp(time.time()),
            "exit_status": int(exit_status),
            "settings": settings_document(self.settings),
            "clones": clones,
            "totals": {"clones": len(clones), "destroyed": states.count("destroyed"), "kept": states.count("kept"),
                       "left": sum(1 for s in states if s in ("creating", "created")),
                       "failed": sum(1 for e in entries.values() if e.error),
                       "tests": len(outcomes), "failed_tests": sum(1 for o in outcomes.values() if o != "passed"
                                                                   and o != "skipped"),
                       "screenshots": sum(len(p) for p in self.screenshots.values()), "phases": phases},
            "errors": list(errors),
            "warnings": list(dict.fromkeys([*warnings, *self.evidence_warnings])),
        }

    def _clone(self, entry: LedgerEntry, errors: list[str]) -> dict[str, Any]:
        tests = self.tests.get(entry.name, {})
        ranked = max(tests.values(), key=lambda o: _RANK[o], default=None)
        if entry.error:  # started but never made ready: a clone task fault, no address in time, a refused login
            ranked = "failed"
        return {
            "name": entry.name, "moref": entry.moref, "template": entry.template, "clone_type": entry.clone_type,
            "scope": entry.scope, "worker": entry.worker, "ip": entry.ip or None,
            "timings": {phase: round(entry.timings[phase], 3) for phase in PHASES if phase in entry.timings},
            "state": entry.state, "kept": entry.state == "kept", "reach": entry.reach or None,
            "kept_by": entry.kept_by or None,
            "tests": [{"nodeid": nodeid, "outcome": outcome, "screenshots": self.screenshots.get(nodeid, [])}
                      for nodeid, outcome in tests.items()],
            "outcome": ranked,
            "failed_phase": entry.failed_phase or None,
            "errors": list(dict.fromkeys([*([entry.error] if entry.error else []),
                                          *(e for e in errors if entry.name in e)])),
        }

    def write(self, path: Path, document: dict[str, Any]) -> None:
        """Write ``document`` to ``path`` whole (a reader never sees half a report)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(partial, path)
