"""EnvironmentBrowser: each cluster's, answered by its VMs too; config options, targets and capabilities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import vm_by_name

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


def _cluster(si: Any) -> Any:
    [datacenter] = si.content.rootFolder.childEntity
    [cluster] = datacenter.hostFolder.childEntity
    return cluster


def test_vms_and_their_cluster_share_one_environment_browser(shared_si: Any) -> None:
    cluster = _cluster(shared_si)
    browser = cluster.environmentBrowser
    assert isinstance(browser, vim.EnvironmentBrowser)
    # VirtualMachine.environmentBrowser is a required property: every VM, template or not, has it.
    for name in ("linux-template", "windows-template", "linux-frozen"):
        assert vm_by_name(shared_si, name).environmentBrowser == browser
    assert browser.datastoreBrowser == cluster.host[0].datastoreBrowser


def test_config_option_descriptors_end_with_the_default_vmx_21(shared_si: Any) -> None:
    cluster = _cluster(shared_si)
    descriptors = cluster.environmentBrowser.QueryConfigOptionDescriptor()
    assert [d.key for d in descriptors][-3:] == ["vmx-19", "vmx-20", "vmx-21"]
    [default] = [d for d in descriptors if d.defaultConfigOption]
    assert default.key == "vmx-21" and default.description == "ESXi 8.0 U2 virtual machine"
    assert all(d.createSupported and d.runSupported for d in descriptors)
    assert set(default.host) == set(cluster.host)


def test_default_config_option_is_vmx_21_with_the_simulators_guests(shared_si: Any) -> None:
    browser = _cluster(shared_si).environmentBrowser
    option = browser.QueryConfigOption()
    assert option.version == "vmx-21" and option.hardwareOptions.hwVersion == 21
    # The default is the version the simulated VMs run, for every guest id they use.
    vm = vm_by_name(shared_si, "windows-template")
    assert vm.config.version == option.version
    guests = {d.id: d for d in option.guestOSDescriptor}
    assert {"ubuntu64Guest", "windows2019srvNext_64Guest"} <= set(guests)
    windows = guests[vm.config.guestId]
    assert windows.family == "windowsGuest" and windows.fullName == vm.config.guestFullName
    assert windows.supportsCpuHotAdd and windows.supportsMemoryHotAdd
    assert windows.recommendedEthernetCard is vim.vm.device.VirtualVmxnet3
    hardware = option.hardwareOptions
    assert hardware.numCPU[0] == 1 and hardware.numCPU[-1] == 768
    assert hardware.memoryMB.max == 24 * 1024 * 1024 and hardware.numCoresPerSocket.min == 1
    assert {type(o) for o in hardware.virtualDeviceOption} >= {vim.vm.device.VirtualVmxnet3Option,
                                                               vim.vm.device.VirtualDiskOption}
    assert option.capabilities.snapshotOperationsSupported


def test_config_option_by_key_host_and_guest_id(shared_si: Any) -> None:
    cluster = _cluster(shared_si)
    browser = cluster.environmentBrowser
    older = browser.QueryConfigOption(key="vmx-19", host=cluster.host[1])
    assert older.version == "vmx-19" and older.hardwareOptions.hwVersion == 19
    spec = vim.EnvironmentBrowser.ConfigOptionQuerySpec
    only = browser.QueryConfigOptionEx(spec=spec(guestId=["ubuntu64Guest"]))
    assert [d.id for d in only.guestOSDescriptor] == ["ubuntu64Guest"]
    # ConfigOptionQuerySpec.guestId: "If there is no match, the whole list is returned."
    unknown = browser.QueryConfigOptionEx(spec=spec(guestId=["beos5Guest"]))
    assert len(unknown.guestOSDescriptor) == len(browser.QueryConfigOption().guestOSDescriptor) > 1
    # QueryConfigOption: InvalidArgument if "An invalid key is passed" or "An invalid host is passed".
    with pytest.raises(vmodl.fault.InvalidArgument) as bad_key:
        browser.QueryConfigOption(key="vmx-99")
    assert bad_key.value.invalidProperty == "key"
    with pytest.raises(vmodl.fault.InvalidArgument):
        browser.QueryConfigTarget(host=vim.HostSystem("host-999999", shared_si._stub))


def test_config_target_lists_the_hosts_datastores_networks_cpus_and_memory(shared_si: Any) -> None:
    cluster = _cluster(shared_si)
    target = cluster.environmentBrowser.QueryConfigTarget()
    host = cluster.host[0]
    hardware = host.summary.hardware
    assert (target.numCpus, target.numCpuCores) == (hardware.numCpuThreads, hardware.numCpuCores)
    assert target.maxCpusPerHost == hardware.numCpuThreads and target.numNumaNodes == hardware.numCpuPkgs
    assert target.supportedMaxMemMB == hardware.memorySize // 1024**2
    assert 0 < target.maxMemMBOptimalPerf <= target.supportedMaxMemMB
    assert [d.name for d in target.datastore] == [ds.name for ds in cluster.datastore]
    assert target.datastore[0].datastore.datastore == cluster.datastore[0]
    assert target.datastore[0].mode == "readWrite" and target.datastore[0].configurationTag == ["clusterWide"]
    assert [n.name for n in target.network] == [net.name for net in cluster.network]
    assert target.network[0].network.network == cluster.network[0]
    one_host = cluster.environmentBrowser.QueryConfigTarget(host=host)
    assert [d.name for d in one_host.datastore] == [d.name for d in target.datastore]


def test_target_capabilities_are_the_hosts(shared_si: Any) -> None:
    cluster = _cluster(shared_si)
    browser = cluster.environmentBrowser
    capabilities = browser.QueryTargetCapabilities()
    assert capabilities.vmotionSupported and capabilities.maxSupportedVcpus == 768
    assert browser.QueryTargetCapabilities(host=cluster.host[0]).maxSupportedVcpus == 768


def test_a_cluster_without_hosts_answers_null(tmp_path: Path, client_factory: Callable[..., Any]) -> None:
    # QueryConfigOption, QueryConfigTarget, QueryTargetCapabilities: "If invoked on a cluster with no
    # hosts, ... null is returned."
    inventory = tmp_path / "inventory.json"
    inventory.write_text('{"datacenters": [{"name": "dc1", "clusters": [{"name": "full", "hosts": ["esx1"]}, '
                         '{"name": "empty", "hosts": []}]}]}')
    with Simulator(SimulatorConfig(inventory=inventory)) as sim:
        si = client_factory(sim)
        [datacenter] = si.content.rootFolder.childEntity
        empty = next(c for c in datacenter.hostFolder.childEntity if c.name == "empty")
        browser = empty.environmentBrowser
        assert browser.QueryConfigOption() is None and browser.QueryConfigTarget() is None
        assert browser.QueryTargetCapabilities() is None
        assert [d.host for d in browser.QueryConfigOptionDescriptor()][-1] == []
