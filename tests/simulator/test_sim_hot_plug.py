"""ReconfigVM_Task on a running VM: CPUs and memory change only as far as CPU and memory hot plug allow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator

Spec = vim.vm.ConfigSpec


def _running(si: Any, name: str = "linux-template") -> Any:
    vm = vm_by_name(si, name)
    wait(vm.PowerOnVM_Task())
    return vm


def _hardware(vm: Any) -> tuple[int, int]:
    return vm.config.hardware.numCPU, vm.config.hardware.memoryMB


def test_hot_plug_is_off_by_default_and_reported(shared_si: Any) -> None:
    config = vm_by_name(shared_si, "linux-template").config
    assert (config.cpuHotAddEnabled, config.cpuHotRemoveEnabled, config.memoryHotAddEnabled) == (False, False, False)


def test_a_running_vm_without_hot_add_refuses_cpu_and_memory_changes(sim: Simulator, si: Any) -> None:
    vm = _running(si)
    before = _hardware(vm)
    cpu = wait_fault(vm.ReconfigVM_Task(spec=Spec(numCPUs=before[0] + 2)))
    assert isinstance(cpu, vim.fault.CpuHotPlugNotSupported)
    assert cpu.msg == "CPU hot plug is not supported for this virtual machine."
    memory = wait_fault(vm.ReconfigVM_Task(spec=Spec(memoryMB=before[1] * 2)))
    assert isinstance(memory, vim.fault.MemoryHotPlugNotSupported)
    assert _hardware(vm) == before
    # What is not a change passes: the current size, and settings besides CPU and memory.
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=before[0], memoryMB=before[1], annotation="still running")))
    assert vm.config.annotation == "still running" and vm.runtime.powerState == "poweredOn"


def test_hot_plug_flags_change_only_while_powered_off(sim: Simulator, si: Any) -> None:
    vm = _running(si)
    # ConfigSpec.cpuHotAddEnabled: "This attribute can only be set when the virtual machine is powered-off."
    fault = wait_fault(vm.ReconfigVM_Task(spec=Spec(cpuHotAddEnabled=True, numCPUs=4)))
    assert isinstance(fault, vim.fault.InvalidPowerState)
    assert (fault.requestedState, fault.existingState) == ("poweredOff", "poweredOn")
    assert "cannot be performed in the current state (Powered on)" in fault.msg
    assert vm.config.cpuHotAddEnabled is False
    wait(vm.ReconfigVM_Task(spec=Spec(cpuHotAddEnabled=False)))  # the value it has: no change
    wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=Spec(cpuHotAddEnabled=True, memoryHotAddEnabled=True)))
    config = vm.config
    assert (config.cpuHotAddEnabled, config.cpuHotRemoveEnabled, config.memoryHotAddEnabled) == (True, False, True)


def test_hot_add_grows_a_running_vm_but_never_shrinks_it_without_hot_remove(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=2, memoryMB=2048, cpuHotAddEnabled=True, memoryHotAddEnabled=True)))
    wait(vm.PowerOnVM_Task())
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=4, memoryMB=4096)))
    assert _hardware(vm) == (4, 4096)
    assert (vm.summary.config.numCpu, vm.summary.config.memorySizeMB) == (4, 4096)
    # CPU hot remove is off; memory has no hot remove at all.
    assert isinstance(wait_fault(vm.ReconfigVM_Task(spec=Spec(numCPUs=2))), vim.fault.CpuHotPlugNotSupported)
    assert isinstance(wait_fault(vm.ReconfigVM_Task(spec=Spec(memoryMB=2048))), vim.fault.MemoryHotPlugNotSupported)
    assert _hardware(vm) == (4, 4096)
    wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=1, memoryMB=1024)))  # powered off, anything goes
    assert _hardware(vm) == (1, 1024)


def test_cpu_hot_remove_lets_a_running_vm_lose_cpus(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=4, cpuHotRemoveEnabled=True)))
    wait(vm.PowerOnVM_Task())
    wait(vm.ReconfigVM_Task(spec=Spec(numCPUs=2)))
    assert _hardware(vm)[0] == 2
    # Hot remove alone does not add.
    assert isinstance(wait_fault(vm.ReconfigVM_Task(spec=Spec(numCPUs=3))), vim.fault.CpuHotPlugNotSupported)


def test_a_clone_spec_changes_cpus_freely_and_clones_keep_hot_plug(sim: Simulator, si: Any) -> None:
    source = vm_by_name(si, "linux-template")
    wait(source.ReconfigVM_Task(spec=Spec(cpuHotAddEnabled=True)))
    # A clone's ConfigSpec applies before the clone runs, even with powerOn in the CloneSpec.
    spec = linked_clone_spec(source.snapshot.currentSnapshot, config=Spec(numCPUs=3, memoryMB=3072), powerOn=True)
    clone = wait(source.CloneVM_Task(folder=source.parent, name="hot-clone", spec=spec))
    assert clone.runtime.powerState == "poweredOn" and _hardware(clone) == (3, 3072)
    assert clone.config.cpuHotAddEnabled is True and clone.config.memoryHotAddEnabled is False
    wait(clone.ReconfigVM_Task(spec=Spec(numCPUs=5)))
    assert _hardware(clone)[0] == 5


@pytest.mark.parametrize(("privilege", "spec"), [
    ("VirtualMachine.Config.CPUCount", Spec(numCPUs=4)),
    ("VirtualMachine.Config.CPUCount", Spec(cpuHotAddEnabled=True)),
    ("VirtualMachine.Config.Memory", Spec(memoryMB=4096)),
    ("VirtualMachine.Config.Memory", Spec(memoryHotAddEnabled=True)),
])
def test_cpu_and_memory_changes_need_their_reconfigure_privileges(
        sim: Simulator, client_factory: Callable[..., Any], privilege: str, spec: Any) -> None:
    # ConfigSpec: numCPUs and the CPU hot plug flags need VirtualMachine.Config.CPUCount, memoryMB and
    # memoryHotAddEnabled VirtualMachine.Config.Memory ("Reconfigure privilege").
    sim.add_user("sizer@vsphere.local", "sizer-password", denied={privilege})
    limited = client_factory(sim, "sizer@vsphere.local", "sizer-password")
    with pytest.raises(vim.fault.NoPermission) as raised:
        vm_by_name(limited, "linux-template").ReconfigVM_Task(spec=spec)
    assert raised.value.privilegeId == privilege
