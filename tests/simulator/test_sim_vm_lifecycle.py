"""Power, reconfiguration, destruction and custom fields of virtual machines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator


def _fresh_vm(si: Any, name: str, power_on: bool = False) -> Any:
    template = vm_by_name(si, "linux-template")
    return wait(template.CloneVM_Task(folder=template.parent, name=name,
                                      spec=linked_clone_spec(template.snapshot.currentSnapshot, powerOn=power_on)))


def _nics(vm: Any) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def test_power_on_off_and_reset(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("power"))
    assert vm.runtime.powerState == "poweredOff" and vm.runtime.bootTime is None
    assert isinstance(wait_fault(vm.PowerOffVM_Task()), vim.fault.InvalidPowerState)
    assert isinstance(wait_fault(vm.ResetVM_Task()), vim.fault.InvalidPowerState)
    wait(vm.PowerOnVM_Task())
    runtime = vm.runtime
    assert runtime.powerState == "poweredOn" and runtime.bootTime is not None
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"
    fault = wait_fault(vm.PowerOnVM_Task())
    assert isinstance(fault, vim.fault.InvalidPowerState)
    assert fault.requestedState == "poweredOff" and fault.existingState == "poweredOn"
    first_boot = runtime.bootTime
    wait(vm.ResetVM_Task())
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime >= first_boot
    wait(vm.PowerOffVM_Task())
    assert vm.runtime.powerState == "poweredOff" and vm.runtime.bootTime is None
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"


def test_power_off_ends_the_frozen_state(sim: Simulator, si: Any) -> None:
    frozen = vm_by_name(si, "linux-frozen")
    assert frozen.runtime.instantCloneFrozen is True
    wait(frozen.PowerOffVM_Task())
    assert frozen.runtime.instantCloneFrozen is False
    wait(frozen.PowerOnVM_Task())
    assert frozen.runtime.powerState == "poweredOn" and frozen.runtime.instantCloneFrozen is False


def test_reconfigure_extra_config_annotation_and_nic(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("reconf"))
    version = vm.config.changeVersion
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
        annotation="owned by the tests",
        extraConfig=[vim.option.OptionValue(key="guestinfo.role", value="web"),
                     vim.option.OptionValue(key="guestinfo.env", value="ci")])))
    config = vm.config
    assert config.annotation == "owned by the tests"
    assert {("guestinfo.role", "web"), ("guestinfo.env", "ci")} <= {(o.key, o.value) for o in config.extraConfig}
    assert config.changeVersion != version
    # An empty value removes the key, as on a vCenter.
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="guestinfo.env",
                                                                                        value="")])))
    keys = {o.key for o in vm.config.extraConfig}
    assert "guestinfo.env" not in keys and "guestinfo.role" in keys
    [nic] = _nics(vm)
    assert nic.connectable.connected is True
    nic.connectable.connected = False
    nic.connectable.startConnected = False
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)])))
    [after] = _nics(vm)
    assert after.connectable.connected is False and after.connectable.startConnected is False
    assert after.macAddress == nic.macAddress


def test_reconfigure_faults(shared_si: Any, unique: Callable[[str], str]) -> None:
    vm = _fresh_vm(shared_si, unique("reconf-bad"))
    [nic] = _nics(vm)
    nic.key = 4999
    fault = wait_fault(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)])))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)
    disk = vim.vm.device.VirtualDisk(key=2001, capacityInKB=1024)
    fault = wait_fault(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)])))
    assert isinstance(fault, vmodl.fault.NotSupported)


def test_destroy(sim: Simulator, si: Any) -> None:
    vm = _fresh_vm(si, "short-lived", power_on=True)
    fault = wait_fault(vm.Destroy_Task())
    assert isinstance(fault, vim.fault.InvalidPowerState)
    assert "short-lived" in sim.vm_names()
    wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())
    assert "short-lived" not in sim.vm_names()
    assert si.content.searchIndex.FindByInventoryPath("dc1/vm/short-lived") is None
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.Destroy_Task()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = vm.name
    # The template's disks are untouched by destroying its linked clone.
    template = vm_by_name(si, "linux-template")
    assert template.layoutEx.disk[0].chain


def test_concurrent_destroys_one_wins(sim: Simulator, si: Any) -> None:
    vm = _fresh_vm(si, "raced")
    first, second = vm.Destroy_Task(), vm.Destroy_Task()
    outcomes = []
    for task in (first, second):
        try:
            wait(task)
            outcomes.append("ok")
        except vmodl.fault.ManagedObjectNotFound:
            outcomes.append("gone")
    assert sorted(outcomes) == ["gone", "ok"]
    assert "raced" not in sim.vm_names()


def test_custom_fields(sim: Simulator, si: Any) -> None:
    manager = si.content.customFieldsManager
    field = manager.AddCustomFieldDef(name="owner", moType=vim.VirtualMachine)
    assert field.name == "owner" and field.managedObjectType == vim.VirtualMachine
    assert [(f.key, f.name) for f in manager.field] == [(field.key, "owner")]
    with pytest.raises(vim.fault.DuplicateName):
        manager.AddCustomFieldDef(name="owner", moType=vim.VirtualMachine)
    vm = vm_by_name(si, "linux-template")
    assert "owner" in {f.name for f in vm.availableField}
    vm.setCustomValue(key="owner", value="alice")
    assert [(v.key, v.value) for v in vm.customValue] == [(field.key, "alice")]
    assert [(v.key, v.value) for v in vm.summary.customValue] == [(field.key, "alice")]
    vm.setCustomValue(key="owner", value="bob")
    assert [v.value for v in vm.customValue] == ["bob"]
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.setCustomValue(key="undefined-field", value="x")
    other = vm_by_name(si, "linux-frozen")
    manager.SetField(entity=other, key=field.key, value="carol")
    assert [v.value for v in other.customValue] == ["carol"]
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.SetField(entity=other, key=424242, value="x")
    manager.RenameCustomFieldDef(key=field.key, name="team")
    assert [f.name for f in manager.field] == ["team"]
    manager.RemoveCustomFieldDef(key=field.key)
    assert list(manager.field) == [] and list(vm.customValue) == []
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.RemoveCustomFieldDef(key=field.key)


def test_mark_as_template_and_back(sim: Simulator, si: Any) -> None:
    vm = _fresh_vm(si, "to-template")
    vm.MarkAsTemplate()
    assert vm.config.template is True
    assert isinstance(wait_fault(vm.PowerOnVM_Task()), vmodl.fault.NotSupported)
    pool = si.content.searchIndex.FindByInventoryPath("dc1/host/cluster1").resourcePool
    vm.MarkAsVirtualMachine(pool=pool)
    assert vm.config.template is False
    with pytest.raises(vmodl.fault.NotSupported):
        vm.MarkAsVirtualMachine(pool=pool)
