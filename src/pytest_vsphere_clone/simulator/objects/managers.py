"""The ServiceContent managers beyond inventory, sessions and tasks: each present, its properties readable.

MoRef ids and types are a vCenter 8's (govmomi's ``simulator/vpx`` capture of
``ServiceContent``). Methods the simulator can answer truthfully are modelled;
the rest answer NotImplemented (see unmodelled.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .base import SimObject, vmomi_method
from .datastore_browser import datastore_tree, find_folder, parse_datastore_path
from .events import EventManager
from .licensing import LicenseAssignmentManager, LicenseManager
from .options import OptionManager
from .performance import PerformanceManager
from .unmodelled import Unmodelled, plain_manager

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .inventory import Datastore


def _describe(key: str, label: str | None = None) -> Any:
    text = label or key[:1].upper() + key[1:]
    return vim.ElementDescription(key=key, label=text, summary=text)


def _type_description(key: str) -> Any:
    # TypeDescription.key is a TypeName: the serializer wants the type itself.
    return vim.TypeDescription(key=VmomiSupport.GetWsdlType("urn:vim25", key), label=key, summary=key)


class UserDirectory(Unmodelled):
    """vim.UserDirectory: the simulator's SSO users."""

    vim_type = vim.UserDirectory

    def prop_domainList(self) -> list[str]:
        return sorted({name.partition("@")[2] or "localos" for name in self.vc.authorizer.users})

    @vmomi_method()
    def RetrieveUserGroups(self, ctx: CallContext, searchStr: str, exactMatch: bool, findUsers: bool,
                           findGroups: bool, domain: str | None = None, belongsToGroup: str | None = None,
                           belongsToUser: str | None = None) -> list[Any]:
        if not findUsers or belongsToGroup:
            return []  # the simulator has users only, in no groups
        found = []
        for name in sorted(self.vc.authorizer.users):
            user, _, user_domain = name.partition("@")
            if domain and user_domain.lower() != domain.lower():
                continue
            matched = user.lower() == searchStr.lower() if exactMatch else searchStr.lower() in user.lower()
            if matched or not searchStr:
                found.append(vim.UserSearchResult(principal=name, fullName=user, group=False))
        return found


class AlarmManager(Unmodelled):
    """vim.alarm.AlarmManager: no alarms are defined in the simulator, so none are triggered."""

    vim_type = vim.alarm.AlarmManager

    def prop_defaultExpression(self) -> list[Any]:
        # One blank expression of each kind an alarm may use (And/Or need members, so they are not here).
        return [vim.alarm.StateAlarmExpression(operator="isEqual", type=vim.VirtualMachine,
                                               statePath="runtime.powerState"),
                vim.alarm.MetricAlarmExpression(operator="isAbove", type=vim.VirtualMachine,
                                                metric=vim.PerformanceManager.MetricId(counterId=2, instance="")),
                vim.alarm.EventAlarmExpression(eventType=vim.event.Event, objectType=vim.VirtualMachine)]

    def prop_description(self) -> Any:
        return vim.alarm.AlarmDescription(
            expr=[_type_description(k) for k in ("StateAlarmExpression", "MetricAlarmExpression",
                                                   "EventAlarmExpression", "AndAlarmExpression",
                                                   "OrAlarmExpression")],
            stateOperator=[_describe("isEqual"), _describe("isUnequal")],
            metricOperator=[_describe("isAbove"), _describe("isBelow")],
            hostSystemConnectionState=[_describe(k) for k in ("connected", "notResponding", "disconnected")],
            virtualMachinePowerState=[_describe(k) for k in ("poweredOff", "poweredOn", "suspended")],
            datastoreConnectionState=[_describe(k) for k in ("connected", "disconnected")],
            hostSystemPowerState=[_describe(k) for k in ("poweredOn", "poweredOff", "standBy", "unknown")],
            virtualMachineGuestHeartbeatStatus=[_describe(k) for k in ("gray", "green", "yellow", "red")],
            entityStatus=[_describe(k) for k in ("gray", "green", "yellow", "red")],
            action=[_type_description(k) for k in ("SendEmailAction", "SendSNMPAction", "RunScriptAction",
                                                     "MethodAction")])

    @vmomi_method()
    def GetAlarm(self, ctx: CallContext, entity: Any = None) -> list[Any]:
        if entity is not None:
            self.vc.lookup(entity)
        return []

    @vmomi_method()
    def GetAlarmState(self, ctx: CallContext, entity: Any) -> list[Any]:
        self.vc.lookup(entity)
        return []


