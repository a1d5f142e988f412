#!/usr/bin/env python3
"""Linked-clone a VM from one of its snapshots, power the clone on and wait for its IP address.

The clone and the power-on are followed by reading ``task.info`` in a loop; the IP address by
reading ``vm.guest.ipAddress`` until VMware Tools report one.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def find_snapshot(tree: list[Any] | None, name: str) -> Any:
    """The snapshot called ``name`` in a snapshot tree (depth first), or None."""
    for node in tree or []:
        if node.name == name:
            return node.snapshot
        found = find_snapshot(node.childSnapshotList, name)
        if found is not None:
            return found
    return None


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the clone")
    parser.add_argument("--template", required=True, help="VM to clone")
    parser.add_argument("--snapshot", help="snapshot to clone from (default: the current one)")
    parser.add_argument("--no-power-on", action="store_true", help="leave the clone powered off")
    parser.add_argument("--ip-timeout", type=float, default=120.0, help="seconds to wait for an IP address")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()

    template = pchelper.get_obj(content, vim.VirtualMachine, args.template)
    if template is None:
        tasks.fail(f"no VM called {args.template}")
    if template.snapshot is None:
        tasks.fail(f"{args.template} has no snapshot: a linked clone needs one")
    if args.snapshot:
        snapshot = find_snapshot(template.snapshot.rootSnapshotList, args.snapshot)
        if snapshot is None:
            tasks.fail(f"{args.template} has no snapshot called {args.snapshot}")
    else:
        snapshot = template.snapshot.currentSnapshot
    print(f"Cloning {args.template} ({template._moId}) from snapshot {snapshot._moId} as {args.vm_name}")

    relocate = vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking", pool=template.resourcePool)
    spec = vim.vm.CloneSpec(location=relocate, powerOn=False, template=False, snapshot=snapshot)
    try:
        clone = tasks.poll_task(template.CloneVM_Task(folder=template.parent, name=args.vm_name, spec=spec),
                                "CloneVM_Task")
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))
    config = clone.config
    print(f"Clone {args.vm_name} is {clone._moId} on {clone.runtime.host.name} in {clone.resourcePool.name}: "
          f"cpus={config.hardware.numCPU} memory_mb={config.hardware.memoryMB} annotation={config.annotation!r}")
    disks = [d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    for disk in disks:
        parent = disk.backing.parent
        print(f"  disk {disk.deviceInfo.label}: {disk.backing.fileName} parent={parent.fileName if parent else '-'}")
    if not any(disk.backing.parent for disk in disks):
        tasks.fail("the linked clone's disk has no parent backing (a full clone?)")

    if args.no_power_on:
        print(f"Clone {args.vm_name} power={clone.runtime.powerState}")
        return 0
    try:
        tasks.poll_task(clone.PowerOnVM_Task(), "PowerOnVM_Task")
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))
    print(f"Clone {args.vm_name} power={clone.runtime.powerState}")

    deadline = time.monotonic() + args.ip_timeout
    while not clone.guest.ipAddress:
        if time.monotonic() > deadline:
            tasks.fail(f"no IP address for {args.vm_name} after {args.ip_timeout:.0f} s "
                       f"(tools {clone.guest.toolsRunningStatus})")
        time.sleep(1)
    guest = clone.guest
    print(f"Clone {args.vm_name} ip={guest.ipAddress} hostname={guest.hostName} tools={guest.toolsRunningStatus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
