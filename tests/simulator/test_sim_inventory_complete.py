"""What everyday tools read beyond VMs: hosts, pools, datastore contents, every ServiceContent manager, list views."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import VmomiSupport, vim, vmodl
from sim_helpers import disk_chain, linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

B = vim.host.DatastoreBrowser
#: ServiceContent fields a vCenter 8.0.3 leaves unset (ESXi-only managers, and one of vSphere 9).
UNSET_ON_VCENTER = {"accountManager", "virtualizationManager", "directPathProfileManager"}


def _hosts(si: Any) -> list[Any]:
    [dc] = [e for e in si.content.rootFolder.childEntity if e.name == "dc1"]
    [cluster] = dc.hostFolder.childEntity
    return list(cluster.host)


def _properties(mo: Any) -> list[str]:
    names: list[str] = []
    for klass in type(mo).__mro__:
        names += [n for n in getattr(klass, "_propInfo", {}) if n not in names]
    return names


def _read_all(mo: Any) -> dict[str, Any]:
    """Every property of a managed object the server's version knows, read through the client."""
    values = {}
    for name in _properties(mo):
        info = type(mo)._GetPropertyInfo(name) if hasattr(type(mo), "_GetPropertyInfo") else None
        version = getattr(info, "version", None)
        if version and not VmomiSupport.IsChildVersion("vim.version.v8_0_3_0", version):
            continue  # newer than the simulated vCenter
        values[name] = getattr(mo, name)
    return values


# --- hosts ---------------------------------------------------------------------------------------


def test_host_summary_hardware_and_product_are_an_esxi_8_servers(shared_si: Any) -> None:
    host = _hosts(shared_si)[0]
    summary = host.summary
    hw = summary.hardware
    assert hw.vendor and hw.model and hw.cpuModel
    assert hw.numCpuPkgs == 2 and hw.numCpuCores == 64 and hw.numCpuThreads == 128
    assert hw.cpuMhz > 0 and hw.memorySize == 512 * 1024**3
    assert hw.uuid == host.hardware.systemInfo.uuid
    product = summary.config.product
    assert (product.name, product.version, product.apiType, product.productLineId) == \
        ("VMware ESXi", "8.0.3", "HostAgent", "embeddedEsx")
    assert product.fullName.startswith("VMware ESXi 8.0.3 build-")
    assert summary.config.name == host.name and summary.config.port == 443
    assert summary.runtime.connectionState == "connected" and summary.runtime.bootTime is not None
    assert summary.quickStats.uptime >= 0

    hardware = host.hardware
    assert hardware.cpuInfo.numCpuCores == hw.numCpuCores
    assert hardware.cpuInfo.hz == hw.cpuMhz * 1_000_000
    assert hardware.memorySize == hw.memorySize
    assert len(hardware.cpuPkg) == hw.numCpuPkgs
    assert sum(len(p.threadId) for p in hardware.cpuPkg) == hw.numCpuThreads
    assert hardware.numaInfo.numNodes == 2
    assert host.capability.vmotionSupported is True
    assert host.RetrieveHardwareUptime() >= summary.quickStats.uptime


def test_host_config_network_and_storage(shared_si: Any) -> None:
    host = _hosts(shared_si)[0]
    config = host.config
    assert config.host == host
    assert config.product.version == "8.0.3"
    network = config.network
    [vswitch] = network.vswitch
    assert vswitch.name == "vSwitch0"
    groups = {pg.spec.name for pg in network.portgroup}
    assert {"VM Network", "Management Network"} <= groups
    assert [pg.key for pg in network.portgroup] == list(vswitch.portgroup)
    [vmk0] = network.vnic
    assert vmk0.device == "vmk0" and vmk0.spec.ip.ipAddress
    assert [p.device for p in network.pnic] == ["vmnic0", "vmnic1"]
    assert config.dateTimeInfo.timeZone.key == "UTC"
    [mount] = config.fileSystemVolume.mountInfo
    [ds] = host.datastore
    assert mount.volume.name == ds.name and mount.volume.type == "VMFS" and mount.volume.majorVersion == 6
    assert ds.summary.url == f"ds://{mount.mountInfo.path}/"
    assert [m.key for m in ds.host] == [h for h in _hosts(shared_si) if ds in h.datastore]


