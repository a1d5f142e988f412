"""client/hardware.py's plan against device lists the simulator does not have (its VMs all have one SCSI
controller with the first disk on unit 0): sources without a SCSI controller, crowded controllers.

Pure data: pyVmomi device objects in, VirtualDeviceSpecs out; standard port groups need no server
round trip, so no connection is involved (``conn=None``).
"""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from pytest_vsphere_clone.client.hardware import (
    HardwareError,
    HardwareRequest,
    PortGroup,
    ResolvedHardware,
    instant_problem,
    plan_hardware,
)

NET = vim.Network("network-1")
LAB = vim.Network("network-2")


def nic(key: int, network: Any) -> Any:
    return vim.vm.device.VirtualVmxnet3(key=key, backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
        deviceName="x", network=network))


def scsi(key: int, bus: int) -> Any:
    return vim.vm.device.ParaVirtualSCSIController(key=key, busNumber=bus)


def disk(key: int, controller: int, unit: int) -> Any:
    return vim.vm.device.VirtualDisk(key=key, controllerKey=controller, unitNumber=unit)


def plan(request: HardwareRequest, devices: list[Any], groups: tuple[PortGroup, ...] = ()) -> Any:
    return plan_hardware(None, ResolvedHardware(request, groups), devices)  # type: ignore[arg-type]


def test_a_source_without_scsi_controller_gets_a_paravirtual_one_for_its_new_disks() -> None:
    nvme_disk = vim.vm.device.VirtualDisk(key=2000, controllerKey=31000, unitNumber=0)
    changes = plan(HardwareRequest(disks_gb=(8, 4)), [nvme_disk]).device_adds
    controller, first, second = (c.device for c in changes)
    assert isinstance(controller, vim.vm.device.ParaVirtualSCSIController) and controller.key < 0
    assert [(d.controllerKey, d.unitNumber, d.capacityInKB) for d in (first, second)] == \
        [(controller.key, 0, 8 * 1024 * 1024), (controller.key, 1, 4 * 1024 * 1024)]
    assert [c.fileOperation for c in changes] == [None, "create", "create"]
    assert first.backing.thinProvisioned and first.backing.fileName == ""


def test_new_disks_skip_unit_7_and_taken_units_then_use_the_next_controller() -> None:
    devices = [scsi(1000, 0), scsi(1001, 1), *(disk(2000 + u, 1000, u) for u in (0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11,
                                                                              12, 13, 14))]
    changes = plan(HardwareRequest(disks_gb=(1, 1, 1)), devices).device_adds
    assert [(c.device.controllerKey, c.device.unitNumber) for c in changes] == [(1000, 15), (1001, 0), (1001, 1)]


def test_too_many_disks_is_one_line() -> None:
    devices = [scsi(1000, 0), *(disk(2000 + u, 1000, u) for u in range(16) if u != 7)]
    with pytest.raises(HardwareError, match="asks for 1 disks but the source's SCSI controllers have 0 free units"):
        plan(HardwareRequest(disks_gb=(1,)), devices)


def test_nics_are_moved_only_when_on_another_port_group_and_added_beyond_the_sources() -> None:
    devices = [nic(4001, LAB), nic(4000, NET)]  # by key: NIC 1 is 4000
    result = plan(HardwareRequest(networks=("VM Network", "VM Network", "Lab")), devices,
                  (PortGroup(NET, "VM Network"), PortGroup(NET, "VM Network"), PortGroup(LAB, "Lab")))
    assert result.named_nics == {4000, 4001}
    assert list(result.nic_edits) == [4001]  # NIC 2 moves from Lab to VM Network; NIC 1 is right already
    assert result.nic_edits[4001].network == NET
    [added] = result.device_adds
    new_nic: Any = added.device
    assert new_nic.backing.deviceName == "Lab" and new_nic.connectable.startConnected
    assert isinstance(new_nic, vim.vm.device.VirtualVmxnet3) and added.operation == "add"


def test_an_instant_clone_may_move_nics_but_not_add_them() -> None:
    one_nic = [nic(4000, NET)]
    move = ResolvedHardware(HardwareRequest(networks=("Lab",), extra_config=("guestinfo.a=1",)),
                            (PortGroup(LAB, "Lab"),))
    assert instant_problem(move, one_nic, "frozen") is None
    add = ResolvedHardware(HardwareRequest(networks=("VM Network", "Lab")))
    assert "cannot add NICs" in str(instant_problem(add, one_nic, "frozen"))
    assert "use --vsphere-clone-type linked or full" in str(
        instant_problem(ResolvedHardware(HardwareRequest(memory_mb=4096)), one_nic, "frozen"))


def test_extra_config_later_keys_win() -> None:
    result = plan(HardwareRequest(extra_config=("guestinfo.a=1", "guestinfo.b=x=y", "guestinfo.a=2")), [])
    assert [(o.key, o.value) for o in result.extra_config] == [("guestinfo.a", "2"), ("guestinfo.b", "x=y")]