class ScheduledTaskManager(Unmodelled):
    """vim.scheduler.ScheduledTaskManager: no scheduled tasks exist."""

    vim_type = vim.scheduler.ScheduledTaskManager

    def prop_scheduledTask(self) -> list[Any]:
        return []

    def prop_description(self) -> Any:
        def detail(key: str, frequency: str) -> Any:
            return vim.scheduler.ScheduledTaskDescription.SchedulerDetail(
                key=VmomiSupport.GetWsdlType("urn:vim25", key), label=key, summary=key, frequency=frequency)

        return vim.scheduler.ScheduledTaskDescription(
            action=[_type_description(k) for k in ("MethodAction", "SendEmailAction")],
            schedulerInfo=[detail("OnceTaskScheduler", "once"), detail("HourlyTaskScheduler", "hourly"),
                           detail("DailyTaskScheduler", "daily"), detail("WeeklyTaskScheduler", "weekly"),
                           detail("MonthlyTaskScheduler", "monthly")],
            state=[_describe(k) for k in ("queued", "running", "success", "error")],
            dayOfWeek=[_describe(k) for k in ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                                              "saturday")],
            weekOfMonth=[_describe(k) for k in ("first", "second", "third", "fourth", "last")])

    @vmomi_method()
    def RetrieveEntityScheduledTask(self, ctx: CallContext, entity: Any = None) -> list[Any]:
        if entity is not None:
            self.vc.lookup(entity)
        return []


class ExtensionManager(Unmodelled):
    """vim.ExtensionManager: no extensions are registered."""

    vim_type = vim.ExtensionManager

    def prop_extensionList(self) -> list[Any]:
        return []

    @vmomi_method()
    def FindExtension(self, ctx: CallContext, extensionKey: str) -> Any:
        return None


class CustomizationSpecManager(Unmodelled):
    """vim.CustomizationSpecManager: a store of named customization specifications."""

    vim_type = vim.CustomizationSpecManager

    def __init__(self, vc: VCenter, mo_id: str) -> None:
        super().__init__(vc, mo_id)
        self.items: dict[str, Any] = {}

    def prop_info(self) -> list[Any]:
        return [item.info for item in self.items.values()]

    def prop_encryptionKey(self) -> list[int]:
        return list(self.vc.instance_uuid.encode()[:16])

    def _get(self, name: str) -> Any:
        item = self.items.get(name)
        if item is None:
            raise vim.fault.NotFound(msg=f"The specification '{name}' does not exist.")
        return item

    @vmomi_method()
    def DoesCustomizationSpecExist(self, ctx: CallContext, name: str) -> bool:
        return name in self.items

    @vmomi_method()
    def GetCustomizationSpec(self, ctx: CallContext, name: str) -> Any:
        with self.vc.lock:
            return self._get(name)

    @vmomi_method()
    def CreateCustomizationSpec(self, ctx: CallContext, item: Any) -> None:
        with self.vc.lock:
            if item.info.name in self.items:
                raise vim.fault.AlreadyExists(msg=f"The specification '{item.info.name}' already exists.",
                                              name=item.info.name)
            self.items[item.info.name] = item
            self.changed()

    @vmomi_method()
    def OverwriteCustomizationSpec(self, ctx: CallContext, item: Any) -> None:
        with self.vc.lock:
            self._get(item.info.name)
            self.items[item.info.name] = item
            self.changed()

    @vmomi_method()
    def DeleteCustomizationSpec(self, ctx: CallContext, name: str) -> None:
        with self.vc.lock:
            self._get(name)
            del self.items[name]
            self.changed()


