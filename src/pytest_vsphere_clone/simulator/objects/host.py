"""What a simulated ESXi 8 host reports: hardware, product, network, storage, and its configManager.

The shapes follow captures of real hosts (govmomi's ``simulator/esx`` models of
``govc host.info -dump``): a two-socket server, one standard vSwitch with the
vCenter's port groups and a management VMkernel NIC, one VMFS 6 volume per
datastore. The configManager MoRefs are named as vCenter names a host's
managers (``<manager>-<host number>``, ``EsxHostAdvSettings-<n>``).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from .base import SimObject, vmomi_method
from .licensing import LicenseManager
from .options import OptionManager
from .unmodelled import Unmodelled, plain_manager

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .inventory import Datastore, HostSystem

GB = 1024**3

#: ESXi 8.0 Update 3, the release that goes with the simulated vCenter 8.0.3.
ESXI_PRODUCT = {
    "name": "VMware ESXi", "fullName": "VMware ESXi 8.0.3 build-24022510", "vendor": "VMware, Inc.",
    "version": "8.0.3", "build": "24022510", "localeVersion": "INTL", "localeBuild": "000", "osType": "vmnix-x86",
    "productLineId": "embeddedEsx", "apiType": "HostAgent", "apiVersion": "8.0.3.0",
    "licenseProductName": "VMware ESX Server", "licenseProductVersion": "8.0",
}


@dataclass(frozen=True)
class HostHardware:
    """The physical server behind a simulated host (an inventory file may change sizes)."""

    vendor: str = "Dell Inc."
    model: str = "PowerEdge R650"
    cpu_model: str = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    cpu_packages: int = 2
    cores_per_package: int = 32
    threads_per_core: int = 2
    cpu_mhz: int = 2000
    memory_bytes: int = 512 * GB
    nics: int = 2
    hbas: int = 3

    @property
    def cores(self) -> int:
        return self.cpu_packages * self.cores_per_package

    @property
    def threads(self) -> int:
        return self.cores * self.threads_per_core


def product() -> Any:
    return vim.AboutInfo(**ESXI_PRODUCT)


def host_number(host: HostSystem) -> str:
    """``host-12`` -> ``12``: vCenter names a host's managers after it."""
    return host.mo_id.rsplit("-", 1)[-1]


def _digest(host: HostSystem, what: str) -> bytes:
    return hashlib.sha256(f"{host.vc.instance_uuid}/{host.name}/{what}".encode()).digest()


def host_uuid(host: HostSystem) -> str:
    return str(uuid.UUID(bytes=_digest(host, "uuid")[:16]))


def mac(host: HostSystem, what: str) -> str:
    tail = _digest(host, what)[:3]
    return "00:50:56:" + ":".join(f"{b & 0x3F if i == 0 else b:02x}" for i, b in enumerate(tail))


def _describe(key: str, label: str, summary: str | None = None) -> Any:
    return vim.ElementDescription(key=key, label=label, summary=summary or label)


def identifying_info(host: HostSystem) -> list[Any]:
    service_tag = _digest(host, "serial").hex()[:7].upper()
    return [
        vim.host.SystemIdentificationInfo(identifierValue=" No Asset Tag",
                                          identifierType=_describe("AssetTag", "Asset Tag", "Asset tag of the system")),
        vim.host.SystemIdentificationInfo(identifierValue=service_tag,
                                          identifierType=_describe("ServiceTag", "Service tag",
                                                                   "Service tag of the system")),
        vim.host.SystemIdentificationInfo(identifierValue=service_tag,
                                          identifierType=_describe("EnclosureSerialNumberTag", "Enclosure serial "
                                                                   "number tag", "Enclosure serial number tag")),
        vim.host.SystemIdentificationInfo(identifierValue=service_tag,
                                          identifierType=_describe("SerialNumberTag", "Serial number tag",
                                                                   "Serial number tag")),
    ]


def hardware_summary(host: HostSystem) -> Any:
    hw = host.hardware
    return vim.host.Summary.HardwareSummary(
        vendor=hw.vendor, model=hw.model, uuid=host_uuid(host), otherIdentifyingInfo=identifying_info(host),
        memorySize=hw.memory_bytes, cpuModel=hw.cpu_model, cpuMhz=hw.cpu_mhz, numCpuPkgs=hw.cpu_packages,
        numCpuCores=hw.cores, numCpuThreads=hw.threads, numNics=hw.nics, numHBAs=hw.hbas)


