"""CPU and memory hot plug: what ReconfigVM_Task may change on a VM that is not powered off.

VirtualMachineConfigSpec.cpuHotAddEnabled: "Indicates whether or not virtual processors can be
added to the virtual machine while it is running. This attribute can only be set when the
virtual machine is powered-off." (cpuHotRemoveEnabled and memoryHotAddEnabled read alike.) The
three are off unless set, as on a VM a vCenter creates. There is no memory hot remove (the API has
no flag for it; ManageIQ/manageiq-providers-vmware #725). ManageIQ/manageiq #12275 lists the
reconfigurations of a running VM that a vCenter refuses: CPUs added without CPU hot add, CPUs
removed, memory added without memory hot add, memory removed.

The faults are the reference's for ReconfigVM_Task:
- a flag changed while the VM runs: InvalidPowerState, "The attempted operation cannot be performed
  in the current state (Powered on)" (pyvmomi-community-samples #265);
- a CPU count raised without hot add or lowered without hot remove: CpuHotPlugNotSupported,
  "Thrown when virtual CPUs cannot be hot-added or hot-removed from the virtual machine"; a
  vCenter 8.0.3 says "CPU hot plug is not supported for this virtual machine."
  (vmware/terraform-provider-vsphere #2337);
- memory raised without hot add, or lowered at all: MemoryHotPlugNotSupported, "Thrown when memory
  cannot be hot-added or hot-removed from the virtual machine".
A clone's ConfigSpec applies to a VM that is not running yet, so none of this limits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

if TYPE_CHECKING:
    from .vm_state import VmState

CPU_REFUSAL = "CPU hot plug is not supported for this virtual machine."
MEMORY_REFUSAL = "Memory hot plug is not supported for this virtual machine."
#: ConfigSpec field -> HotPlug attribute.
FLAGS = {"cpuHotAddEnabled": "cpu_add", "cpuHotRemoveEnabled": "cpu_remove", "memoryHotAddEnabled": "memory_add"}


@dataclass
class HotPlug:
    """A VM's hot plug settings (VirtualMachineConfigInfo's cpuHotAddEnabled, ...)."""

    cpu_add: bool = False
    cpu_remove: bool = False
    memory_add: bool = False

    def config_fields(self) -> dict[str, bool]:
        """The ConfigInfo fields that report these settings."""
        return {field: getattr(self, attribute) for field, attribute in FLAGS.items()}

    def changed_flags(self, spec: Any) -> list[str]:
        """The ConfigSpec flags ``spec`` sets to another value than the current one."""
        return [field for field, attribute in FLAGS.items()
                if getattr(spec, field) is not None and bool(getattr(spec, field)) != getattr(self, attribute)]

    def apply(self, spec: Any) -> None:
        """Take the flags ``spec`` sets (the caller checked the VM may change them)."""
        for field, attribute in FLAGS.items():
            value = getattr(spec, field)
            if value is not None:
                setattr(self, attribute, bool(value))


def check_running_change(vm: VmState, spec: Any) -> None:
    """Refuse what ``spec`` may not change on ``vm``, which is not powered off (see the module docstring).

    A flag set to the value it already has is no change, and neither is the current CPU count or
    memory size: clients that send their whole wanted state (Terraform's provider) send those.
    """
    hot = vm.hot_plug
    if hot.changed_flags(spec):
        vm.require_power("poweredOff")
    cpus, memory = spec.numCPUs or vm.num_cpu, spec.memoryMB or vm.memory_mb
    if (cpus > vm.num_cpu and not hot.cpu_add) or (cpus < vm.num_cpu and not hot.cpu_remove):
        raise vim.fault.CpuHotPlugNotSupported(msg=CPU_REFUSAL)
    if (memory > vm.memory_mb and not hot.memory_add) or memory < vm.memory_mb:
        raise vim.fault.MemoryHotPlugNotSupported(msg=MEMORY_REFUSAL)
