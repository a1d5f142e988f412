"""The privileges CloneVM_Task and InstantClone_Task check, as the API reference lists them.

CloneVM_Task: the clone privilege on the source by source and destination (Clone from a VM, DeployTemplate from
a template, CreateTemplateFromVM and CloneTemplate into a template), VirtualMachine.Provisioning.Customize on it
when the spec asks for customization, CreateFromExisting/AssignVMToPool/AllocateSpace where the clone goes; nothing for
CloneSpec.config or location.deviceChange. InstantClone_Task: Clone, Interact.PowerOn, CreateFromExisting,
AllocateSpace, AssignVMToPool; nothing for its extraConfig or NIC edits; never from a template (powered off).
MarkAsTemplate: its privilege and a powered-off VM. Through the real pyVmomi client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

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


DEPLOY = "VirtualMachine.Provisioning.DeployTemplate"


def test_cloning_a_template_needs_deploy_template_not_clone(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    # CloneVM_Task (API reference): "source is template, destination is virtual machine -
    # VirtualMachine.Provisioning.DeployTemplate". A linked clone from a template's snapshot is a deploy too.
    si = client_factory(sim)
    source = vm_by_name(si, "linux-template")
    source.MarkAsTemplate()
    assert source.config.template is True
    pool = si.content.searchIndex.FindByInventoryPath("dc1/host/cluster1").resourcePool
    location = vim.vm.RelocateSpec(pool=pool, diskMoveType="createNewChildDiskBacking")

    sim.add_user(USER, PASSWORD, denied={DEPLOY})  # a role with Provisioning.Clone, without DeployTemplate
    limited = client_factory(sim, USER, PASSWORD)
    template = vm_by_name(limited, "linux-template")
    before = sim.vm_names()
    with pytest.raises(vim.fault.NoPermission) as raised:
        template.CloneVM_Task(folder=template.parent, name="deployed",
                              spec=linked_clone_spec(template.snapshot.currentSnapshot, location=location))
    assert raised.value.privilegeId == DEPLOY and raised.value.object == template
    assert sim.vm_names() == before  # refused before a task started

    sim.add_user("deployer@vsphere.local", "deployer-password", denied={"VirtualMachine.Provisioning.Clone"})
    deployer = client_factory(sim, "deployer@vsphere.local", "deployer-password")
    template = vm_by_name(deployer, "linux-template")
    clone = wait(template.CloneVM_Task(folder=template.parent, name="deployed",
                                       spec=linked_clone_spec(template.snapshot.currentSnapshot, location=location,
                                                              powerOn=True)))
    assert clone.config.template is False and clone.runtime.powerState == "poweredOn"
    # Without Provisioning.Clone the same role clones no virtual machine (its clone is one).
    with pytest.raises(vim.fault.NoPermission) as raised:
        clone.CloneVM_Task(folder=clone.parent, name="copy", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()))
    assert raised.value.privilegeId == "VirtualMachine.Provisioning.Clone"


def test_cloning_into_a_template_needs_the_references_other_privileges(
        sim: Simulator, client_factory: Callable[..., Any]) -> None:
    # "source is virtual machine, destination is template - VirtualMachine.Provisioning.CreateTemplateFromVM;
    # source is template, destination is template - VirtualMachine.Provisioning.CloneTemplate".
    sim.add_user(USER, PASSWORD, denied={"VirtualMachine.Provisioning.CreateTemplateFromVM",
                                         "VirtualMachine.Provisioning.CloneTemplate"})
    limited = client_factory(sim, USER, PASSWORD)
    admin = client_factory(sim)
    for mark in (False, True):
        if mark:
            vm_by_name(admin, "linux-template").MarkAsTemplate()
        source = vm_by_name(limited, "linux-template")
        with pytest.raises(vim.fault.NoPermission) as raised:
            source.CloneVM_Task(folder=source.parent, name="new-template",
                                spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), template=True))
        assert raised.value.privilegeId == ("VirtualMachine.Provisioning.CloneTemplate" if mark
                                            else "VirtualMachine.Provisioning.CreateTemplateFromVM")


def test_mark_as_template_needs_its_privilege_and_a_powered_off_vm(sim: Simulator,
                                                                  client_factory: Callable[..., Any]) -> None:
    # MarkAsTemplate (API reference): "Required privileges: VirtualMachine.Provisioning.MarkAsTemplate";
    # "InvalidPowerState: if the virtual machine is not powered off."
    sim.add_user(USER, PASSWORD, denied={"VirtualMachine.Provisioning.MarkAsTemplate"})
    limited = client_factory(sim, USER, PASSWORD)
    with pytest.raises(vim.fault.NoPermission) as raised:
        vm_by_name(limited, "linux-template").MarkAsTemplate()
    assert raised.value.privilegeId == "VirtualMachine.Provisioning.MarkAsTemplate"
    si = client_factory(sim)
    running = vm_by_name(si, "linux-frozen")
    with pytest.raises(vim.fault.InvalidPowerState) as refused:
        running.MarkAsTemplate()
    assert refused.value.existingState == "poweredOn" and running.config.template is False


def test_a_template_is_no_instant_clone_source(sim: Simulator, si: Any) -> None:
    # InstantClone_Task: "The original virtual machine must be in a powered-on state"; a template cannot be.
    template = vm_by_name(si, "linux-template")
    template.MarkAsTemplate()
    spec = vim.vm.InstantCloneSpec(name="instant", location=vim.vm.RelocateSpec())
    fault = wait_fault(template.InstantClone_Task(spec=spec))
    assert isinstance(fault, vim.fault.InvalidPowerState) and fault.existingState == "poweredOff"