def hardware_info(host: HostSystem) -> Any:
    hw = host.hardware
    hz = hw.cpu_mhz * 1_000_000
    per_package = hw.cores_per_package * hw.threads_per_core
    packages = [vim.host.CpuPackage(index=i, vendor="intel", hz=hz, busHz=100_000_000, description=hw.cpu_model,
                                    threadId=list(range(i * per_package, (i + 1) * per_package)))
                for i in range(hw.cpu_packages)]
    node_memory = hw.memory_bytes // hw.cpu_packages
    numa = vim.host.NumaInfo(type="NUMA", numNodes=hw.cpu_packages, numaNode=[
        vim.host.NumaNode(typeId=i, cpuID=list(range(i * per_package, (i + 1) * per_package)),
                          memoryRangeBegin=i * node_memory, memoryRangeLength=node_memory)
        for i in range(hw.cpu_packages)])
    return vim.host.HardwareInfo(
        systemInfo=vim.host.SystemInfo(vendor=hw.vendor, model=hw.model, uuid=host_uuid(host),
                                       otherIdentifyingInfo=identifying_info(host),
                                       serialNumber=identifying_info(host)[1].identifierValue),
        cpuPowerManagementInfo=vim.host.CpuPowerManagementInfo(currentPolicy="Balanced",
                                                               hardwareSupport="ACPI P-states, ACPI C-states"),
        cpuInfo=vim.host.CpuInfo(numCpuPackages=hw.cpu_packages, numCpuCores=hw.cores, numCpuThreads=hw.threads,
                                 hz=hz),
        cpuPkg=packages, memorySize=hw.memory_bytes, numaInfo=numa, smcPresent=False,
        biosInfo=vim.host.BIOSInfo(biosVersion="1.13.2", releaseDate=datetime(2024, 3, 20, tzinfo=timezone.utc),
                                   vendor=hw.vendor))


def _vnic(host: HostSystem) -> Any:
    return vim.host.VirtualNic(
        device="vmk0", key="key-vim.host.VirtualNic-vmk0", portgroup="Management Network",
        port="key-vim.host.PortGroup.Port-33554436",
        spec=vim.host.VirtualNic.Specification(
            ip=vim.host.IpConfig(dhcp=False, ipAddress=host.address, subnetMask="255.0.0.0"),
            mac=mac(host, "vmk0"), portgroup="Management Network", mtu=1500, tsoEnabled=True,
            netStackInstanceKey="defaultTcpipStack"))


def _policy() -> Any:
    return vim.host.NetworkPolicy(
        security=vim.host.NetworkPolicy.SecurityPolicy(allowPromiscuous=False, macChanges=False,
                                                       forgedTransmits=False),
        nicTeaming=vim.host.NetworkPolicy.NicTeamingPolicy(
            policy="loadbalance_srcid", reversePolicy=True, notifySwitches=True, rollingOrder=False,
            nicOrder=vim.host.NetworkPolicy.NicOrderPolicy(activeNic=["vmnic0", "vmnic1"])),
        shapingPolicy=vim.host.NetworkPolicy.TrafficShapingPolicy(enabled=False))


def network_info(host: HostSystem) -> Any:
    groups = ["Management Network", *[n.name for n in host.networks]]
    portgroups = [vim.host.PortGroup(
        key=f"key-vim.host.PortGroup-{name}", vswitch="key-vim.host.VirtualSwitch-vSwitch0",
        computedPolicy=_policy(),
        spec=vim.host.PortGroup.Specification(name=name, vlanId=0, vswitchName="vSwitch0",
                                              policy=vim.host.NetworkPolicy()))
        for name in groups]
    pnics = [vim.host.PhysicalNic(
        device=f"vmnic{i}", key=f"key-vim.host.PhysicalNic-vmnic{i}", driver="i40en", pci=f"0000:31:00.{i}",
        mac=mac(host, f"vmnic{i}"), wakeOnLanSupported=False,
        linkSpeed=vim.host.PhysicalNic.LinkSpeedDuplex(speedMb=10000, duplex=True),
        spec=vim.host.PhysicalNic.Specification(
            linkSpeed=vim.host.PhysicalNic.LinkSpeedDuplex(speedMb=10000, duplex=True)))
        for i in range(host.hardware.nics)]
    vswitch = vim.host.VirtualSwitch(
        name="vSwitch0", key="key-vim.host.VirtualSwitch-vSwitch0", numPorts=2560, numPortsAvailable=2548,
        mtu=1500, portgroup=[g.key for g in portgroups], pnic=[p.key for p in pnics],
        spec=vim.host.VirtualSwitch.Specification(
            numPorts=128, mtu=1500, policy=_policy(),
            bridge=vim.host.VirtualSwitch.BondBridge(nicDevice=[p.device for p in pnics])))
    return vim.host.NetworkInfo(vswitch=[vswitch], portgroup=portgroups, pnic=pnics, vnic=[_vnic(host)],
                                dnsConfig=dns_config(host), ipRouteConfig=route_config(host))


