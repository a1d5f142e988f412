"""Teardown: idempotent destroy, collapsing a source's deltas, listing and reaping marked VMs only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from client_helpers import FAST_RETRY
from pyVmomi import vim

from pytest_vsphere_clone.client.clone import clone_vm
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.disks import disk_chain_lengths
from pytest_vsphere_clone.client.errors import CollapseRefused, VSphereCloneError
from pytest_vsphere_clone.client.inventory import Inventory
from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import (
    collapse,
    destroy,
    destroy_many,
    list_marked,
    reap,
    select_for_reaping,
)
from pytest_vsphere_clone.simulator import Simulator

Connect = Callable[..., VSphereConnection]
TEMPLATES = {"linux-template", "linux-frozen", "windows-template", "windows-frozen"}


def _clone(conn: VSphereConnection, template: str, name: str, **options: Any) -> Any:
    info = Inventory.load(conn).find_template(template)
    return clone_vm(conn, CloneRequest(info, name, **options), retry=FAST_RETRY).vm


# --- destroy --------------------------------------------------------------------------------------


def test_destroy_powers_off_and_destroys(sim: Simulator, conn: VSphereConnection) -> None:
    vm = _clone(conn, "linux-template", "doomed")
    assert vm.runtime.powerState == "poweredOn"
    sim.reset_counters()
    assert destroy(conn, vm) is True
    assert "doomed" not in sim.vm_names()
    counts = sim.counters()
    assert counts["PowerOffVM_Task"] == 1 and counts["Destroy_Task"] == 1


def test_destroy_is_idempotent(sim: Simulator, conn: VSphereConnection) -> None:
    vm = _clone(conn, "linux-template", "doomed", power_on=False)
    assert destroy(conn, vm) is True  # already off: fine
    assert destroy(conn, vm) is False  # already gone: fine
    assert set(sim.vm_names()) == TEMPLATES


def test_destroy_retries_a_busy_vm(sim: Simulator, conn: VSphereConnection) -> None:
    vm = _clone(conn, "linux-template", "busy")
    sim.inject_fault("Destroy_Task", "HostCommunication", count=2)
    assert destroy(conn, vm) is True
    assert set(sim.vm_names()) == TEMPLATES


def test_destroy_many_side_by_side(sim: Simulator, conn: VSphereConnection) -> None:
    vms = [_clone(conn, "linux-template", f"many-{i}", power_on=i % 2 == 0) for i in range(4)]
    destroy(conn, vms[3])  # one is gone already
    outcome = destroy_many(conn, vms)
    assert all(error is None for error in outcome.values())
    assert set(sim.vm_names()) == TEMPLATES


# --- collapse -------------------------------------------------------------------------------------


def test_collapse_snapshot_mode_consolidates_a_running_source(shapes_sim: Simulator, connect: Connect) -> None:
    conn = connect(shapes_sim)
    source = Inventory.load(conn).find_template("linux-running")
    assert disk_chain_lengths(conn, source.ref) == [1]
    clones = [_clone(conn, "linux-running", f"ic-{i}", clone_type="instant") for i in range(3)]
    assert disk_chain_lengths(conn, source.ref) == [4]  # one delta per clone
    destroy_many(conn, clones)
    collapse(conn, source.ref, "snapshot")
    assert disk_chain_lengths(conn, source.ref) == [1]
    assert source.ref.snapshot is None  # our helper snapshot is gone too


def test_collapse_promote_mode_on_a_frozen_source(sim: Simulator, conn: VSphereConnection) -> None:
    source = Inventory.load(conn).find_template("linux-frozen")
    clone = _clone(conn, "linux-frozen", "ic", clone_type="instant")
    assert disk_chain_lengths(conn, source.ref) == [2]
    destroy(conn, clone)
    sim.reset_counters()
    collapse(conn, source.ref, "promote")
    assert disk_chain_lengths(conn, source.ref) == [1]
    assert sim.counters()["PromoteDisks_Task"] == 1


def test_collapse_refuses_to_delete_the_templates_snapshots(sim: Simulator, conn: VSphereConnection) -> None:
    source = Inventory.load(conn).find_template("linux-template")
    with pytest.raises(CollapseRefused, match=r"would delete its snapshots \(base\)"):
        collapse(conn, source.ref, "snapshot")
    assert [s.name for s in source.ref.snapshot.rootSnapshotList] == ["base"]
    assert sim.counters()["CreateSnapshot_Task"] == 0


def test_collapse_none_and_bad_modes(sim: Simulator, conn: VSphereConnection) -> None:
    source = Inventory.load(conn).find_template("linux-template")
    sim.reset_counters()
    collapse(conn, source.ref, "none")
    assert sum(sim.counters().values()) == 0
    with pytest.raises(VSphereCloneError, match="--vsphere-collapse"):
        collapse(conn, source.ref, "squash")


# --- list and reap ----------------------------------------------------------------------------------


def test_reap_never_touches_unmarked_vms(sim: Simulator, conn: VSphereConnection) -> None:
    unmarked = _clone(conn, "linux-template", "someone-elses")  # no marker
    _clone(conn, "linux-template", "ours-1", marker=Marker.new("run-a", ttl=0))
    _clone(conn, "linux-template", "ours-2", marker=Marker.new("run-b", ttl=3600))
    assert sorted(m.name for m in list_marked(conn)) == ["ours-1", "ours-2"]
    report = reap(conn, older_than=0.0)  # everything marked, however young
    assert sorted(report.destroyed) == ["ours-1", "ours-2"] and not report.failed
    assert set(sim.vm_names()) == TEMPLATES | {"someone-elses"}
    assert unmarked.runtime.powerState == "poweredOn"


def test_reap_expired_only_by_default(sim: Simulator, conn: VSphereConnection) -> None:
    _clone(conn, "linux-template", "expired", marker=Marker.new("run-a", ttl=-10))
    _clone(conn, "linux-template", "alive", marker=Marker.new("run-b", ttl=3600))
    report = reap(conn)
    assert report.destroyed == ["expired"]
    assert set(sim.vm_names()) == TEMPLATES | {"alive"}


def test_reap_by_run_id_and_dry_run(sim: Simulator, conn: VSphereConnection) -> None:
    _clone(conn, "linux-template", "a-1", marker=Marker.new("run-a"))
    _clone(conn, "linux-frozen", "a-2", clone_type="instant", marker=Marker.new("run-a"))
    _clone(conn, "linux-template", "b-1", marker=Marker.new("run-b"))
    dry = reap(conn, run_id="run-a", dry_run=True)
    assert sorted(vm.name for vm in dry.selected) == ["a-1", "a-2"] and dry.destroyed == []
    assert {"a-1", "a-2", "b-1"} <= set(sim.vm_names())
    report = reap(conn, run_id="run-a")
    assert sorted(report.destroyed) == ["a-1", "a-2"]
    assert set(sim.vm_names()) == TEMPLATES | {"b-1"}


def test_select_for_reaping_rules() -> None:
    from pytest_vsphere_clone.client.teardown import MarkedVM

    now = time.time()
    young = MarkedVM(vim.VirtualMachine("vm-1"), "young", Marker.new("r1", ttl=3600, now=now), "poweredOn")
    old = MarkedVM(vim.VirtualMachine("vm-2"), "old", Marker.new("r2", ttl=60, now=now - 7200), "poweredOn")
    assert select_for_reaping([young, old], now=now) == [old]
    assert select_for_reaping([young, old], run_id="r1", now=now) == [young]
    assert select_for_reaping([young, old], older_than=3600, now=now) == [old]
    assert select_for_reaping([young, old], older_than=0, now=now) == [young, old]


def test_reap_finds_an_instant_clone_marked_only_in_extra_config(sim: Simulator, conn: VSphereConnection) -> None:
    # An instant clone whose run died before SetField carries the marker only in its extraConfig.
    source = Inventory.load(conn).find_template("linux-frozen")
    marker = Marker.new("run-x")
    spec = vim.vm.InstantCloneSpec(name="half", location=vim.vm.RelocateSpec(folder=source.folder),
                                   config=[vim.option.OptionValue(key="guestinfo.pytest-vsphere-clone",
                                                                  value=marker.encode())])
    from pytest_vsphere_clone.client.waiter import Waiter

    with Waiter(conn) as waiter:
        waiter.wait_for_task(source.ref.InstantClone_Task(spec=spec), 10)
    assert [m.name for m in list_marked(conn)] == []
    assert [m.name for m in list_marked(conn, include_extra_config=True)] == ["half"]
