#!/usr/bin/env python3
"""Find a VM by name four ways and check they agree: a container view, and SearchIndex
FindByInventoryPath, FindByDnsName and FindByIp (the last two from what VMware Tools report).

The VM's ESXi host is found by its DNS name and management address too."""

from __future__ import annotations

import sys

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("-d", "--datacenter", help="datacenter (default: the VM's)")
    parser.add_argument("--guest", action="store_true",
                        help="also find it by DNS name and IP address (the VM must report both)")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    search = content.searchIndex

    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name} in a container view of the inventory")
    print(f"container view: {vm.name} is {vm._moId}")

    # The inventory path of a VM: datacenter, its vmFolder ("vm"), folders, name.
    parts = []
    node = vm.parent
    while not isinstance(node, vim.Datacenter):
        parts.append(node.name)
        node = node.parent
    datacenter = node
    if args.datacenter and args.datacenter != datacenter.name:
        tasks.fail(f"{args.vm_name} is in datacenter {datacenter.name}, not {args.datacenter}")
    path = "/".join([datacenter.name, *reversed(parts), vm.name])
    found = {"FindByInventoryPath": search.FindByInventoryPath(inventoryPath=path)}
    print(f"FindByInventoryPath({path}): {found['FindByInventoryPath']}")
    missing = search.FindByInventoryPath(inventoryPath=f"{datacenter.name}/vm/no-such-vm-{vm._moId}")
    print(f"FindByInventoryPath of a missing VM: {missing}")
    if missing is not None:
        tasks.fail("FindByInventoryPath found a VM that does not exist")

    if args.guest:
        guest = vm.guest
        if not guest.ipAddress or not guest.hostName:
            tasks.fail(f"{args.vm_name} reports ip={guest.ipAddress} hostname={guest.hostName} "
                       f"(tools {guest.toolsRunningStatus})")
        found["FindByDnsName"] = search.FindByDnsName(datacenter=datacenter, dnsName=guest.hostName, vmSearch=True)
        print(f"FindByDnsName({guest.hostName}): {found['FindByDnsName']}")
        found["FindByIp"] = search.FindByIp(ip=guest.ipAddress, vmSearch=True)
        print(f"FindByIp({guest.ipAddress}): {found['FindByIp']}")

    # The VM's host, found the way host scripts do: by its DNS name and its management address.
    host = vm.runtime.host
    address = host.config.network.vnic[0].spec.ip.ipAddress
    by_name = search.FindByDnsName(dnsName=host.name, vmSearch=False)
    by_address = search.FindByIp(ip=address, vmSearch=False)
    print(f"host {host.name}: FindByDnsName={by_name} FindByIp({address})={by_address}")
    if by_name is None or by_name._moId != host._moId or by_address is None or by_address._moId != host._moId:
        tasks.fail(f"the VM's host {host._moId} was not found by its DNS name and address")

    wrong = {how: obj for how, obj in found.items() if obj is None or obj._moId != vm._moId}
    if wrong:
        tasks.fail(f"{', '.join(f'{how} answered {obj}' for how, obj in wrong.items())}, not {vm._moId}")
    print(f"Found {args.vm_name} as {vm._moId} by name, {', '.join(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
