#!/usr/bin/env python3
"""Snapshot a VM, change it, revert to the snapshot and remove it, with pyVim.task.WaitForTask.

Reverting returns the VM's settings (here its annotation) to the snapshot's and, for a snapshot
taken without memory, leaves the VM powered off.
"""

from __future__ import annotations

import sys
from typing import Any

from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl
from tools import cli, pchelper, service_instance, tasks


def print_tree(vm: vim.VirtualMachine) -> list[str]:
    """Print the VM's snapshot tree; the names in it, depth first."""
    names: list[str] = []

    def walk(nodes: list[Any], depth: int) -> None:
        for node in nodes:
            current = " (current)" if node.snapshot == vm.snapshot.currentSnapshot else ""
            print(f"  {'  ' * depth}{node.name} {node.snapshot._moId} state={node.state} "
                  f"quiesced={node.quiesced} created={node.createTime:%Y-%m-%dT%H:%M:%S}{current}")
            names.append(node.name)
            walk(node.childSnapshotList, depth + 1)

    if vm.snapshot is None:
        print("  (no snapshots)")
    else:
        walk(vm.snapshot.rootSnapshotList, 0)
    return names


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("--snapshot-name", default="classic-snapshot", help="name of the snapshot to take")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")
    print(f"{vm.name} ({vm._moId}) power={vm.runtime.powerState}; snapshots before:")
    before = print_tree(vm)
    original_note = vm.config.annotation

    try:
        WaitForTask(vm.CreateSnapshot_Task(name=args.snapshot_name, description="taken by snapshots.py",
                                           memory=False, quiesce=False))
        snapshot = vm.snapshot.currentSnapshot
        print(f"Created {args.snapshot_name} as {snapshot._moId}:")
        print_tree(vm)
        WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="changed after the snapshot")))
        print(f"Annotation now {vm.config.annotation!r}; the snapshot's is {snapshot.config.annotation!r}")

        WaitForTask(snapshot.RevertToSnapshot_Task())
        note = vm.config.annotation
        print(f"Reverted to {args.snapshot_name}: power={vm.runtime.powerState} annotation={note!r}")
        if note != original_note:
            tasks.fail(f"reverting left the annotation {note!r}, the snapshot's was {original_note!r}")

        WaitForTask(snapshot.RemoveSnapshot_Task(removeChildren=False))
        print(f"Removed {args.snapshot_name}; snapshots after:")
        after = print_tree(vm)
    except (vim.fault.VimFault, vmodl.MethodFault) as exc:
        tasks.fail(f"{type(exc).__name__}: {exc.msg}")
    if after != before:
        tasks.fail(f"snapshots after removal {after}, before {before}")
    try:
        snapshot.config  # noqa: B018 (a read of a removed snapshot)
    except vmodl.fault.ManagedObjectNotFound:
        print(f"The removed snapshot {snapshot._moId} is gone (ManagedObjectNotFound)")
    else:
        tasks.fail(f"the removed snapshot {snapshot._moId} can still be read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