def test_host_config_manager_names_managers_that_answer(shared_si: Any) -> None:
    host = _hosts(shared_si)[0]
    number = host._moId.rsplit("-", 1)[-1]
    manager = host.configManager
    assert manager.networkSystem._moId == f"networkSystem-{number}"
    assert manager.advancedOption._moId == f"EsxHostAdvSettings-{number}"
    present = [name for name in vim.host.ConfigManager._propInfo if getattr(manager, name) is not None]
    assert len(present) >= 30
    for name in present:
        _read_all(getattr(manager, name))  # every manager exists and every property reads
    assert manager.networkSystem.networkInfo.vswitch[0].name == host.config.network.vswitch[0].name
    assert manager.datastoreSystem.datastore == host.datastore
    assert [v.volume.name for v in manager.storageSystem.fileSystemVolumeInfo.mountInfo] == \
        [d.name for d in host.datastore]
    assert "vpxa" in {s.key for s in manager.serviceSystem.serviceInfo.service if s.running}
    clock = manager.dateTimeSystem.QueryDateTime()
    assert abs(clock - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_host_advanced_options_query_and_update(sim: Simulator, si: Any) -> None:
    options = _hosts(si)[0].configManager.advancedOption
    [name] = options.QueryOptions("Misc.HostName")
    assert name.value == "esx1"
    assert {o.key for o in options.QueryOptions("Config.HostAgent.")} >= {"Config.HostAgent.log.level"}
    with pytest.raises(vim.fault.InvalidName):
        options.QueryOptions("No.Such.Option")
    options.UpdateOptions(changedValue=[vim.option.OptionValue(key="Config.HostAgent.log.level", value="verbose")])
    assert options.QueryOptions("Config.HostAgent.log.level")[0].value == "verbose"
    with pytest.raises(vim.fault.InvalidName):  # a host's advanced options are a fixed set
        options.UpdateOptions(changedValue=[vim.option.OptionValue(key="Made.Up", value="1")])


def test_host_hardware_from_an_inventory_file(tmp_path: Path, client_factory: Callable[..., Any]) -> None:
    inventory = {"datacenters": [{"name": "lab", "clusters": [{"name": "c", "hosts": [
        {"name": "big.lab.local", "cpu_cores": 96, "memory_gb": 1024}, "small"]}],
        "vms": [{"name": "v"}]}]}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    with Simulator(SimulatorConfig(inventory=path)) as sim:
        si = client_factory(sim)
        [dc] = si.content.rootFolder.childEntity
        [cluster] = dc.hostFolder.childEntity
        big, small = cluster.host
        assert big.summary.hardware.numCpuCores == 96
        assert big.hardware.memorySize == 1024 * 1024**3
        assert big.config.network.dnsConfig.hostName == "big"
        assert big.config.network.dnsConfig.domainName == "lab.local"
        assert small.summary.hardware.numCpuCores == 64
        summary = cluster.summary
        assert summary.numHosts == 2 and summary.numCpuCores == 160
        assert summary.totalMemory == (1024 + 512) * 1024**3
        assert 0 < summary.effectiveCpu < summary.totalCpu
        assert 0 < summary.effectiveMemory * 1024**2 < summary.totalMemory


# --- resource pools ------------------------------------------------------------------------------


def test_root_pool_config_and_runtime_follow_the_cluster_and_its_vms(sim: Simulator, si: Any) -> None:
    [cluster] = _hosts(si)[0].parent.parent.childEntity
    pool = cluster.resourcePool
    summary = cluster.summary
    config = pool.config
    assert config.cpuAllocation.reservation == config.cpuAllocation.limit == summary.effectiveCpu
    assert config.memoryAllocation.reservation == summary.effectiveMemory
    assert config.cpuAllocation.shares.level == "normal"
    assert config.cpuAllocation.expandableReservation is False
    runtime = pool.runtime
    assert runtime.cpu.maxUsage == summary.effectiveCpu
    assert runtime.memory.maxUsage == summary.effectiveMemory * 1024**2
    assert runtime.overallStatus == "green"
    before = runtime.memory.overallUsage
    vm = vm_by_name(si, "linux-template")
    wait(vm.PowerOnVM_Task())
    after = pool.runtime.memory.overallUsage
    assert after - before == vm.config.hardware.memoryMB * 1024**2
    assert pool.summary.name == "Resources"
    assert pool.summary.runtime.memory.overallUsage == after


# --- every ServiceContent manager ------------------------------------------------------------------


def test_every_service_content_manager_is_present_and_readable(shared_si: Any) -> None:
    content = shared_si.RetrieveContent()
    for name, info in vim.ServiceInstanceContent._propInfo.items():
        if not issubclass(info.type, VmomiSupport.ManagedObject):
            continue
        mo = getattr(content, name)
        if name in UNSET_ON_VCENTER:
            assert mo is None, name
            continue
        assert mo is not None, name
        _read_all(mo)
    assert content.eventManager._moId == "EventManager"
    assert content.perfManager._moId == "PerfMgr"
    assert content.setting._moId == "VpxSettings"


def test_perf_manager_catalogue_and_the_uptime_it_measures(sim: Simulator, si: Any) -> None:
    perf = si.content.perfManager
    counters = {(c.groupInfo.key, c.nameInfo.key, c.rollupType): c for c in perf.perfCounter}
    assert counters[("cpu", "usage", "average")].key == 2
    assert counters[("sys", "uptime", "latest")].unitInfo.key == "second"
    assert [i.samplingPeriod for i in perf.historicalInterval] == [300, 1800, 7200, 86400]
    assert [c.key for c in perf.QueryPerfCounter(counterId=[2, 155, 99999])] == [2, 155]
    assert all(c.level <= 1 for c in perf.QueryPerfCounterByLevel(level=1))

    running = vm_by_name(si, "linux-frozen")
    stopped = vm_by_name(si, "linux-template")
    provider = perf.QueryPerfProviderSummary(entity=running)
    assert provider.currentSupported is True and provider.refreshRate == 20
    [metric] = perf.QueryAvailablePerfMetric(entity=running)
    assert metric.counterId == 155
    assert perf.QueryAvailablePerfMetric(entity=stopped) == []
    [result] = perf.QueryPerf(querySpec=[vim.PerformanceManager.QuerySpec(
        entity=running, metricId=[vim.PerformanceManager.MetricId(counterId=155, instance="")], maxSample=1)])
    assert result.entity == running
    [series] = result.value
    assert series.id.counterId == 155 and series.value[0] >= 0
    assert perf.QueryPerf(querySpec=[vim.PerformanceManager.QuerySpec(entity=stopped)]) == []


def test_license_manager_reports_evaluation_mode(shared_si: Any) -> None:
    licenses = shared_si.content.licenseManager
    [license_info] = licenses.licenses
    assert license_info.editionKey == "eval" and license_info.licenseKey == "00000-00000-00000-00000-00000"
    assignments = licenses.licenseAssignmentManager.QueryAssignedLicenses()
    entities = {a.entityId for a in assignments}
    assert shared_si.content.about.instanceUuid in entities
    assert {h._moId for h in _hosts(shared_si)} <= entities


def test_vcenter_settings_users_alarms_and_customization_specs(sim: Simulator, si: Any) -> None:
    content = si.content
    [max_age] = content.setting.QueryOptions("event.maxAge")
    assert max_age.value == 30
    content.setting.UpdateOptions(changedValue=[vim.option.OptionValue(key="config.custom.key", value="x")])
    assert content.setting.QueryOptions("config.custom.")[0].value == "x"

    [user] = content.userDirectory.RetrieveUserGroups(domain="vsphere.local", searchStr="administrator",
                                                      exactMatch=True, findUsers=True, findGroups=False)
    assert user.principal == sim.user and user.group is False

    assert content.alarmManager.GetAlarm(entity=content.rootFolder) == []
    assert content.alarmManager.defaultExpression

    specs = content.customizationSpecManager
    assert specs.DoesCustomizationSpecExist(name="linux") is False
    item = vim.CustomizationSpecItem(
        info=vim.CustomizationSpecInfo(name="linux", description="", type="Linux"),
        spec=vim.vm.customization.Specification(
            identity=vim.vm.customization.LinuxPrep(hostName=vim.vm.customization.VirtualMachineNameGenerator(),
                                                    domain="lab"),
            globalIPSettings=vim.vm.customization.GlobalIPSettings()))
    specs.CreateCustomizationSpec(item=item)
    assert specs.GetCustomizationSpec(name="linux").info.type == "Linux"
    assert [i.name for i in specs.info] == ["linux"]
    with pytest.raises(vim.fault.AlreadyExists):
        specs.CreateCustomizationSpec(item=item)
    specs.DeleteCustomizationSpec(name="linux")
    with pytest.raises(vim.fault.NotFound):
        specs.GetCustomizationSpec(name="linux")


def test_unmodelled_methods_answer_not_implemented(shared_si: Any) -> None:
    host = _hosts(shared_si)[0]
    with pytest.raises(vmodl.fault.NotImplemented):
        host.EnterMaintenanceMode_Task(timeout=0)
    with pytest.raises(vmodl.fault.NotImplemented):
        shared_si.content.perfManager.CreatePerfInterval(intervalId=vim.HistoricalInterval(
            key=5, samplingPeriod=60, name="x", length=600, enabled=True))


def test_guest_operations_manager_without_guests_says_so(shared_si: Any) -> None:
    guest_ops = shared_si.content.guestOperationsManager
    assert guest_ops.processManager is not None and guest_ops.fileManager is not None
    auth = vim.vm.guest.NamePasswordAuthentication(username="root", password="x")
    with pytest.raises(vmodl.fault.NotSupported, match="without"):
        guest_ops.processManager.ListProcessesInGuest(vm=vm_by_name(shared_si, "linux-frozen"), auth=auth)


# --- list views (what govmomi's TaskView uses) ---------------------------------------------------------


def _view_tasks(si: Any, view: Any) -> dict[str, str]:
    """Every task in the list view with its state, through one RetrievePropertiesEx over the view."""
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[pc.TraversalSpec(
            name="view", type=vim.view.ListView, path="view", skip=False)])],
        propSet=[pc.PropertySpec(type=vim.Task, pathSet=["info.state"])])
    result = si.content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=pc.RetrieveOptions())
    return {o.obj._moId: o.propSet[0].val for o in (result.objects if result else [])}


