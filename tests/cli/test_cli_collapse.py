"""``vsphere-clone collapse``: merges a source's delta disks; refuses while clones use them or snapshots would go."""

from __future__ import annotations

from cli_helpers import Run, make_clone

from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.simulator import Simulator


def chain(sim: Simulator, name: str) -> int:
    return int(sim.find_vm(name).disk.depth())


def test_collapse_a_frozen_source_once_its_clones_are_gone(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    for i in range(2):
        make_clone(conn, f"ic-{i}", "linux-frozen", clone_type="instant", marker=Marker.new("run-ic"))
    assert chain(sim, "linux-frozen") == 2
    refused = cli(sim, "collapse", "linux-frozen")
    assert refused.status == 1
    assert refused.out == "linux-frozen: disk chain length 2 before\n"
    assert ("2 VMs still use the disks of linux-frozen (ic-0, ic-1): destroy them first (for test clones: "
            "`vsphere-clone reap --run ID`), or pass --force") in refused.err
    assert chain(sim, "linux-frozen") == 2
    assert cli(sim, "reap", "--run", "run-ic").status == 0
    sim.reset_counters()
    result = cli(sim, "collapse", "linux-frozen")
    assert result.status == 0, result.err
    assert result.out.splitlines() == ["linux-frozen: disk chain length 2 before",
                                       "collapsing linux-frozen (promote) ...",
                                       "collapsed linux-frozen (promote): disk chain length 2 -> 1"]
    assert chain(sim, "linux-frozen") == 1 and sim.find_vm("linux-frozen").frozen
    assert sim.counters()["PromoteDisks_Task"] == 1
    again = cli(sim, "collapse", "linux-frozen")
    assert again.status == 0 and "nothing to collapse: linux-frozen has no delta disks" in again.out


def test_collapse_force_while_clones_exist(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "ic", "linux-frozen", clone_type="instant")  # not even marked: found by its disks
    result = cli(sim, "collapse", "linux-frozen", "--force")
    assert result.status == 0, result.err
    assert chain(sim, "linux-frozen") == 1
    assert "ic" in sim.vm_names()


def test_collapse_a_running_source_with_snapshot_mode(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "runner", clone_type="full", power_on=True)
    clones = [make_clone(conn, f"ic-{i}", "runner", clone_type="instant") for i in range(3)]
    assert chain(sim, "runner") == 4  # a running source gets one delta per clone
    for vm in clones:
        destroy(conn, vm)
    result = cli(sim, "collapse", "runner", "--mode", "snapshot")
    assert result.status == 0, result.err
    assert result.out.splitlines()[-1] == "collapsed runner (snapshot): disk chain length 4 -> 1"
    assert chain(sim, "runner") == 1
    assert not sim.find_vm("runner").all_snapshots()  # the helper snapshot is gone too


def test_collapse_refuses_to_delete_a_templates_snapshots(cli: Run, sim: Simulator) -> None:
    assert chain(sim, "linux-template") == 2  # its snapshot froze the base disk
    result = cli(sim, "collapse", "linux-template")
    assert result.status == 1
    line = result.error_lines[0]
    assert "would delete its snapshots (base)" in line and "pass --force" in line
    promote = cli(sim, "collapse", "linux-template", "--mode", "promote")
    assert promote.status == 1 and "cannot promote the disks of a VM with snapshots" in promote.err
    assert [s.name for s in sim.find_vm("linux-template").all_snapshots()] == ["base"]
    forced = cli(sim, "collapse", "linux-template", "--force")
    assert forced.status == 0, forced.err
    assert forced.out.splitlines()[-1] == "collapsed linux-template (snapshot): disk chain length 2 -> 1"
    assert not sim.find_vm("linux-template").all_snapshots()


def test_collapse_snapshot_mode_refuses_a_frozen_source(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "ic", "linux-frozen", clone_type="instant")
    result = cli(sim, "collapse", "linux-frozen", "--mode", "snapshot", "--force")
    assert result.status == 1
    assert "linux-frozen is frozen, and a frozen VM cannot take the snapshot" in result.err
    assert "use --mode promote" in result.err
    assert chain(sim, "linux-frozen") == 2


def test_collapse_reports_a_failing_task(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    destroy(conn, make_clone(conn, "ic", "linux-frozen", clone_type="instant"))
    sim.inject_fault("PromoteDisks_Task", "InvalidState", count=-1, in_task=True, message="disks are locked")
    result = cli(sim, "collapse", "linux-frozen")
    assert result.status == 1
    assert result.error_lines[-1] == (
        "vsphere-clone collapse: error: collapse (promote) of linux-frozen failed: InvalidState: disks are locked: "
        "check the VM's tasks and events in the vSphere Client, then run `vsphere-clone collapse linux-frozen` again")
    assert chain(sim, "linux-frozen") == 2