def dns_config(host: HostSystem) -> Any:
    short, _, domain = host.name.partition(".")
    return vim.host.DnsConfig(dhcp=False, hostName=short, domainName=domain, address=["127.0.0.53"],
                              searchDomain=[domain] if domain else [])


def route_config(host: HostSystem) -> Any:
    return vim.host.IpRouteConfig(defaultGateway="127.0.0.1", gatewayDevice="vmk0")


def volume_uuid(ds: Datastore) -> str:
    digest = hashlib.sha256(ds.mo_id.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:16]}-{digest[16:20]}-{digest[20:32]}"


def vmfs_volume(ds: Datastore) -> Any:
    return vim.host.VmfsVolume(
        type="VMFS", name=ds.name, capacity=ds.capacity, blockSizeMb=1, blockSize=1024, unmapGranularity=1024,
        unmapPriority="low", maxBlocks=63963136, majorVersion=6, version="6.82", uuid=volume_uuid(ds),
        extent=[vim.host.ScsiDisk.Partition(diskName=ds.disk_name, partition=1)], vmfsUpgradable=False,
        ssd=True, local=False, scsiDiskType="native512")


def file_system_volumes(host: HostSystem) -> Any:
    mounts = [vim.host.FileSystemMountInfo(
        mountInfo=vim.host.MountInfo(path=f"/vmfs/volumes/{volume_uuid(ds)}", accessMode="readWrite", mounted=True,
                                     accessible=True),
        volume=vmfs_volume(ds)) for ds in host.datastores]
    return vim.host.FileSystemVolumeInfo(volumeTypeList=["VMFS", "NFS", "NFS41", "vsan", "VVOL", "VFFS", "OTHER",
                                                         "PMEM"], mountInfo=mounts)


def capability() -> Any:
    """HostCapability: every required flag answered as an ESXi 8 host on licensed hardware does."""
    unsupported = {"recordReplaySupported", "smpFtSupported", "ftSupported", "standbySupported",
                   "vrNfcNicSelectionSupported", "hbrNicSelectionSupported", "vmfsDatastoreMountCapable"}
    flags = {p.name: p.name not in unsupported for p in vim.host.Capability._GetPropertyList()
             if p.type is bool and not p.flags & 4}  # VmomiSupport.F_OPTIONAL
    return vim.host.Capability(**flags, maxSupportedVMs=1024, maxRunningVMs=1024, maxSupportedVcpus=768,
                               maxRegisteredVMs=1024, supportedVmfsMajorVersion=[6],
                               maxHostSupportedVcpus=768, maxNumDisksSVMotion=248)


def config_info(host: HostSystem) -> Any:
    return vim.host.ConfigInfo(
        host=host.ref, product=product(),
        hyperThread=vim.host.CpuSchedulerSystem.HyperThreadScheduleInfo(available=True, active=True, config=True),
        network=network_info(host), fileSystemVolume=file_system_volumes(host),
        dateTimeInfo=date_time_info(), datastorePrincipal="root", powerSystemInfo=power_info(),
        vmotion=vim.host.VMotionInfo(netConfig=vmotion_net_config(host)),
        virtualNicManagerInfo=virtual_nic_manager_info(host), capabilities=net_capabilities(),
        option=[vim.option.OptionValue(key=k, value=v) for k, v in advanced_settings(host).items()],
        adminDisabled=False, lockdownMode="lockdownDisabled")


