#!/usr/bin/env python3
"""List the inventory: datacenters, clusters, hosts with hardware, datastores, networks and VMs.

Hosts, clusters, datastores and networks are read attribute by attribute from container views;
VMs come from one RetrieveProperties call that walks the inventory from the root folder with
hand-built traversal specs, and each VM's values are then read again by attribute and compared.
"""

from __future__ import annotations

import sys

from pyVmomi import vim
from tools import cli, pchelper, service_instance

GB = 1024**3


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    about = content.about
    print(f"Connected to {about.fullName} (API {about.apiVersion}, {about.apiType})")
    problems: list[str] = []

    view = pchelper.container_view(content, [vim.Datacenter])
    datacenters = list(view.view)
    view.DestroyView()
    for dc in datacenters:
        print(f"Datacenter: {dc.name} vmFolder={dc.vmFolder.name} hostFolder={dc.hostFolder.name}")
    if not datacenters:
        problems.append("no datacenter")

    view = pchelper.container_view(content, [vim.ClusterComputeResource])
    for cluster in view.view:
        summary = cluster.summary
        print(f"Cluster: {cluster.name} hosts={summary.numHosts} cores={summary.numCpuCores} "
              f"cpu_mhz={summary.totalCpu} memory_gb={summary.totalMemory // GB} "
              f"drs={cluster.configurationEx.drsConfig.enabled} ha={cluster.configuration.dasConfig.enabled} "
              f"pool={cluster.resourcePool.name}")
    view.DestroyView()

    view = pchelper.container_view(content, [vim.HostSystem])
    hosts = list(view.view)
    view.DestroyView()
    for host in hosts:
        hardware = host.hardware
        if hardware is None or not hardware.memorySize:
            problems.append(f"host {host.name} has no hardware.memorySize")
            continue
        summary = host.summary.hardware
        product = host.config.product
        print(f"Host: {host.name} parent={host.parent.name} state={host.runtime.connectionState} "
              f"power={host.runtime.powerState} vendor={summary.vendor!r} model={summary.model!r} "
              f"cpu={hardware.cpuInfo.numCpuPackages}x{hardware.cpuInfo.numCpuCores // hardware.cpuInfo.numCpuPackages}"
              f" cores={hardware.cpuInfo.numCpuCores} threads={hardware.cpuInfo.numCpuThreads} "
              f"memory_gb={hardware.memorySize // GB} product={product.fullName!r} "
              f"vms={len(host.vm)} datastores={','.join(ds.name for ds in host.datastore)}")
    if not hosts:
        problems.append("no host")

    view = pchelper.container_view(content, [vim.Datastore])
    datastores = list(view.view)
    view.DestroyView()
    for ds in datastores:
        summary = ds.summary
        if not summary.capacity:
            problems.append(f"datastore {ds.name} has no capacity")
        used = 100 * (summary.capacity - summary.freeSpace) / summary.capacity if summary.capacity else 0
        print(f"Datastore: {ds.name} type={summary.type} capacity_gb={summary.capacity // GB} "
              f"free_gb={summary.freeSpace // GB} used={used:.1f}% accessible={summary.accessible} "
              f"url={summary.url} hosts={len(ds.host)} vms={len(ds.vm)}")
    if not datastores:
        problems.append("no datastore")

    view = pchelper.container_view(content, [vim.Network])
    for network in view.view:
        print(f"Network: {network.name} hosts={len(network.host)} vms={len(network.vm)}")
    view.DestroyView()

    vms = pchelper.collect_from_root(si, vim.VirtualMachine,
                                     ["name", "runtime.powerState", "guest.ipAddress", "config.template"])
    for props in sorted(vms, key=lambda p: p["name"]):
        vm = props["obj"]
        # The same values read by attribute, as most scripts do.
        by_attribute = {"name": vm.summary.config.name, "runtime.powerState": vm.runtime.powerState,
                        "guest.ipAddress": vm.guest.ipAddress, "config.template": vm.config.template}
        for path, value in by_attribute.items():
            if props.get(path) != value:
                problems.append(f"VM {props['name']}: RetrieveProperties says {path}={props.get(path)!r}, "
                                f"the attribute reads {value!r}")
        print(f"VM: {props['name']} power={props['runtime.powerState']} ip={props.get('guest.ipAddress') or '-'} "
              f"template={props['config.template']} host={vm.runtime.host.name} "
              f"guest={vm.summary.config.guestFullName!r} tools={vm.guest.toolsRunningStatus}")
        # What getallvms-style scripts print from the summary.
        summary = vm.summary
        print(f"  path={summary.config.vmPathName} uuid={summary.config.uuid} "
              f"instanceUuid={summary.config.instanceUuid} cpus={summary.config.numCpu} "
              f"memory_mb={summary.config.memorySizeMB} nics={summary.config.numEthernetCards} "
              f"disks={summary.config.numVirtualDisks} heartbeat={summary.quickStats.guestHeartbeatStatus} "
              f"committed={summary.storage.committed if summary.storage else '-'}")
        for nic in vm.guest.net:
            print(f"  nic {nic.macAddress} network={nic.network} connected={nic.connected} "
                  f"ips={','.join(nic.ipAddress)}")
    if not vms:
        problems.append("no virtual machine")

    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    print(f"{len(datacenters)} datacenter(s), {len(hosts)} host(s), {len(datastores)} datastore(s), "
          f"{len(vms)} VM(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