def test_list_view_modify_reset_and_reset_from_view(sim: Simulator, si: Any) -> None:
    views = si.content.viewManager
    list_view = views.CreateListView(obj=[])
    assert list_view.view == []
    vm = vm_by_name(si, "linux-template")
    task = vm.PowerOnVM_Task()
    wait(task)
    gone = vim.Task("task-404404")
    assert list_view.ResetListView(obj=[task, gone]) == [gone]  # unresolved objects come back
    assert _view_tasks(si, list_view) == {task._moId: "success"}
    other = vm.PowerOffVM_Task()
    wait(other)
    assert list_view.ModifyListView(add=[other], remove=[task]) == []
    assert list_view.view == [other]
    container = views.CreateContainerView(container=si.content.rootFolder, type=[vim.HostSystem], recursive=True)
    list_view.ResetListViewFromView(view=container)
    assert sorted(h.name for h in list_view.view) == ["esx1", "esx2"]
    list_view.DestroyView()
    container.DestroyView()


# --- datastore browser ---------------------------------------------------------------------------------


def _search(browser: Any, path: str, **spec: Any) -> Any:
    return wait(browser.SearchDatastore_Task(datastorePath=path, searchSpec=B.SearchSpec(**spec)))


def _datastore(si: Any) -> Any:
    [dc] = [e for e in si.content.rootFolder.childEntity if e.name == "dc1"]
    return dc.datastore[0]


