"""``vsphere-clone collapse TEMPLATE``: merge the delta disks clones left on a source VM.

Instant clones add a delta disk to their source (one per clone of a running source, one
per freeze generation of a frozen one); collapsing merges them back. ``promote`` runs
PromoteDisks_Task(unlink=True); ``snapshot`` takes a snapshot and removes all snapshots
(consolidating), which deletes the source's own snapshots too, so it is refused for a
source with snapshots unless ``--force``. While other VMs still use the source's disks
the collapse is refused too, unless ``--force``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import CommandError, Console, common_parent, connection_settings, positive_float, run_command

if TYPE_CHECKING:
    from ..client.inventory import TemplateInfo
    from ..client.session import VSphereConnection

MODES = ("auto", "snapshot", "promote")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "collapse", parents=[common_parent()], help="merge the delta disks clones left on a source VM",
        description="Merge the delta disks that instant clones left on their source and print the disk chain "
                    "length before and after. Run it once the source's clones are gone.")
    parser.add_argument("template", metavar="TEMPLATE", help="the source VM: name or inventory path")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="promote: PromoteDisks_Task(unlink=True); snapshot: create a snapshot, then remove all "
                             "snapshots (consolidates, and deletes the source's own snapshots); auto (default): "
                             "promote, or snapshot if the source has snapshots")
    parser.add_argument("--force", action="store_true",
                        help="collapse even while other VMs use the source's disks, and let --mode snapshot delete "
                             "the source's snapshots")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=600.0,
                        help="seconds to wait for each collapse task (default 600)")
    parser.set_defaults(run=lambda args: run_command(args, run), option_renames={"template": "TEMPLATE"})


def _lengths(lengths: list[int]) -> str:
    return ", ".join(str(n) for n in lengths) if lengths else "no disks"


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client import faults
    from ..client.disks import disk_chain_lengths
    from ..client.inventory import find_template
    from ..client.teardown import collapse

    settings = connection_settings(args)
    with settings.connect() as conn:
        info = find_template(conn, args.template)
        before = disk_chain_lengths(conn, info.ref)
        console.out(f"{info.name}: disk chain length {_lengths(before)} before")
        if all(n <= 1 for n in before):
            console.out(f"nothing to collapse: {info.name} has no delta disks")
            return 0
        snapshots = [s.path for s in info.snapshots]
        mode = args.mode if args.mode != "auto" else ("snapshot" if snapshots else "promote")
        _check(conn, info, mode, snapshots, args.force)
        console.out(f"collapsing {info.name} ({mode}) ...")
        try:
            collapse(conn, info.ref, mode, timeout=args.timeout, allow_removing_snapshots=args.force)
        except Exception as exc:
            if not faults.is_vsphere_fault(exc):
                raise
            raise CommandError(f"collapse ({mode}) of {info.name} failed: {faults.describe(exc)}: check the VM's "
                               f"tasks and events in the vSphere Client, then run `vsphere-clone collapse "
                               f"{info.name}` again") from None
        after = disk_chain_lengths(conn, info.ref)
    console.out(f"collapsed {info.name} ({mode}): disk chain length {_lengths(before)} -> {_lengths(after)}")
    return 0


def _check(conn: VSphereConnection, info: TemplateInfo, mode: str, snapshots: list[str], force: bool) -> None:
    """Refuse what would hurt (or what vSphere would refuse) with a line naming the way out."""
    from ..client.disks import disk_sharers

    users = disk_sharers(conn, info.ref)
    if users and not force:
        shown = ", ".join(users[:8]) + (f", ... ({len(users) - 8} more)" if len(users) > 8 else "")
        one = len(users) == 1
        raise CommandError(f"{len(users)} VM{'' if one else 's'} still use{'s' if one else ''} the disks of "
                           f"{info.name} ({shown}): destroy {'it' if one else 'them'} first (for test clones: "
                           f"`vsphere-clone reap --run ID`), or pass --force to collapse anyway")
    listed = ", ".join(snapshots)
    if mode == "snapshot":
        if info.frozen:
            raise CommandError(f"{info.name} is frozen, and a frozen VM cannot take the snapshot that --mode snapshot "
                               f"needs: use --mode promote")
        if snapshots and not force:
            raise CommandError(f"collapsing {info.name} with --mode snapshot would delete its snapshots ({listed}), "
                               f"which linked clones are made from: a linked-clone template needs no collapse (each "
                               f"clone's delta disk is its own); pass --force to delete them and merge anyway")
    elif snapshots:
        raise CommandError(f"{info.name} has snapshots ({listed}), and vSphere cannot promote the disks of a VM with "
                           f"snapshots: use --mode snapshot --force (deletes them), or remove them first")