def quick_stats(host: HostSystem) -> Any:
    from .virtual_machine import VirtualMachine

    running = [vm for vm in host.vc.of_type(VirtualMachine) if vm.host is host and vm.power_state == "poweredOn"]
    # Memory: what the running VMs are configured with (a simulated guest has no ballooning or sharing).
    # Quick statistics are refreshed every 20 s (PerfProviderSummary.refreshRate), uptime with them.
    uptime = int(time.time() - host.boot_time) // 20 * 20
    return vim.host.Summary.QuickStats(overallMemoryUsage=sum(vm.memory_mb for vm in running), uptime=uptime)


def date_time_info() -> Any:
    return vim.host.DateTimeInfo(
        timeZone=vim.host.DateTimeSystem.TimeZone(key="UTC", name="UTC", description="UTC", gmtOffset=0),
        ntpConfig=vim.host.NtpConfig(server=[]))


def power_info() -> Any:
    return vim.host.PowerSystem.Info(currentPolicy=_power_policies()[1])


def _power_policies() -> list[Any]:
    return [vim.host.PowerSystem.PowerPolicy(key=1, name="PowerPolicy.static.name", shortName="static",
                                             description="PowerPolicy.static.description"),
            vim.host.PowerSystem.PowerPolicy(key=2, name="PowerPolicy.dynamic.name", shortName="dynamic",
                                             description="PowerPolicy.dynamic.description"),
            vim.host.PowerSystem.PowerPolicy(key=3, name="PowerPolicy.low.name", shortName="low",
                                             description="PowerPolicy.low.description"),
            vim.host.PowerSystem.PowerPolicy(key=4, name="PowerPolicy.custom.name", shortName="custom",
                                             description="PowerPolicy.custom.description")]


def vmotion_net_config(host: HostSystem) -> Any:
    return vim.host.VMotionSystem.NetConfig(candidateVnic=[_vnic(host)],
                                            selectedVnic="VMotionConfig.vmotion.key-vim.host.VirtualNic-vmk0")


def virtual_nic_manager_info(host: HostSystem) -> Any:
    def config(kind: str, selected: bool) -> Any:
        nic = _vnic(host)
        nic.key = f"{kind}.key-vim.host.VirtualNic-vmk0"
        return vim.host.VirtualNicManager.NetConfig(nicType=kind, multiSelectAllowed=True, candidateVnic=[nic],
                                                    selectedVnic=[nic.key] if selected else [])

    return vim.host.VirtualNicManagerInfo(netConfig=[config("management", True), config("vmotion", True),
                                                     config("faultToleranceLogging", False),
                                                     config("vSphereProvisioning", False)])


def net_capabilities() -> Any:
    return vim.host.NetCapabilities(canSetPhysicalNicLinkSpeed=True, supportsNicTeaming=True,
                                    nicTeamingPolicy=["loadbalance_ip", "loadbalance_srcmac", "loadbalance_srcid",
                                                      "failover_explicit"],
                                    supportsVlan=True, usesServiceConsoleNic=False, supportsNetworkHints=True,
                                    maxPortGroupsPerVswitch=512, vswitchConfigSupported=True,
                                    vnicConfigSupported=True, ipRouteConfigSupported=True, dnsConfigSupported=True,
                                    dhcpOnVnicSupported=True, ipV6Supported=True)


def advanced_settings(host: HostSystem) -> dict[str, Any]:
    """A few of a host's advanced options (OptionManager EsxHostAdvSettings)."""
    return {"Misc.HostName": host.name.partition(".")[0], "Config.HostAgent.log.level": "info",
            "Config.HostAgent.plugins.solo.enableMob": False, "UserVars.SuppressShellWarning": 0,
            "Syslog.global.logHost": "", "Mem.ShareForceSalting": 2, "Net.TcpipHeapSize": 0,
            "VMkernel.Boot.hyperthreading": True}


def services() -> list[Any]:
    def service(key: str, label: str, running: bool, policy: str, required: bool = False) -> Any:
        return vim.host.Service(key=key, label=label, required=required, uninstallable=False, running=running,
                                policy=policy, ruleset=[])

    return [service("DCUI", "Direct Console UI", True, "on"), service("TSM", "ESXi Shell", False, "off"),
            service("TSM-SSH", "SSH", False, "off"), service("lbtd", "Load-Based Teaming Daemon", True, "on"),
            service("ntpd", "NTP Daemon", False, "off"), service("sfcbd-watchdog", "CIM Server", False, "on"),
            service("snmpd", "SNMP Server", False, "on"), service("vpxa", "VMware vCenter Agent", True, "on", True)]