class FileManager(Unmodelled):
    """vim.FileManager: folders on datastores (MakeDirectory, DeleteDatastoreFile_Task)."""

    vim_type = vim.FileManager

    def _datastore(self, path: str, datacenter: Any) -> tuple[Datastore, str]:
        from .inventory import Datacenter, Datastore

        ds_name, rel = parse_datastore_path(path)
        candidates = self.vc.of_type(Datastore)
        if datacenter is not None:
            dc = self.vc.lookup_as(datacenter, Datacenter)
            candidates = [d for d in candidates if d.parent in dc.datastore_folder.children() or d.parent is
                          dc.datastore_folder]
        ds = next((d for d in candidates if d.name == ds_name), None)
        if ds is None:
            raise vim.fault.InvalidDatastore(msg=f"Invalid datastore '{ds_name}'.", name=ds_name)
        return ds, rel

    @vmomi_method("Datastore.FileManagement")
    def MakeDirectory(self, ctx: CallContext, name: str, datacenter: Any = None,
                      createParentDirectories: bool | None = None) -> None:
        import time

        with self.vc.lock:
            ds, rel = self._datastore(name, datacenter)
            ctx.require("Datastore.FileManagement", ds)
            if not rel:
                raise vim.fault.FileAlreadyExists(msg=f"Cannot complete the operation because the file or folder "
                                                      f"{name} already exists", file=name)
            root = datastore_tree(self.vc, ds)
            if find_folder(root, rel) is not None:
                raise vim.fault.FileAlreadyExists(msg=f"Cannot complete the operation because the file or folder "
                                                      f"{name} already exists", file=name)
            parent = rel.rpartition("/")[0]
            if parent and find_folder(root, parent) is None and not createParentDirectories:
                raise vim.fault.FileNotFound(msg=f"File [{ds.name}] {parent} was not found",
                                             file=f"[{ds.name}] {parent}")
            parts = rel.split("/")
            for depth in range(1, len(parts) + 1):
                ds.directories.setdefault("/".join(parts[:depth]), time.time())
            ds.changed()

    @vmomi_method("Datastore.FileManagement")
    def DeleteDatastoreFile_Task(self, ctx: CallContext, name: str, datacenter: Any = None) -> Any:
        with self.vc.lock:
            ds, rel = self._datastore(name, datacenter)
            ctx.require("Datastore.FileManagement", ds)

        def delete() -> None:
            with self.vc.lock:
                root = datastore_tree(self.vc, ds)
                folder = find_folder(root, rel) if rel else None
                if folder is None:
                    parent, _, file_name = rel.rpartition("/")
                    holder = find_folder(root, parent)
                    entry = holder.files.get(file_name) if holder is not None else None
                    if entry is None:
                        raise vim.fault.FileNotFound(msg=f"File {name} was not found", file=name)
                    self._refuse(name, [entry])
                self._refuse(name, _all_files(folder))
                for key in [k for k in ds.directories if k == rel or k.startswith(rel + "/")]:
                    del ds.directories[key]
                ds.changed()

        return self.vc.tasks.start(ctx, ds, "DeleteDatastoreFile_Task", "delete_file", delete,
                                   description="FileManager.deleteFile")

    @staticmethod
    def _refuse(name: str, entries: list[Any]) -> None:
        owners = sorted({e.vm.name for e in entries if e.vm is not None} |
                        {e.layer.path for e in entries if e.layer is not None and e.vm is None})
        if owners:
            # The simulator keeps a VM's files while the VM (or a disk that another VM's chain needs) is
            # registered: what a vCenter would leave behind broken is refused here.
            raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {name}: it belongs to {', '.join(owners)}; "
                                                 f"destroy the virtual machine instead", file=name)


def _all_files(folder: Any) -> list[Any]:
    files = list(folder.files.values())
    for sub in folder.folders.values():
        files += _all_files(sub)
    return files


class VirtualDiskManager(Unmodelled):
    """vim.VirtualDiskManager: questions about the simulated disk files."""

    vim_type = vim.VirtualDiskManager

    @vmomi_method()
    def QueryVirtualDiskUuid(self, ctx: CallContext, name: str, datacenter: Any = None) -> str:
        with self.vc.lock:
            parse_datastore_path(name)
            layer = next((layer for layer in self.vc.disks.layers.values() if layer.path == name), None)
            if layer is None:
                raise vim.fault.FileNotFound(msg=f"File {name} was not found", file=name)
            # QueryVirtualDiskUuid answers the disk UUID as 16 hex bytes, the two halves joined by a dash.
            digits = layer.uuid.replace("-", "")
            pairs = [digits[i:i + 2] for i in range(0, 32, 2)]
            return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


class IpPoolManager(Unmodelled):
    """vim.IpPoolManager: no IP pools are defined."""

    vim_type = vim.IpPoolManager

    @vmomi_method()
    def QueryIpPools(self, ctx: CallContext, dc: Any) -> list[Any]:
        self.vc.lookup(dc)
        return []


