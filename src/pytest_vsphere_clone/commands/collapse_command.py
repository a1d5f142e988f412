"""``vsphere-clone collapse TEMPLATE``: merge the delta disks clones left on a source VM.

Instant clones add a delta disk to their source (one per clone of a running source, one
per freeze generation of a frozen one); collapsing merges them back. ``promote`` runs
PromoteDisks_Task(unlink=True); ``snapshot`` takes a snapshot and removes all snapshots
(consolidating), which deletes the source's own snapshots too, so it is refused for a
source with snapshots unless ``--force``. vSphere promotes no disks of a VM with snapshots,
so ``promote --force`` deletes them first (RemoveAllSnapshots_Task); that is the only way
for a frozen source with snapshots, which cannot take the snapshot ``snapshot`` needs.
While other VMs still use the source's disks the collapse is refused too, unless ``--force``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import (
    CommandError,
    Console,
    add_json_option,
    common_parent,
    connection_settings,
    positive_float,
    run_command,
)

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
                        help="promote: PromoteDisks_Task(unlink=True) (with --force, after deleting the source's "
                             "snapshots, since vSphere promotes no disks of a VM with snapshots); snapshot: create a "
                             "snapshot, then remove all snapshots (consolidates, and deletes the source's own "
                             "snapshots; not for a frozen source); auto (default): snapshot if the source has "
                             "snapshots and is not frozen, else promote")
    parser.add_argument("--force", action="store_true",
                        help="collapse even while other VMs use the source's disks, and let the collapse delete "
                             "the source's snapshots")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=600.0,
                        help="seconds to wait for each collapse task (default 600)")
    add_json_option(parser, "the disk chain lengths before and after and what was done")
    parser.set_defaults(run=lambda args: run_command(args, run), option_renames={"template": "TEMPLATE"})


def _lengths(lengths: list[int]) -> str:
    return ", ".join(str(n) for n in lengths) if lengths else "no disks"


def choose_mode(requested: str, frozen: bool, has_snapshots: bool) -> str:
    """The mode ``auto`` stands for: a frozen VM takes no snapshot, so it is always promoted."""
    if requested != "auto":
        return requested
    return "snapshot" if has_snapshots and not frozen else "promote"


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client import faults
    from ..client.disks import disk_chain_lengths
    from ..client.inventory import find_template
    from ..client.teardown import collapse

    say = (lambda text: None) if args.json else console.out  # under --json, stdout holds only the document
    settings = connection_settings(args)
    with settings.connect() as conn:
        info = find_template(conn, args.template)
        before = disk_chain_lengths(conn, info.ref)
        say(f"{info.name}: disk chain length {_lengths(before)} before")
        if all(n <= 1 for n in before):
            if args.json:
                console.json(document(info.name, None, before, before, "nothing to collapse", []))
                return 0
            console.out(f"nothing to collapse: {info.name} has no delta disks")
            return 0
        snapshots = [s.path for s in info.snapshots]
        mode = choose_mode(args.mode, info.frozen, bool(snapshots))
        _check(conn, info, mode, snapshots, args.force)
        removed = snapshots if mode == "promote" else []
        try:
            if removed:
                # PromoteDisks_Task is refused for a VM with snapshots: delete them first (--force allowed it).
                say(f"deleting the snapshots of {info.name} ({', '.join(removed)}) ...")
                _remove_snapshots(conn, info, args.timeout)
            say(f"collapsing {info.name} ({mode}) ...")
            collapse(conn, info.ref, mode, timeout=args.timeout, allow_removing_snapshots=args.force)
        except Exception as exc:
            if not faults.is_vsphere_fault(exc):
                raise
            raise CommandError(f"collapse ({mode}) of {info.name} failed: {faults.describe(exc)}: check the VM's "
                               f"tasks and events in the vSphere Client, then run `vsphere-clone collapse "
                               f"{info.name}{' --mode promote --force' if removed else ''}` again") from None
        after = disk_chain_lengths(conn, info.ref)
    if args.json:
        console.json(document(info.name, mode, before, after, "collapsed", removed))
        return 0
    deleted = f", its snapshots ({', '.join(removed)}) deleted" if removed else ""
    console.out(f"collapsed {info.name} ({mode}): disk chain length {_lengths(before)} -> {_lengths(after)}"
                f"{deleted}")
    return 0


def document(name: str, mode: str | None, before: list[int], after: list[int], action: str,
             snapshots_deleted: list[str]) -> dict[str, Any]:
    """The --json document: the disk chain lengths (one per disk) before and after, and what was done."""
    return {"vm": name, "action": action, "mode": mode, "chain_before": before, "chain_after": after,
            "snapshots_deleted": snapshots_deleted}


def _remove_snapshots(conn: VSphereConnection, info: TemplateInfo, timeout: float) -> None:
    from ..client.waiter import Waiter

    with Waiter(conn) as waiter:
        # RemoveAllSnapshots_Task: "consolidate: If true, the virtual disk associated with this snapshot
        # will be merged with other disk if possible. Defaults to true."
        task = conn.call(lambda: info.ref.RemoveAllSnapshots_Task(consolidate=True), idempotent=False,
                         what=f"RemoveAllSnapshots_Task of {info.name}")
        waiter.wait_for_task(task, timeout, f"the removal of all snapshots of {info.name}")


def _check(conn: VSphereConnection, info: TemplateInfo, mode: str, snapshots: list[str], force: bool) -> None:
    """Refuse what would hurt (or what vSphere would refuse) with a line naming the command that works."""
    from ..client.disks import disk_sharers

    users = disk_sharers(conn, info.ref)
    if users and not force:
        shown = ", ".join(users[:8]) + (f", ... ({len(users) - 8} more)" if len(users) > 8 else "")
        one = len(users) == 1
        raise CommandError(f"{len(users)} VM{'' if one else 's'} still use{'s' if one else ''} the disks of "
                           f"{info.name} ({shown}): destroy {'it' if one else 'them'} first (for test clones: "
                           f"`vsphere-clone reap --run ID`), or pass --force to collapse anyway")
    listed = ", ".join(snapshots)
    # Each refusal names one command that gets past every other refusal too, so the advice never loops.
    promote = f"`vsphere-clone collapse {info.name} --mode promote{' --force' if snapshots else ''}`"
    if mode == "snapshot":
        if info.frozen:
            with_snapshots = (f", and vSphere cannot promote the disks of a VM with snapshots ({listed}) either: "
                              f"run {promote} to delete them first, then promote") if snapshots else \
                f": run {promote}"
            raise CommandError(f"{info.name} is frozen, and a frozen VM cannot take the snapshot that --mode "
                               f"snapshot needs{with_snapshots}")
        if snapshots and not force:
            raise CommandError(f"collapsing {info.name} with --mode snapshot would delete its snapshots ({listed}), "
                               f"which linked clones are made from: a linked-clone template needs no collapse (each "
                               f"clone's delta disk is its own); pass --force to delete them and merge anyway")
    elif snapshots and not force:
        frozen = " (and a frozen VM cannot take the snapshot that --mode snapshot needs)" if info.frozen else ""
        raise CommandError(f"{info.name} has snapshots ({listed}), and vSphere cannot promote the disks of a VM with "
                           f"snapshots{frozen}: run {promote} to delete them first (linked clones branch from "
                           f"them: a linked-clone template needs no collapse)")
