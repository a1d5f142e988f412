"""EnvironmentBrowser: the environment a compute resource presents for creating and configuring a VM.

Each cluster has one (ComputeResource.environmentBrowser); its VMs answer it as their own
(VirtualMachine.environmentBrowser). Per the API reference it offers the virtual hardware
(QueryConfigOptionDescriptor, QueryConfigOption, QueryConfigOptionEx: config_option.py), the
device targets (QueryConfigTarget: the hosts' datastores and networks, CPUs and memory) and the
compute resource's capabilities (QueryTargetCapabilities). Each may name one of the cluster's
hosts; "If invoked on a cluster with no hosts ... null is returned", and an invalid host is
InvalidArgument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import vmomi_method
from .config_option import DEFAULT_VERSION, VERSIONS, config_option, config_option_descriptors
from .host import capability
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .inventory import ClusterComputeResource, HostSystem

MB = 1024**2
#: VMFS 6's largest file (VmfsDatastoreInfo.maxFileSize, as Datastore.info reports it).
VMFS_MAX_FILE = 62 * 1024**4


class EnvironmentBrowser(Unmodelled):
    """vim.EnvironmentBrowser of a cluster."""

    vim_type = vim.EnvironmentBrowser

    def __init__(self, vc: VCenter, mo_id: str, cluster: ClusterComputeResource) -> None:
        super().__init__(vc, mo_id)
        self.cluster = cluster

    def prop_datastoreBrowser(self) -> Any:
        # "DatastoreBrowser to browse datastores that are available on this entity": a host's browser
        # covers the datastores it mounts, and every host of a simulated cluster mounts them all.
        return self.cluster.hosts[0].browser.ref if self.cluster.hosts else None

    def _hosts(self, host: Any) -> list[HostSystem]:
        """The cluster's hosts, or just ``host`` if given (InvalidArgument if it is not one of them)."""
        if host is None:
            return list(self.cluster.hosts)
        chosen = next((h for h in self.cluster.hosts if h.mo_id == getattr(host, "_moId", None)), None)
        if chosen is None:
            raise vmodl.fault.InvalidArgument(msg=f"Host {getattr(host, '_moId', host)} is not part of "
                                                  f"{self.cluster.name}.", invalidProperty="host")
        return [chosen]

    def _option(self, key: str | None, host: Any) -> Any:
        version = DEFAULT_VERSION
        if key:
            if key not in VERSIONS:
                raise vmodl.fault.InvalidArgument(msg=f"Invalid configuration option key '{key}'.",
                                                  invalidProperty="key")
            version = VERSIONS[key]
        return config_option(version) if self._hosts(host) else None

    @vmomi_method()
    def QueryConfigOptionDescriptor(self, ctx: CallContext) -> list[Any]:
        with self.vc.lock:
            return config_option_descriptors([h.ref for h in self.cluster.hosts])

    @vmomi_method()
    def QueryConfigOption(self, ctx: CallContext, key: str | None = None, host: Any = None) -> Any:
        # "If neither is specified, then the default ConfigOption for this environment browser is
        # returned. Typically, the default contains the options for the most recent virtual hardware."
        with self.vc.lock:
            return self._option(key, host)

    @vmomi_method()
    def QueryConfigOptionEx(self, ctx: CallContext, spec: Any = None) -> Any:
        # ConfigOptionQuerySpec.guestId: "If guestId is nonempty, the guestOSDescriptor array of the
        # config option is filtered to match against the guest IDs in the spec. If there is no match,
        # the whole list is returned."
        with self.vc.lock:
            spec = spec or vim.EnvironmentBrowser.ConfigOptionQuerySpec()
            wanted = list(spec.guestId or ())
            option = self._option(spec.key, spec.host)
            if option is not None and wanted:
                matching = [d for d in option.guestOSDescriptor if d.id in wanted]
                if matching:
                    option.guestOSDescriptor = matching
            return option

    @vmomi_method()
    def QueryConfigTarget(self, ctx: CallContext, host: Any = None) -> Any:
        with self.vc.lock:
            hosts = self._hosts(host)
            return config_target(hosts, all_hosts=self.cluster.hosts) if hosts else None

    @vmomi_method()
    def QueryTargetCapabilities(self, ctx: CallContext, host: Any = None) -> Any:
        # Without a host: "the intersection of the capabilities supported by all the hosts in the
        # cluster", which for the cluster's identical ESXi 8 hosts is each one's.
        with self.vc.lock:
            return capability() if self._hosts(host) else None


def config_target(hosts: list[HostSystem], all_hosts: list[HostSystem]) -> Any:
    """ConfigTarget of ``hosts``: the most a VM can get on one of them, and their datastores and networks.

    ConfigTarget.numCpus: "Number of logical CPUs that can be used to run virtual machines";
    numCpuCores: "Number of physical CPU cores"; maxMemMBOptimalPerf: "Maximum recommended memory
    size, in MB, for creating a new virtual machine" (one NUMA node's memory). A VM runs on one
    host, so over several hosts each figure is the largest. A datastore or network every host of
    the cluster has is tagged clusterWide (TargetInfo.configurationTag).
    """
    biggest = max(hosts, key=lambda h: (h.hardware.threads, h.hardware.memory_bytes))
    hw = biggest.hardware
    datastores: dict[str, Any] = {}
    networks: dict[str, Any] = {}
    for host in hosts:
        for ds in host.datastores:
            datastores.setdefault(ds.mo_id, ds)
        for net in host.networks:
            networks.setdefault(net.mo_id, net)

    def tags(on_host: Any) -> list[str]:
        return ["clusterWide"] if all(on_host(h) for h in all_hosts) else []

    return vim.vm.ConfigTarget(
        numCpus=hw.threads, numCpuCores=hw.cores, numNumaNodes=hw.cpu_packages, maxCpusPerHost=hw.threads,
        smcPresent=False, maxMemMBOptimalPerf=hw.memory_bytes // MB // hw.cpu_packages,
        supportedMaxMemMB=min(DEFAULT_VERSION.max_memory_mb, hw.memory_bytes // MB),
        datastore=[vim.vm.DatastoreInfo(
            name=ds.name, configurationTag=tags(lambda h, ds=ds: ds in h.datastores), datastore=ds.prop_summary(),
            capability=ds.prop_capability(), maxFileSize=VMFS_MAX_FILE, maxVirtualDiskCapacity=VMFS_MAX_FILE,
            maxPhysicalRDMFileSize=VMFS_MAX_FILE, maxVirtualRDMFileSize=VMFS_MAX_FILE, mode="readWrite",
            vStorageSupport="vStorageUnsupported") for ds in datastores.values()],
        network=[vim.vm.NetworkInfo(name=net.name, configurationTag=tags(lambda h, net=net: net in h.networks),
                                    network=net.prop_summary()) for net in networks.values()])