def test_browser_lists_a_folder_per_vm(shared_si: Any) -> None:
    ds = _datastore(shared_si)
    assert ds.browser.datastore == [ds]
    result = _search(ds.browser, "[datastore1]", query=[B.FolderQuery()])
    assert result.folderPath == "[datastore1]" and result.datastore == ds
    folders = {f.path for f in result.file}
    assert {"linux-template", "linux-frozen", "windows-template", "windows-frozen"} <= folders
    assert all(isinstance(f, B.FolderInfo) for f in result.file)
    host = _hosts(shared_si)[0]
    via_host = _search(host.datastoreBrowser, "[datastore1]", query=[B.FolderQuery()])
    assert {f.path for f in via_host.file} == folders


def test_browser_lists_a_vms_files_and_disks_as_descriptors(shared_si: Any) -> None:
    browser = _datastore(shared_si).browser
    details = B.FileInfo.Details(fileType=True, fileSize=True, modification=True)
    result = _search(browser, "[datastore1] linux-template", details=details)
    assert result.folderPath == "[datastore1] linux-template"
    files = {f.path: f for f in result.file}
    assert isinstance(files["linux-template.vmx"], B.VmConfigInfo)
    assert isinstance(files["linux-template.nvram"], B.VmNvramInfo)
    assert isinstance(files["linux-template-Snapshot1.vmsn"], B.VmSnapshotInfo)
    vm = vm_by_name(shared_si, "linux-template")
    descriptors = [name.split("/", 1)[1] for name in disk_chain(vm)]
    for name in descriptors:
        assert isinstance(files[name], B.VmDiskInfo) and files[name].fileSize > 0
    assert not [name for name in files if name.endswith(("-flat.vmdk", "-delta.vmdk"))]
    assert all(f.modification is not None for f in result.file)
    [disk] = _search(browser, "[datastore1] linux-template", matchPattern=["linux-template.vmdk"],
                     query=[B.VmDiskQuery(details=B.VmDiskQuery.Details(diskType=True, capacityKb=True,
                                                                         diskExtents=True, thin=True))]).file
    assert disk.diskExtents == ["[datastore1] linux-template/linux-template-flat.vmdk"]
    assert disk.capacityKb == vm.config.hardware.device[-1].capacityInKB
    assert disk.diskType == vim.vm.device.VirtualDisk.FlatVer2BackingInfo
    assert disk.thin is True


