"""The doctor's output: one ``STATUS  LABEL: DETAIL`` line per check as it completes, or with ``--json``
one object at the end (each check's name, verdict and detail, the counts and the exit status); the
summary line and the exit status (1 if any check failed) come from the counts. Details name the
command's options (``--NAME``), not the plugin's ``--vsphere-NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._common import Console, cli_spelling


@dataclass
class Report:
    """Prints each check as it completes (or, as JSON, all of them at the end) and counts the outcomes."""

    console: Console
    as_json: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {"OK": 0, "WARN": 0, "FAIL": 0, "SKIP": 0})
    checks: list[dict[str, str]] = field(default_factory=list)

    def line(self, status: str, label: str, detail: str) -> None:
        self.counts[status] += 1
        detail = " ".join(cli_spelling(detail, self.console.renames).split())
        self.checks.append({"name": label, "verdict": status.lower(), "detail": detail})
        if not self.as_json:
            self.console.out(f"{status:<4}  {label}: {detail}")

    def ok(self, label: str, detail: str) -> None:
        self.line("OK", label, detail)

    def warn(self, label: str, detail: str) -> None:
        self.line("WARN", label, detail)

    def fail(self, label: str, detail: str) -> None:
        self.line("FAIL", label, detail)

    def skip(self, label: str, detail: str) -> None:
        self.line("SKIP", label, detail)

    def finish(self) -> int:
        status = 1 if self.counts["FAIL"] else 0
        if self.as_json:
            self.console.json({"checks": self.checks,
                               "counts": {verdict.lower(): n for verdict, n in self.counts.items()},
                               "exit_status": status})
        else:
            self.console.out("doctor: " + ", ".join(f"{n} {verdict}" for verdict, n in self.counts.items() if n))
        return status