class ServiceManager(Unmodelled):
    """vim.ServiceManager: no services are registered."""

    vim_type = vim.ServiceManager

    def prop_service(self) -> list[Any]:
        return []

    @vmomi_method()
    def QueryServiceList(self, ctx: CallContext, serviceName: str | None = None,
                         location: list[str] | None = None) -> list[Any]:
        return []


class NoGuests(Unmodelled):
    """A guest operations manager of a simulator started without guests: its methods say so."""

    def method(self, name: str) -> Any:
        impl = super().method(name)
        if impl is None:
            return None

        def answer(ctx: CallContext, **_: Any) -> Any:
            raise vmodl.fault.NotSupported(msg="Guest operations need real guests: this simulator was started "
                                               "without them (SimulatorConfig(guests=True)).")

        answer._vmomi = (None, None)  # type: ignore[attr-defined]
        return answer


def _no_guests(vim_type: type, mo_id: str, vc: VCenter, **props: Any) -> SimObject:
    obj = type(f"NoGuests{vim_type.__name__.rsplit('.', 1)[-1]}", (NoGuests,), {"vim_type": vim_type})(vc, mo_id)
    obj.props.update(props)
    return obj


#: vCenter's advanced settings (OptionManager VpxSettings) that clients commonly read.
VPX_SETTINGS: dict[str, Any] = {
    "VirtualCenter.InstanceName": "vcsa.sim.local", "VirtualCenter.FQDN": "vcsa.sim.local",
    "VirtualCenter.AutoManagedIPV4": "127.0.0.1", "config.vpxd.sso.default.admin": "Administrator@vsphere.local",
    "event.maxAge": 30, "event.maxAgeEnabled": True, "task.maxAge": 30, "task.maxAgeEnabled": True,
    "instance.id": 1, "config.log.level": "info",
}