def test_browser_follows_linked_clones_and_destroys(sim: Simulator, si: Any) -> None:
    browser = _datastore(si).browser
    source = vm_by_name(si, "linux-template")
    clone = wait(source.CloneVM_Task(folder=source.parent, name="lc1",
                                     spec=linked_clone_spec(source.snapshot.currentSnapshot)))
    [result] = wait(browser.SearchDatastoreSubFolders_Task(
        datastorePath="[datastore1] lc1",
        searchSpec=B.SearchSpec(query=[B.VmDiskQuery(details=B.VmDiskQuery.Details(diskExtents=True))])))
    assert result.folderPath == "[datastore1] lc1"
    [delta] = result.file
    assert "[datastore1] " + f"lc1/{delta.path}" == disk_chain(clone)[-1]
    assert delta.diskExtents == [disk_chain(clone)[-1].replace(".vmdk", "-delta.vmdk")]
    all_folders = wait(browser.SearchDatastoreSubFolders_Task(datastorePath="[datastore1]",
                                                              searchSpec=B.SearchSpec(matchPattern=["*.vmx"])))
    configs = {(r.folderPath, f.path) for r in all_folders for f in r.file}
    assert ("[datastore1] lc1", "lc1.vmx") in configs
    wait(clone.Destroy_Task())
    root = _search(browser, "[datastore1]", query=[B.FolderQuery()])
    assert "lc1" not in {f.path for f in root.file}


def test_browser_sorting_patterns_and_faults(shared_si: Any) -> None:
    browser = _datastore(shared_si).browser
    listing = _search(browser, "[datastore1] windows-template", matchPattern=["*.VMX"], searchCaseInsensitive=True)
    assert [f.path for f in listing.file] == ["windows-template.vmx"]
    everything = _search(browser, "[datastore1]", sortFoldersFirst=True)
    assert [f.path for f in everything.file] == sorted(f.path for f in everything.file)
    missing = wait_fault(browser.SearchDatastore_Task(datastorePath="[datastore1] no-such-folder"))
    assert isinstance(missing, vim.fault.FileNotFound)
    malformed = wait_fault(browser.SearchDatastore_Task(datastorePath="datastore1/linux-template"))
    assert isinstance(malformed, vim.fault.InvalidDatastorePath)
    other = wait_fault(browser.SearchDatastore_Task(datastorePath="[elsewhere] x"))
    assert isinstance(other, vim.fault.InvalidDatastore)
    duplicate = wait_fault(browser.SearchDatastore_Task(
        datastorePath="[datastore1]", searchSpec=B.SearchSpec(query=[B.FolderQuery(), B.FolderQuery()])))
    assert isinstance(duplicate, vmodl.fault.InvalidArgument)


def test_file_manager_folders_and_disk_uuids(sim: Simulator, si: Any) -> None:
    files = si.content.fileManager
    [dc] = si.content.rootFolder.childEntity
    browser = _datastore(si).browser
    files.MakeDirectory(name="[datastore1] iso/linux", datacenter=dc, createParentDirectories=True)
    with pytest.raises(vim.fault.FileAlreadyExists):
        files.MakeDirectory(name="[datastore1] iso", datacenter=dc)
    with pytest.raises(vim.fault.FileNotFound):
        files.MakeDirectory(name="[datastore1] a/b", datacenter=dc)
    [top, nested] = wait(browser.SearchDatastoreSubFolders_Task(datastorePath="[datastore1] iso"))
    assert (top.folderPath, [f.path for f in top.file]) == ("[datastore1] iso", ["linux"])
    assert nested.folderPath == "[datastore1] iso/linux" and nested.file == []
    wait(files.DeleteDatastoreFile_Task(name="[datastore1] iso", datacenter=dc))
    assert "iso" not in {f.path for f in _search(browser, "[datastore1]").file}
    refused = wait_fault(files.DeleteDatastoreFile_Task(name="[datastore1] linux-template", datacenter=dc))
    assert isinstance(refused, vim.fault.CannotDeleteFile)

    vm = vm_by_name(si, "linux-template")
    base = disk_chain(vm)[0]
    uuid = si.content.virtualDiskManager.QueryVirtualDiskUuid(name=base, datacenter=dc)
    [disk] = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    backing = disk.backing
    while backing.parent is not None:
        backing = backing.parent
    assert uuid.replace(" ", "").replace("-", "") == backing.uuid.replace("-", "")
    with pytest.raises(vim.fault.FileNotFound):
        si.content.virtualDiskManager.QueryVirtualDiskUuid(name="[datastore1] x/x.vmdk", datacenter=dc)
