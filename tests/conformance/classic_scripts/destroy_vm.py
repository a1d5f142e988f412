#!/usr/bin/env python3
"""Power a VM off and destroy it, waiting with a property filter and WaitForUpdates, then make sure it is gone.

Gone means: no container view, FindByInventoryPath nor property read finds it, and the event
history has its VmRemovedEvent.
"""

from __future__ import annotations

import sys

from pyVmomi import vim, vmodl
from tools import cli, pchelper, service_instance, tasks


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")
    moid = vm._moId
    path = f"{vm.parent.parent.name}/{vm.parent.name}/{vm.name}"
    print(f"Found {vm.name} ({moid}) at {path}, power={vm.runtime.powerState}")
    try:
        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
            print("Powering off")
            tasks.wait_for_tasks(si, [vm.PowerOffVM_Task()])
            print(f"  power={vm.runtime.powerState}")
        print("Destroying")
        tasks.wait_for_tasks(si, [vm.Destroy_Task()])
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))

    if pchelper.get_obj(content, vim.VirtualMachine, args.vm_name) is not None:
        tasks.fail(f"{args.vm_name} still in the inventory")
    if content.searchIndex.FindByInventoryPath(inventoryPath=path) is not None:
        tasks.fail(f"FindByInventoryPath({path}) still finds it")
    try:
        vm.runtime.powerState  # noqa: B018 (a read of the destroyed VM)
    except vmodl.fault.ManagedObjectNotFound:
        print(f"Reading {moid} now: ManagedObjectNotFound")
    else:
        tasks.fail(f"{moid} can still be read after Destroy_Task")
    removed = content.eventManager.QueryEvents(vim.event.EventFilterSpec(eventTypeId=["VmRemovedEvent"])) or []
    mine = [e for e in removed if e.vm is not None and e.vm.vm is not None and e.vm.vm._moId == moid]
    if not mine:
        tasks.fail(f"no VmRemovedEvent for {moid} among {len(removed)}")
    print(f"VmRemovedEvent {mine[0].key}: {mine[0].fullFormattedMessage}")
    print(f"Destroyed {args.vm_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
