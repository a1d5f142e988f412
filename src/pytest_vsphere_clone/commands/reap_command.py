"""``vsphere-clone reap``: destroy expired or orphaned marked clones (or all of a run); never an unmarked VM."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ._common import (
    CommandError,
    Console,
    add_json_option,
    common_parent,
    connection_settings,
    duration,
    positive_float,
    run_command,
    span,
)
from .list_command import add_extra_config_option, as_json

if TYPE_CHECKING:
    from ..client.teardown import MarkedVM, ReapReport


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "reap", parents=[common_parent()], help="destroy expired or orphaned clones (never an unmarked VM)",
        description="Power off and destroy VMs carrying the pytest-vsphere-clone marker: by default those whose "
                    "expiry has passed or that were made on this machine by a process that is gone (orphaned). "
                    "A VM without the marker is never touched.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all-expired", action="store_true",
                       help="the expired and the orphaned marked VMs (the default)")
    which.add_argument("--older-than", metavar="DURATION", type=duration,
                       help="every marked VM created longer ago than this (e.g. 90m, 2h, 1d), expired or not")
    which.add_argument("--run", dest="run_id", metavar="ID", help="every marked VM of this run id, expired or not")
    parser.add_argument("--dry-run", action="store_true", help="print what would be destroyed; destroy nothing")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=300.0,
                        help="seconds to wait for the power-off and destroy tasks (default 300)")
    add_extra_config_option(parser)
    add_json_option(parser, "what was (or, with --dry-run, would be) destroyed and why")
    parser.set_defaults(run=lambda args: run_command(args, run))


def reason(vm: MarkedVM, args: argparse.Namespace, now: float) -> str:
    """Why ``vm`` was chosen, for the line that reports it."""
    marker = vm.marker
    owner = f"run {marker.run_id}, worker {marker.worker}"
    if args.run_id is not None:
        return owner
    if args.older_than is not None:
        return f"{owner}; created {span(now - marker.created)} ago"
    why = []
    if marker.is_expired(now):
        why.append(f"expired {span(now - marker.expiry)} ago")
    if marker.is_orphaned(now):
        why.append(f"orphaned: its process {marker.pid} on this machine is gone")
    return f"{owner}; {', '.join(why)}"


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client.teardown import list_marked, reap

    settings = connection_settings(args)
    now = time.time()
    total = 0
    with settings.connect() as conn:
        report = reap(conn, run_id=args.run_id, older_than=args.older_than, dry_run=args.dry_run,
                      include_extra_config=args.extra_config, timeout=args.timeout)
        if not report.selected and not args.json:
            total = len(list_marked(conn, include_extra_config=args.extra_config))
    failure = _failure(report)
    if args.json:
        console.json(_document(report, args, now, failure))
        if failure is None:
            return 0
        console.error(failure)  # the JSON says it too; a script checking only the status sees 1
        return 1
    if not report.selected:
        if args.run_id is not None:
            console.out(f"nothing to reap: no marked VM belongs to run {args.run_id!r} ({total} marked in total)")
        elif args.older_than is not None:
            console.out(f"nothing to reap: no marked VM was created more than {span(args.older_than)} ago "
                        f"({total} marked in total)")
        else:
            console.out(f"nothing to reap: {total} marked VM{'s' if total != 1 else ''}, none expired or orphaned")
        return 0
    chosen = sorted(report.selected, key=lambda vm: vm.name)
    if report.dry_run:
        for vm in chosen:
            console.out(f"would destroy {vm.name} ({reason(vm, args, now)})")
        console.out(f"dry run: {len(chosen)} VM{'s' if len(chosen) != 1 else ''} would be destroyed; "
                    f"nothing was touched")
        return 0
    destroyed = set(report.destroyed)
    for vm in chosen:
        if vm.name in destroyed:
            console.out(f"destroyed {vm.name} ({reason(vm, args, now)})")
        elif vm.name in report.failed:
            console.out(f"FAILED to destroy {vm.name} ({reason(vm, args, now)}): {report.failed[vm.name]}")
    console.out(f"reaped {len(destroyed)} of {len(chosen)} selected VM{'s' if len(chosen) != 1 else ''}")
    if failure is not None:
        raise CommandError(failure)
    return 0


def _failure(report: ReapReport) -> str | None:
    """The error line when some VMs could not be destroyed (None when all went)."""
    if not report.failed:
        return None
    names = ", ".join(sorted(report.failed))
    return (f"could not destroy {len(report.failed)} VM{'s' if len(report.failed) != 1 else ''} ({names}); see "
            f"the report above, then run `vsphere-clone reap` again (their markers keep them findable)")


def _document(report: ReapReport, args: argparse.Namespace, now: float, failure: str | None) -> dict[str, Any]:
    """The --json report: each chosen VM (as `list --json` shows it) with why it was chosen and what happened."""
    destroyed = set(report.destroyed)
    vms = []
    for vm in sorted(report.selected, key=lambda vm: vm.name):
        if report.dry_run:
            action, error = "would destroy", None
        elif vm.name in destroyed:
            action, error = "destroyed", None
        else:
            action, error = "failed", report.failed.get(vm.name, "not destroyed")
        vms.append({**as_json(vm, now), "reason": reason(vm, args, now), "action": action, "error": error})
    selection = ("run" if args.run_id is not None else "older-than" if args.older_than is not None
                 else "expired-or-orphaned")
    return {"dry_run": report.dry_run, "selection": selection, "run_id": args.run_id,
            "older_than_seconds": args.older_than, "selected": len(vms),
            "destroyed": sorted(destroyed), "failed": sorted(report.failed), "vms": vms, "error": failure}
