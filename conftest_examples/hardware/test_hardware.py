"""Hardware per clone: CPUs, memory, NICs' port groups, extra disks and extraConfig (see docs/hardware.md).

The run's clones keep their template's hardware (pytest.ini sets none); a marker or a factory call gives
one clone its own. The same settings exist for the whole run on the command line, e.g.
``--vsphere-cpus 2 --vsphere-memory-mb 2048 --vsphere-disks 8 --vsphere-extra-config guestinfo.role=web``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_vsphere_clone.plugin.clone import Clone


def out(clone: Clone, command: str) -> str:
    result = clone.run(command)
    assert result.exit_status == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.vsphere(cpus=1, memory_mb=1024, disks=[8], extra_config={"guestinfo.role": "web"})
def test_a_small_web_server_with_a_data_disk(vsphere_vm: Clone) -> None:
    hardware = vsphere_vm.vm.config.hardware
    assert (hardware.numCPU, hardware.memoryMB) == (1, 1024)
    # The guest sees its hardware: one CPU, 1 GiB, a second disk of 8 GiB.
    assert out(vsphere_vm, "nproc") == "1"
    assert out(vsphere_vm, "awk '/^MemTotal:/ {print $2}' /proc/meminfo") == str(1024 * 1024)
    disks = out(vsphere_vm, "lsblk -b -d -n -o SIZE").split()
    assert len(disks) == 2 and int(disks[1]) == 8 * 1024**3
    # guestinfo.* reaches the guest through VMware Tools: configuration for cloud-init or a role.
    assert out(vsphere_vm, "vmware-rpctool 'info-get guestinfo.role'") == "web"


def test_a_second_nic_on_another_port_group(vsphere_vm_factory: Callable[..., Clone]) -> None:
    clone = vsphere_vm_factory(networks=["VM Network", "VM Network 2"])
    assert [network.name for network in clone.vm.network] == ["VM Network", "VM Network 2"]
    assert out(clone, "ls /sys/class/net | grep -c '^eth'") == "2"


def test_an_instant_clone_takes_guestinfo(vsphere_vm_factory: Callable[..., Clone]) -> None:
    # Instant clones keep their source's CPUs, memory and disks; extraConfig and NIC port groups they take.
    clone = vsphere_vm_factory(template="linux-frozen", clone_type="instant", extra_config=["guestinfo.role=db"])
    assert out(clone, "vmware-rpctool 'info-get guestinfo.role'") == "db"
