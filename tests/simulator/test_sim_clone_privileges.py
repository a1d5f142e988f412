"""The privileges CloneVM_Task and InstantClone_Task check, as the API reference lists them.

CloneVM_Task: the clone privilege on the source, VirtualMachine.Provisioning.Customize on it when the spec
asks for customization, CreateFromExisting/AssignVMToPool/AllocateSpace where the clone goes; nothing for
CloneSpec.config or location.deviceChange. InstantClone_Task: Clone, Interact.PowerOn, CreateFromExisting,
AllocateSpace, AssignVMToPool; nothing for its extraConfig or NIC edits. Through the real pyVmomi client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator

USER = "cloner@vsphere.local"
PASSWORD = "cloner-password"
#: What a hardware setting's ReconfigVM_Task would need; a clone spec carrying the same changes does not.
CONFIG_PRIVILEGES = {"VirtualMachine.Config.CPUCount", "VirtualMachine.Config.Memory",
                     "VirtualMachine.Config.AdvancedConfig", "VirtualMachine.Config.EditDevice",
                     "VirtualMachine.Config.AddRemoveDevice", "VirtualMachine.Config.AddNewDisk"}


def _network(si: Any, name: str) -> Any:
    [dc] = si.content.rootFolder.childEntity
    return next(n for n in dc.network if n.name == name)


def _nic_add(si: Any) -> Any:
    backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network 2",
                                                                   network=_network(si, "VM Network 2"))
    nic = vim.vm.device.VirtualVmxnet3(key=-300, addressType="generated", backing=backing)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def _customization() -> Any:
    identity = vim.vm.customization.LinuxPrep(hostName=vim.vm.customization.FixedName(name="web"), domain="test")
    return vim.vm.customization.Specification(identity=identity, nicSettingMap=[],
                                              globalIPSettings=vim.vm.customization.GlobalIPSettings())


def test_clone_with_customization_needs_customize_on_the_source(sim: Simulator,
                                                                client_factory: Callable[..., Any]) -> None:
    sim.add_user(USER, PASSWORD, denied={"VirtualMachine.Provisioning.Customize"})
    si = client_factory(sim, USER, PASSWORD)
    source = vm_by_name(si, "linux-template")
    before = sim.vm_names()
    with pytest.raises(vim.fault.NoPermission) as raised:
        source.CloneVM_Task(folder=source.parent, name="customized",
                            spec=linked_clone_spec(source.snapshot.currentSnapshot, customization=_customization()))
    fault = raised.value
    assert fault.privilegeId == "VirtualMachine.Provisioning.Customize"
    assert fault.object == source
    assert [p for entry in fault.missingPrivileges for p in entry.privilegeIds] == [fault.privilegeId]
    assert sim.vm_names() == before  # refused before a task started


def test_clone_spec_hardware_needs_no_config_privilege(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    # The reference names no privilege for CloneSpec.config: a role without the VirtualMachine.Config ones
    # still clones with CPUs, memory, extraConfig and an added NIC in the spec.
    sim.add_user(USER, PASSWORD, denied=CONFIG_PRIVILEGES)
    si = client_factory(sim, USER, PASSWORD)
    source = vm_by_name(si, "linux-template")
    config = vim.vm.ConfigSpec(numCPUs=2, memoryMB=1024, deviceChange=[_nic_add(si)],
                               extraConfig=[vim.option.OptionValue(key="guestinfo.role", value="web")])
    clone = wait(source.CloneVM_Task(folder=source.parent, name="configured",
                                     spec=linked_clone_spec(source.snapshot.currentSnapshot, config=config)))
    assert (clone.config.hardware.numCPU, clone.config.hardware.memoryMB) == (2, 1024)
    assert {o.key: o.value for o in clone.config.extraConfig}["guestinfo.role"] == "web"
    # The same change to an existing VM is checked change by change (ReconfigVM_Task).
    with pytest.raises(vim.fault.NoPermission) as raised:
        clone.ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=4))
    assert raised.value.privilegeId == "VirtualMachine.Config.CPUCount"


def test_instant_clone_needs_power_on_not_config_privileges(sim: Simulator,
                                                            client_factory: Callable[..., Any]) -> None:
    sim.add_user(USER, PASSWORD, denied={"VirtualMachine.Interact.PowerOn"})
    si = client_factory(sim, USER, PASSWORD)
    source = vm_by_name(si, "linux-frozen")
    before = sim.vm_names()
    with pytest.raises(vim.fault.NoPermission) as raised:
        source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="denied", location=vim.vm.RelocateSpec()))
    assert raised.value.privilegeId == "VirtualMachine.Interact.PowerOn"
    assert raised.value.object == source.parent  # checked where the running clone is made
    assert sim.vm_names() == before

    sim.add_user("other@vsphere.local", "other-password", denied=CONFIG_PRIVILEGES)
    other = client_factory(sim, "other@vsphere.local", "other-password")
    source = vm_by_name(other, "linux-frozen")
    nic = next(d for d in source.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    nic.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network 2",
                                                                       network=_network(other, "VM Network 2"))
    spec = vim.vm.InstantCloneSpec(name="instant", config=[vim.option.OptionValue(key="guestinfo.role", value="db")],
                                   location=vim.vm.RelocateSpec(deviceChange=[
                                       vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)]))
    clone = wait(source.InstantClone_Task(spec=spec))
    assert [n.name for n in clone.network] == ["VM Network 2"]
