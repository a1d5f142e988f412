"""The terminal summary: one line per clone and min/max/avg per phase, like the seeds' tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .clone import PHASES
from .ledger import LedgerEntry

if TYPE_CHECKING:
    from .clone import Clone
    from .settings import Settings


def how_to_reach(clone: Clone, settings: Settings) -> str:
    """How a person reaches a kept clone: ``ssh root@10.0.0.5`` (``-p`` when not 22) or its WinRM URL."""
    if not clone.ip:
        return ""
    host = f"[{clone.ip}]" if ":" in clone.ip else clone.ip
    if clone.os == "windows":
        scheme = "https" if settings.winrm_ssl else "http"
        return f"WinRM {scheme}://{host}:{settings.winrm_port}/wsman (user {settings.guest_user or '?'})"
    port = f" -p {settings.ssh_port}" if settings.ssh_port != 22 else ""
    user = f"{settings.guest_user}@" if settings.guest_user else ""
    return f"ssh{port} {user}{clone.ip}"


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
        reach = ""
        if state == "kept":  # the state stays last: "... -> ssh root@10.0.0.5 (kept by TEST) [kept]"
            reach = f"-> {entry.reach or 'no address'}{f' (kept by {entry.kept_by})' if entry.kept_by else ''}"
        line = f"{entry.name} {entry.template} {entry.clone_type or '-'} {entry.ip or '-'} {timings} {reach} [{state}]"
        lines.append(" ".join(line.split()))
    lines.extend(phase_table(entries.values()))
    lines.extend(f"warning: {w}" for w in dict.fromkeys(warnings))
    lines.extend(f"error: {e}" for e in errors)
    return lines
