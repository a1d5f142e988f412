#!/usr/bin/env python3
"""Print a VM's events with EventManager.QueryEvents, and check that expected event types are there.

Queries by entity (the VM itself), then by event type across the inventory, and prints each event
as vCenter formats it (``fullFormattedMessage``).
"""

from __future__ import annotations

import sys

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("--expect", action="append", default=[],
                        help="event type that must be among the VM's events (repeatable), e.g. VmPoweredOnEvent")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    manager = content.eventManager
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")

    by_entity = vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self")
    events = manager.QueryEvents(vim.event.EventFilterSpec(entity=by_entity)) or []
    print(f"{len(events)} event(s) of {vm.name} ({vm._moId}):")
    for event in sorted(events, key=lambda e: e.key):
        print(f"  {event.key} {event.createdTime:%Y-%m-%dT%H:%M:%S} {type(event).__name__} "
              f"user={event.userName or '-'} vm={event.vm.name if event.vm else '-'}: {event.fullFormattedMessage}")
        if event.vm is None or event.vm.vm != vm:
            tasks.fail(f"event {event.key} ({type(event).__name__}) names VM {event.vm} in a query for {vm._moId}")
    seen = {type(event).__name__.rsplit(".", 1)[-1] for event in events}
    missing = [name for name in args.expect if name not in seen]
    if missing:
        tasks.fail(f"no {', '.join(missing)} among the events of {vm.name} (saw {', '.join(sorted(seen))})")

    for name in args.expect:
        typed = manager.QueryEvents(vim.event.EventFilterSpec(eventTypeId=[name])) or []
        names = sorted({e.vm.name for e in typed if e.vm})
        print(f"QueryEvents(eventTypeId={name}): {len(typed)} event(s), VMs {', '.join(names)}")
        if vm.name not in names or any(type(e).__name__.rsplit(".", 1)[-1] != name for e in typed):
            tasks.fail(f"a query by type {name} answered {[type(e).__name__ for e in typed]}")
    print(f"{vm.name}: {', '.join(sorted(seen))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
