"""The terminal summary: one line per clone and min/max/avg per phase, like the seeds' tables."""

from __future__ import annotations

from collections.abc import Iterable

from .clone import PHASES
from .ledger import LedgerEntry


def phase_table(entries: Iterable[LedgerEntry]) -> list[str]:
    """Rows ``phase  min  max  avg`` over clones that reached the phase."""
    rows = []
    ready = [e for e in entries if e.timings]
    for phase in (*PHASES, "total"):
        values = [sum(e.timings.values()) if phase == "total" else e.timings[phase]
                  for e in ready if phase == "total" or phase in e.timings]
        if values:
            rows.append(f"{phase:<10} {min(values):>8.2f} {max(values):>8.2f} {sum(values) / len(values):>8.2f}")
    if rows:
        rows.insert(0, f"{'phase':<10} {'min':>8} {'max':>8} {'avg':>8}   (seconds, {len(ready)} clone(s))")
    return rows


def summary_lines(entries: dict[str, LedgerEntry], kept: list[str], errors: list[str],
                  warnings: list[str]) -> list[str]:
    """Every line of the run's clone summary."""
    lines = []
    for entry in entries.values():
        timings = " ".join(f"{phase}={entry.timings[phase]:.2f}s" for phase in PHASES if phase in entry.timings)
        state = "kept" if entry.name in kept or entry.state == "kept" else entry.state
        lines.append(f"{entry.name} {entry.template} {entry.clone_type or '-'} {entry.ip or '-'} {timings} "
                     f"[{state}]".replace("  ", " "))
    lines.extend(phase_table(entries.values()))
    lines.extend(f"warning: {w}" for w in dict.fromkeys(warnings))
    lines.extend(f"error: {e}" for e in errors)
    return lines