def build_service_managers(vc: VCenter) -> dict[str, SimObject]:
    """Every ServiceContent manager not built elsewhere, by its ServiceContent field name."""
    guest_props = {"processManager": vim.vm.guest.ProcessManager("guestOperationsProcessManager"),
                   "fileManager": vim.vm.guest.FileManager("guestOperationsFileManager"),
                   "authManager": vim.vm.guest.AuthManager("guestOperationsAuthManager"),
                   "aliasManager": vim.vm.guest.AliasManager("guestOperationsAliasManager"),
                   "guestWindowsRegistryManager": vim.vm.guest.WindowsRegistryManager(
                       "guestOperationsWindowsRegistryManager")}
    managers: dict[str, SimObject] = {
        "setting": OptionManager(vc, "VpxSettings", VPX_SETTINGS, open_keys=True),
        "userDirectory": UserDirectory(vc, "UserDirectory"),
        "serviceManager": ServiceManager(vc, "ServiceMgr"),
        "perfManager": PerformanceManager(vc, "PerfMgr"),
        "scheduledTaskManager": ScheduledTaskManager(vc, "ScheduledTaskManager"),
        "alarmManager": AlarmManager(vc, "AlarmManager"),
        "eventManager": EventManager(vc, "EventManager"),
        "extensionManager": ExtensionManager(vc, "ExtensionManager"),
        "customizationSpecManager": CustomizationSpecManager(vc, "CustomizationSpecManager"),
        "guestCustomizationManager": plain_manager(vc, vim.vm.GuestCustomizationManager,
                                                   "GuestCustomizationManager"),
        "diagnosticManager": plain_manager(vc, vim.DiagnosticManager, "DiagMgr"),
        "licenseManager": LicenseManager(vc, "LicenseManager"),
        "fileManager": FileManager(vc, "FileManager"),
        "datastoreNamespaceManager": plain_manager(vc, vim.DatastoreNamespaceManager, "DatastoreNamespaceManager"),
        "virtualDiskManager": VirtualDiskManager(vc, "virtualDiskManager"),
        "snmpSystem": plain_manager(vc, vim.host.SnmpSystem, "SnmpSystem",
                                    configuration=vim.host.SnmpSystem.SnmpConfigSpec(enabled=False, port=161),
                                    limits=vim.host.SnmpSystem.AgentLimits(
                                        maxReadOnlyCommunities=1, maxTrapDestinations=3, maxCommunityLength=64,
                                        maxBufferSize=1500, capability="COMPLETE")),
        "vmProvisioningChecker": plain_manager(vc, vim.vm.check.ProvisioningChecker, "ProvChecker"),
        "vmCompatibilityChecker": plain_manager(vc, vim.vm.check.CompatibilityChecker, "CompatChecker"),
        "ovfManager": plain_manager(
            vc, vim.OvfManager, "OvfManager",
            ovfImportOption=[vim.OvfManager.OvfOptionInfo(option=o, description=vmodl.LocalizableMessage(
                key=f"ovf.import.{o}", message=text)) for o, text in (("accept-all-eulas", "Accept all EULAs"),)],
            ovfExportOption=[vim.OvfManager.OvfOptionInfo(option=o, description=vmodl.LocalizableMessage(
                key=f"ovf.export.{o}", message=text)) for o, text in (
                ("manifest", "Include a manifest"), ("extraconfig", "Include extra configuration"),
                ("nodevicesubtypes", "Exclude device subtypes"))]),
        "ipPoolManager": IpPoolManager(vc, "IpPoolManager"),
        "dvSwitchManager": plain_manager(vc, vim.dvs.DistributedVirtualSwitchManager, "DVSManager"),
        "hostProfileManager": plain_manager(vc, vim.profile.host.ProfileManager, "HostProfileManager"),
        "clusterProfileManager": plain_manager(vc, vim.profile.cluster.ProfileManager, "ClusterProfileManager"),
        "complianceManager": plain_manager(vc, vim.profile.ComplianceManager, "MoComplianceManager"),
        "localizationManager": plain_manager(vc, vim.LocalizationManager, "LocalizationManager", catalog=[]),
        "storageResourceManager": plain_manager(vc, vim.StorageResourceManager, "StorageResourceManager"),
        "guestOperationsManager": _no_guests(vim.vm.guest.GuestOperationsManager, "guestOperationsManager", vc,
                                             **guest_props),
        "overheadMemoryManager": plain_manager(vc, vim.OverheadMemoryManager, "OverheadMemoryManager"),
        "certificateManager": plain_manager(vc, vim.CertificateManager, "certificateManager"),
        "ioFilterManager": plain_manager(vc, vim.IoFilterManager, "IoFilterManager"),
        "vStorageObjectManager": plain_manager(vc, vim.vslm.vcenter.VStorageObjectManager, "VStorageObjectManager"),
        "hostSpecManager": plain_manager(vc, vim.profile.host.HostSpecificationManager, "HostSpecificationManager"),
        "cryptoManager": plain_manager(vc, vim.encryption.CryptoManagerKmip, "CryptoManager", enabled=False,
                                       kmipServers=[]),
        "healthUpdateManager": plain_manager(vc, vim.HealthUpdateManager, "HealthUpdateManager"),
        "failoverClusterConfigurator": plain_manager(vc, vim.vcha.FailoverClusterConfigurator,
                                                     "FailoverClusterConfigurator", disabledConfigureMethod=[]),
        "failoverClusterManager": plain_manager(vc, vim.vcha.FailoverClusterManager, "FailoverClusterManager",
                                                disabledClusterMethod=[]),
        "tenantManager": plain_manager(vc, vim.tenant.TenantManager, "TenantManager"),
        "siteInfoManager": plain_manager(vc, vim.SiteInfoManager, "SiteInfoManager"),
        "storageQueryManager": plain_manager(vc, vim.StorageQueryManager, "StorageQueryManager"),
    }
    return managers


def build_helper_objects(vc: VCenter) -> list[SimObject]:
    """Objects the managers refer to that are not ServiceContent fields themselves."""
    return [LicenseAssignmentManager(vc, "LicenseAssignmentManager"),
            _no_guests(vim.vm.guest.ProcessManager, "guestOperationsProcessManager", vc),
            _no_guests(vim.vm.guest.FileManager, "guestOperationsFileManager", vc),
            _no_guests(vim.vm.guest.AuthManager, "guestOperationsAuthManager", vc),
            _no_guests(vim.vm.guest.AliasManager, "guestOperationsAliasManager", vc),
            _no_guests(vim.vm.guest.WindowsRegistryManager, "guestOperationsWindowsRegistryManager", vc)]