def firewall_info() -> Any:
    def ruleset(key: str, label: str, port: int, direction: str, enabled: bool) -> Any:
        return vim.host.Ruleset(key=key, label=label, required=False, enabled=enabled,
                                rule=[vim.host.Ruleset.Rule(port=port, direction=direction, protocol="tcp")])

    return vim.host.FirewallInfo(
        defaultPolicy=vim.host.FirewallInfo.DefaultPolicy(incomingBlocked=True, outgoingBlocked=True),
        ruleset=[ruleset("sshServer", "SSH Server", 22, "inbound", True),
                 ruleset("vSphereClient", "vSphere Web Client", 443, "inbound", True),
                 ruleset("vpxHeartbeats", "VMware vCenter Agent", 902, "outbound", True),
                 ruleset("webAccess", "vSphere Web Access", 80, "inbound", True)])


class HostDateTimeSystem(Unmodelled):
    """vim.host.DateTimeSystem: the host's clock is the simulator's."""

    vim_type = vim.host.DateTimeSystem

    def prop_dateTimeInfo(self) -> Any:
        return date_time_info()

    @vmomi_method()
    def QueryDateTime(self, ctx: CallContext) -> datetime:
        return datetime.now(timezone.utc)


class _HostManager(Unmodelled):
    """A host manager whose properties come from ``getters`` (name -> callable on the host)."""

    def __init__(self, vc: VCenter, mo_id: str, host: HostSystem, getters: dict[str, Any]) -> None:
        super().__init__(vc, mo_id)
        self.host = host
        self.getters = getters

    def get_property(self, name: str) -> Any:
        getter = self.getters.get(name)
        return getter(self.host) if getter is not None else super().get_property(name)


def _host_manager(vim_type: type) -> type[_HostManager]:
    return type(f"Sim{vim_type.__name__.rsplit('.', 1)[-1]}", (_HostManager,), {"vim_type": vim_type})


HostDatastoreSystem = _host_manager(vim.host.DatastoreSystem)
HostNetworkSystem = _host_manager(vim.host.NetworkSystem)
HostStorageSystem = _host_manager(vim.host.StorageSystem)
HostFirewallSystem = _host_manager(vim.host.FirewallSystem)
HostServiceSystem = _host_manager(vim.host.ServiceSystem)
HostVirtualNicManager = _host_manager(vim.host.VirtualNicManager)
HostVMotionSystem = _host_manager(vim.host.VMotionSystem)
HostCpuSchedulerSystem = _host_manager(vim.host.CpuSchedulerSystem)
HostAutoStartManager = _host_manager(vim.host.AutoStartManager)
HostPowerSystem = _host_manager(vim.host.PowerSystem)

#: configManager field -> (MoRef id prefix, managed object type) for the managers without modelled state.
PLAIN_MANAGERS: dict[str, tuple[str, type]] = {
    "memoryManager": ("memoryManagerSystem", vim.host.MemoryManagerSystem),
    "diagnosticSystem": ("diagnosticSystem", vim.host.DiagnosticSystem),
    "snmpSystem": ("snmpSystem", vim.host.SnmpSystem),
    "patchManager": ("patchManager", vim.host.PatchManager),
    "imageConfigManager": ("imageConfigManager", vim.host.ImageConfigManager),
    "firmwareSystem": ("firmwareSystem", vim.host.FirmwareSystem),
    "healthStatusSystem": ("healthStatusSystem", vim.host.HealthStatusSystem),
    "pciPassthruSystem": ("pciPassthruSystem", vim.host.PciPassthruSystem),
    "kernelModuleSystem": ("kernelModuleSystem", vim.host.KernelModuleSystem),
    "authenticationManager": ("authenticationManager", vim.host.AuthenticationManager),
    "cacheConfigurationManager": ("cacheConfigManager", vim.host.CacheConfigurationManager),
    "esxAgentHostManager": ("esxAgentHostManager", vim.host.EsxAgentHostManager),
    "iscsiManager": ("iscsiManager", vim.host.IscsiManager),
    "vFlashManager": ("vFlashManager", vim.host.VFlashManager),
    "vsanSystem": ("vsanSystem", vim.host.VsanSystem),
    "graphicsManager": ("graphicsManager", vim.host.GraphicsManager),
    "vsanInternalSystem": ("vsanInternalSystem", vim.host.VsanInternalSystem),
    "certificateManager": ("certificateManager", vim.host.CertificateManager),
    "cryptoManager": ("cryptoManager", vim.encryption.CryptoManagerHost),
    "hostAccessManager": ("hostAccessManager", vim.host.HostAccessManager),
    "assignableHardwareManager": ("assignableHardwareManager", vim.host.AssignableHardwareManager),
}


