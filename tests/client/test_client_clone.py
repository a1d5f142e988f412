"""Clone strategies against the simulator: linked, full, instant; marker, placement, errors, lost answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from client_helpers import FAST_RETRY
from pyVmomi import vim

from pytest_vsphere_clone.client.clone import clone_vm, strategy_for
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.disks import disk_chain_lengths
from pytest_vsphere_clone.client.errors import (
    CloneFailed,
    InvalidInstantSource,
    InvalidPlacement,
    MissingPrivileges,
    NoSnapshot,
    VSphereCloneError,
)
from pytest_vsphere_clone.client.inventory import Inventory, PlacementSettings
from pytest_vsphere_clone.client.marker import FIELD_NAME, Marker, field_key
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import list_marked
from pytest_vsphere_clone.simulator import Simulator

Connect = Callable[..., VSphereConnection]
TEMPLATES = {"linux-template", "linux-frozen", "windows-template", "windows-frozen"}


def _clone(conn: VSphereConnection, template: str, name: str, **options: Any) -> Any:
    inventory = Inventory.load(conn)
    placement = options.pop("placement", None)
    info = inventory.find_template(template)
    resolved = inventory.resolve_placement(info, placement) if placement else None
    request = CloneRequest(info, name, placement=resolved, **options)
    return clone_vm(conn, request, retry=FAST_RETRY)


def _backing_chain(vm: Any) -> list[str]:
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    files: list[str] = []
    backing: Any = disk.backing
    while backing is not None:
        files.append(backing.fileName)
        backing = backing.parent
    return files


# --- linked ---------------------------------------------------------------------------------------


def test_linked_clone_branches_from_the_current_snapshot(sim: Simulator, conn: VSphereConnection) -> None:
    result = _clone(conn, "linux-template", "pytest-r1-gw0-1", marker=Marker.new("r1", "gw0"))
    assert result.clone_type == "linked" and result.name == "pytest-r1-gw0-1"
    assert result.vm.runtime.powerState == "poweredOn"
    assert set(result.timings) == {"clone", "power_on"} and all(t > 0 for t in result.timings.values())
    chain = _backing_chain(result.vm)
    # Its own delta on top of the snapshot's base disk, not a copy.
    assert chain[0].startswith("[datastore1] pytest-r1-gw0-1/") and chain[-1].endswith("linux-template.vmdk")
    assert len(chain) == 2
    assert result.moref == result.vm._moId


def test_linked_clone_from_a_named_snapshot(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    result = _clone(conn, "layered", "from-base", snapshot="base")
    assert len(_backing_chain(result.vm)) == 2  # base disk + the clone's delta
    latest = _clone(conn, "layered", "from-latest")  # the current snapshot: deeper in the chain
    assert len(_backing_chain(latest.vm)) == 4


def test_marker_is_in_the_spec_and_the_custom_attribute(sim: Simulator, conn: VSphereConnection) -> None:
    marker = Marker.new("r1", "gw1", ttl=600)
    result = _clone(conn, "linux-template", "marked", marker=marker)
    assert Marker.parse(result.vm.config.annotation) == marker.for_template("linux-template")
    key = field_key(conn)
    values = {v.key: v.value for v in result.vm.customValue}
    assert key is not None and Marker.parse(values[key]).run_id == "r1"  # type: ignore[union-attr]
    assert [m.name for m in list_marked(conn)] == ["marked"]
    manager = conn.content.customFieldsManager
    assert manager is not None and [f.name for f in manager.field] == [FIELD_NAME]


def test_linked_clone_without_snapshot_is_an_error_never_a_full_clone(shapes_sim: Simulator,
                                                                      connect: Connect) -> None:
    conn = connect(shapes_sim)
    with pytest.raises(NoSnapshot) as raised:
        _clone(conn, "linux-nosnap", "never")
    message = str(raised.value)
    assert "template 'linux-nosnap' has no snapshot" in message
    assert "create a snapshot on linux-nosnap" in message and "--vsphere-clone-type=full" in message
    assert shapes_sim.counters()["CloneVM_Task"] == 0
    assert "never" not in shapes_sim.vm_names()


def test_unknown_snapshot_lists_the_existing_ones(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    with pytest.raises(NoSnapshot, match=r"has no snapshot 'nope' \(it has 'base', 'base/updated'"):
        _clone(conn, "layered", "never", snapshot="nope")


def test_spec_hook_and_power_on_in_the_clone_task(sim: Simulator, conn: VSphereConnection) -> None:
    seen: list[Any] = []

    def customize(spec: Any) -> None:
        seen.append(spec)
        spec.config = vim.vm.ConfigSpec(numCPUs=4, annotation="custom")

    sim.reset_counters()
    result = _clone(conn, "linux-template", "hooked", customize=customize, power_on_in_clone_task=True)
    assert isinstance(seen[0], vim.vm.CloneSpec)
    assert result.vm.config.hardware.numCPU == 4
    assert result.vm.runtime.powerState == "poweredOn"
    assert sim.counters()["PowerOnVM_Task"] == 0 and result.timings["power_on"] == 0.0


def test_power_on_false_leaves_the_clone_off(sim: Simulator, conn: VSphereConnection) -> None:
    result = _clone(conn, "linux-template", "off", power_on=False)
    assert result.vm.runtime.powerState == "poweredOff"


def test_linked_clone_of_a_real_template_gets_the_clusters_pool(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    inventory = Inventory.load(conn)
    template = inventory.find_template("real-template")
    assert template.is_template
    placement = inventory.resolve_placement(template)
    assert inventory.path(placement.resource_pool) == "dc1/host/cluster1/Resources"
    result = clone_vm(conn, CloneRequest(template, "from-template", placement=placement), retry=FAST_RETRY)
    assert result.vm.runtime.powerState == "poweredOn"
    assert shapes_sim.find_vm("from-template").pool.parent.name == "cluster1"


# --- full -----------------------------------------------------------------------------------------


def test_full_clone_copies_the_disk(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    result = _clone(conn, "linux-nosnap", "full-1", clone_type="full", marker=Marker.new("r"))
    assert result.clone_type == "full"
    assert _backing_chain(result.vm) == ["[datastore1] full-1/full-1.vmdk"]
    assert Marker.parse(result.vm.config.annotation) is not None


# --- instant --------------------------------------------------------------------------------------


def test_instant_clone_of_a_frozen_source(sim: Simulator, conn: VSphereConnection) -> None:
    sim.reset_counters()
    marker = Marker.new("r2")
    result = _clone(conn, "linux-frozen", "instant-1", clone_type="instant", marker=marker)
    assert result.clone_type == "instant" and result.warnings == []
    assert result.vm.runtime.powerState == "poweredOn"
    assert result.timings["power_on"] == 0.0
    counts = sim.counters()
    assert counts["InstantClone_Task"] == 1 and counts["ReconfigVM_Task"] == 0 and counts["PowerOnVM_Task"] == 0
    clone = sim.find_vm("instant-1")
    assert Marker.parse(clone.extra_config["guestinfo.pytest-vsphere-clone"]) == marker.for_template("linux-frozen")
    assert clone.host is sim.find_vm("linux-frozen").host
    source_mac = sim.find_vm("linux-frozen").nics[0].mac
    assert clone.nics[0].mac != source_mac


def test_instant_clone_of_a_running_source_disconnects_and_reconnects_nics(
        shapes_sim: Simulator, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    conn = connect(shapes_sim)
    source = Inventory.load(conn).find_template("linux-running")
    assert not source.frozen
    chain_before = disk_chain_lengths(conn, source.ref)
    observed: list[bool] = []

    def capture(spec: Any) -> None:
        for change in spec.location.deviceChange:
            connectable = change.device.connectable
            observed.append(connectable.connected)
            assert connectable.startConnected is True and connectable.migrateConnect == "disconnect"

    with caplog.at_level(logging.WARNING):
        result = clone_vm(conn, CloneRequest(source, "running-1", clone_type="instant", customize=capture),
                          retry=FAST_RETRY)
    assert observed == [False]
    assert "adds a delta disk" in result.warnings[0] and "adds a delta disk" in caplog.text
    assert shapes_sim.counters()["ReconfigVM_Task"] == 1
    assert all(nic.connected and nic.start_connected for nic in shapes_sim.find_vm("running-1").nics)
    # Each clone of a running source adds a delta disk to the source.
    assert disk_chain_lengths(conn, source.ref) == [chain_before[0] + 1]
    clone_vm(conn, CloneRequest(source, "running-2", clone_type="instant"), retry=FAST_RETRY)
    assert disk_chain_lengths(conn, source.ref) == [chain_before[0] + 2]


def test_instant_clone_of_a_powered_off_source_is_an_error(sim: Simulator, conn: VSphereConnection) -> None:
    with pytest.raises(InvalidInstantSource) as raised:
        _clone(conn, "linux-template", "never", clone_type="instant")
    assert "'linux-template' is poweredOff" in str(raised.value)
    assert "vsphere-clone freeze linux-template" in str(raised.value)
    assert sim.counters()["InstantClone_Task"] == 0


def test_instant_clone_stays_on_the_source_host(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    with pytest.raises(InvalidPlacement, match="stay on their source's host"):
        _clone(conn, "linux-frozen", "never", clone_type="instant", placement=PlacementSettings(esxi_host="esx2"))


# --- placement ------------------------------------------------------------------------------------


def test_placement_is_honoured(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    result = _clone(conn, "linux-template", "placed", placement=PlacementSettings(
        folder="vm/templates", datastore="datastore2", cluster="cluster2"))
    clone = shapes_sim.find_vm("placed")
    assert clone.inventory_path() == "dc1/vm/templates/placed"
    assert clone.datastore.name == "datastore2"
    assert clone.pool.parent.name == "cluster2"
    assert result.vm.runtime.powerState == "poweredOn"


# --- errors ---------------------------------------------------------------------------------------


def test_duplicate_name_is_a_clear_error(sim: Simulator, conn: VSphereConnection) -> None:
    _clone(conn, "linux-template", "twice")
    with pytest.raises(CloneFailed, match="a VM named 'twice' already exists"):
        _clone(conn, "linux-template", "twice")
    assert sim.vm_names().count("twice") == 1


def test_duplicate_of_someone_elses_vm_is_never_adopted(sim: Simulator, conn: VSphereConnection) -> None:
    _clone(conn, "linux-template", "taken", marker=Marker.new("other-run"))
    with pytest.raises(CloneFailed, match="already exists"):
        _clone(conn, "linux-template", "taken", marker=Marker.new("my-run"))


def test_missing_privilege_names_it(sim: Simulator, connect: Connect) -> None:
    sim.add_user("limited@vsphere.local", "limited-pw", denied={"VirtualMachine.Provisioning.Clone"})
    conn = connect(sim, user="limited@vsphere.local", password="limited-pw")
    with pytest.raises(MissingPrivileges) as raised:
        _clone(conn, "linux-template", "never")
    assert raised.value.privileges == ["VirtualMachine.Provisioning.Clone"]
    assert "limited@vsphere.local" in str(raised.value) and "VirtualMachine.Provisioning.Clone" in str(raised.value)
    assert set(sim.vm_names()) == TEMPLATES


def test_unknown_clone_type() -> None:
    with pytest.raises(VSphereCloneError, match="--vsphere-clone-type"):
        strategy_for("quantum")


def test_failure_after_the_clone_destroys_it(sim: Simulator, conn: VSphereConnection) -> None:
    sim.inject_fault("PowerOnVM_Task", "InsufficientResourcesFault", count=-1)
    with pytest.raises(vim.fault.InsufficientResourcesFault):
        _clone(conn, "linux-template", "half-made", marker=Marker.new("r"))
    assert set(sim.vm_names()) == TEMPLATES


# --- lost answers: never a blind repeat ---------------------------------------------------------------


def test_dropped_clone_call_is_looked_for_then_repeated(sim: Simulator, conn: VSphereConnection) -> None:
    sim.inject_fault("CloneVM_Task", drop=True)
    result = _clone(conn, "linux-template", "dropped", marker=Marker.new("r"))
    assert result.vm.name == "dropped"
    counts = sim.counters()
    assert counts["CloneVM_Task"] == 2 and counts["FindChild"] >= 1
    assert sim.vm_names().count("dropped") == 1


def test_timed_out_clone_call_that_did_happen_is_not_duplicated(sim: Simulator, connect: Connect) -> None:
    # The server acts after our socket timeout: the first call's clone appears later than our retry.
    conn = connect(sim, timeout=2.0)
    sim.inject_fault("CloneVM_Task", delay=2.6)
    result = _clone(conn, "linux-template", "slow-answer", marker=Marker.new("r"))
    assert result.vm.name == "slow-answer"
    time.sleep(1.0)  # the first, late call has run by now (and must have failed on the name)
    assert sim.counters()["CloneVM_Task"] == 2
    assert sim.vm_names().count("slow-answer") == 1


def test_dropped_instant_clone_call(sim: Simulator, conn: VSphereConnection) -> None:
    sim.inject_fault("InstantClone_Task", drop=True)
    result = _clone(conn, "linux-frozen", "instant-dropped", clone_type="instant", marker=Marker.new("r"))
    assert result.vm.name == "instant-dropped"
    assert sim.vm_names().count("instant-dropped") == 1