def build_config_managers(vc: VCenter, host: HostSystem) -> tuple[Any, list[SimObject]]:
    """The host's configManager value and the manager objects behind it (to register)."""
    n = host_number(host)
    objects: dict[str, SimObject] = {
        "datastoreSystem": HostDatastoreSystem(vc, f"datastoreSystem-{n}", host, {
            "datastore": lambda h: [d.ref for d in h.datastores],
            "capabilities": lambda h: vim.host.DatastoreSystem.Capabilities(
                nfsMountCreationRequired=True, nfsMountCreationSupported=True, localDatastoreSupported=False,
                vmfsExtentExpansionSupported=True)}),
        "networkSystem": HostNetworkSystem(vc, f"networkSystem-{n}", host, {
            "networkInfo": network_info, "dnsConfig": dns_config, "ipRouteConfig": route_config,
            "capabilities": lambda h: net_capabilities()}),
        "storageSystem": HostStorageSystem(vc, f"storageSystem-{n}", host, {
            "fileSystemVolumeInfo": file_system_volumes,
            "storageDeviceInfo": lambda h: vim.host.StorageDeviceInfo(softwareInternetScsiEnabled=False)}),
        "firewallSystem": HostFirewallSystem(vc, f"firewallSystem-{n}", host,
                                             {"firewallInfo": lambda h: firewall_info()}),
        "serviceSystem": HostServiceSystem(vc, f"serviceSystem-{n}", host, {
            "serviceInfo": lambda h: vim.host.ServiceInfo(service=services())}),
        "virtualNicManager": HostVirtualNicManager(vc, f"virtualNicManager-{n}", host,
                                                   {"info": virtual_nic_manager_info}),
        "vmotionSystem": HostVMotionSystem(vc, f"vmotionSystem-{n}", host, {
            "netConfig": vmotion_net_config,
            "ipConfig": lambda h: vim.host.IpConfig(dhcp=False, ipAddress=h.address, subnetMask="255.0.0.0")}),
        "cpuScheduler": HostCpuSchedulerSystem(vc, f"cpuSchedulerSystem-{n}", host, {
            "hyperthreadInfo": lambda h: vim.host.CpuSchedulerSystem.HyperThreadScheduleInfo(
                available=True, active=True, config=True)}),
        "autoStartManager": HostAutoStartManager(vc, f"autoStartManager-{n}", host, {
            "config": lambda h: vim.host.AutoStartManager.Config(defaults=vim.host.AutoStartManager.SystemDefaults(
                enabled=False, startDelay=120, stopDelay=120, waitForHeartbeat=False, stopAction="PowerOff"))}),
        "powerSystem": HostPowerSystem(vc, f"powerSystem-{n}", host, {
            "capability": lambda h: vim.host.PowerSystem.Capability(availablePolicy=_power_policies()),
            "info": lambda h: power_info()}),
        "dateTimeSystem": HostDateTimeSystem(vc, f"dateTimeSystem-{n}"),
        "advancedOption": OptionManager(vc, f"EsxHostAdvSettings-{n}", advanced_settings(host), open_keys=False),
        "licenseManager": LicenseManager(vc, f"licenseManager-{n}"),
    }
    for field_name, (prefix, vim_type) in PLAIN_MANAGERS.items():
        objects[field_name] = plain_manager(vc, vim_type, f"{prefix}-{n}")
    value = vim.host.ConfigManager(**{name: obj.ref for name, obj in objects.items()})
    return value, list(objects.values())
